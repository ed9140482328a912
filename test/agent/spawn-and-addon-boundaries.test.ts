// Two rules of the agent's code, checked on its source: programs are run only
// through agent/process.ts (process group killed, output bounded, timeout, done
// at exit), and the native addon is reached only through the libvirt facade.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function agentSources(dir = join(REPO, 'agent')): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'native') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...agentSources(p));
    else if (name.endsWith('.ts')) out.push(relative(REPO, p));
  }
  return out.sort();
}

const sources = agentSources();
const importsOf = (file: string): string[] =>
  [...readFileSync(join(REPO, file), 'utf8').matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+['"]([^'"]+)['"]/gms)].map((m) => m[0]);

t.test('only agent/process.ts imports node:child_process', async (t) => {
  t.ok(sources.length > 100, `${sources.length} agent sources read`);
  const spawners = sources.filter((f) => importsOf(f).some((i) => /['"](node:)?child_process['"]/.test(i)));
  t.same(spawners, ['agent/process.ts']);
});

t.test('only agent/libvirt/ imports the addon (libvirt/native.js, or `native` from the facade index)', async (t) => {
  const outside = sources.filter((f) => !f.startsWith('agent/libvirt/'));
  const bypass = outside.filter((f) => importsOf(f).some((i) =>
    /libvirt\/native(\.js)?['"]/.test(i) || (/libvirt\/index\.js['"]/.test(i) && /[{,]\s*native\s*[,}]/.test(i))));
  t.same(bypass, []);
  t.ok(outside.length > 80, `${outside.length} sources outside agent/libvirt/ read`);
});
