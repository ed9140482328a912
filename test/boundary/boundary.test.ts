// The dependency rule of .dependency-cruiser.cjs holds for the tree, and a
// deliberate bad import in a scratch tree laid out like ours breaks it, so
// the check cannot pass by not looking.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const config = join(repo, '.dependency-cruiser.cjs');
const depcruise = join(repo, 'node_modules/.bin/depcruise');

function cruise(cwd: string, dirs: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(depcruise, [...dirs, '--config', config], { cwd, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: stdout + stderr });
    });
  });
}

t.test('the source tree keeps the one-way dependency rule', async (t) => {
  const r = await cruise(repo, ['api', 'agent', 'controller']);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /no dependency violations found/);
});

t.test('a bad import in each direction is reported with its rule', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-boundary-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['api', 'agent/vm', 'controller']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'agent/vm/status.ts'), 'export const x = 1;\n');
  writeFileSync(join(dir, 'controller/ok.ts'), "import { y } from '../api/types.js';\nexport const z = y;\n");
  writeFileSync(join(dir, 'api/types.ts'), "import { x } from '../agent/vm/status.js';\nexport const y = x;\n");
  writeFileSync(join(dir, 'controller/bad.ts'), "import { x } from '../agent/vm/status.js';\nexport const w = x;\n");
  writeFileSync(join(dir, 'agent/vm/up.ts'), "import { z } from '../../controller/ok.js';\nexport const v = z;\n");
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' } }));
  const r = await cruise(dir, ['api', 'agent', 'controller']);
  t.not(r.code, 0, 'depcruise exits non-zero');
  t.match(r.out, /api-imports-neither-side: api\/types\.ts → agent\/vm\/status\.ts/);
  t.match(r.out, /controller-uses-api-not-agent: controller\/bad\.ts → agent\/vm\/status\.ts/);
  t.match(r.out, /agent-never-imports-controller: agent\/vm\/up\.ts → controller\/ok\.ts/);
  t.notMatch(r.out, /controller\/ok\.ts → api/, 'the controller importing the API is allowed');
});
