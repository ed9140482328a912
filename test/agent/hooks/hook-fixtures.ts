// Writes real hook scripts into a hook tree for tests.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../harness.js';

export function hookTree(): string {
  return scratchDir('hv-hooktree-');
}

export function addHook(root: string, point: string, name: string, body: string, mode = 0o755): string {
  const dir = join(root, point);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const file = join(dir, name);
  writeFileSync(file, body.startsWith('#!') ? body : `#!/bin/sh\n${body}\n`);
  chmodSync(file, mode);
  return file;
}
