// The agent's software version, reported to engines. Read from package.json
// so there is one place to bump it.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackage(): { root: string; version: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'hostvisor' && pkg.version) return { root: dir, version: pkg.version };
    } catch { /* not here; look one level up */ }
    dir = dirname(dir);
  }
  return { root: dirname(dirname(fileURLToPath(import.meta.url))), version: '0.0.0-unknown' };
}

const pkg = findPackage();
export const VERSION = pkg.version;
/** The installation's root (where package.json, hooks/ and dist/ are). */
export const PACKAGE_ROOT = pkg.root;
