// The lanes of `npm test` (scripts/run-tests.sh) are decided by a rule, checked here: every test
// file runs in exactly one lane; the lab lane (test/lab-lane.txt) is exactly the files that use the
// multi-host lab, and none of them reaches the main host's daemons; the light lane
// (test/light-lane.txt) holds no lab test. And the helpers that reach the main host's daemons
// refuse to run in the lab lane.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { ensureSanlockDaemon } from './agent/storage/sanlock-daemon.js';
import { libvirtdCtl } from './lab/guest.js';
import { startAgent } from './agent/harness.js';
import { LANE_ENV, MainHostInLabLaneError, refuseInLabLane } from './lanes.js';

const REPO = join(import.meta.dirname, '..', '..');
const LAB_MODULE = 'test/lab/multihost/lab.ts';
/** Helpers that open the main host's libvirtd (qemu:///system in the main namespace). */
const MAIN_HOST_HELPERS = ['test/agent/libvirt/qemu-helpers.ts', 'test/agent/stats/lab-libvirt.ts'];

function laneList(file: string): string[] {
  return readFileSync(join(REPO, file), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(REPO, dir), { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) { if (e.name !== 'fixtures' && e.name !== 'node_modules') out.push(...testFiles(p)); }
    else if (e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const directImports = new Map<string, string[]>();
/** The test/ modules that `file` imports, directly or through them (product code never imports test code). */
function importClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  let direct = directImports.get(file);
  if (!direct) {
    direct = [];
    for (const m of readFileSync(join(REPO, file), 'utf8').matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = normalize(join(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
      if (target.startsWith('test/') && existsSync(join(REPO, target))) direct.push(target);
    }
    directImports.set(file, direct);
  }
  for (const d of direct) importClosure(d, seen);
  return seen;
}

const all = testFiles('test').sort();
const light = laneList('test/light-lane.txt');
const lab = laneList('test/lab-lane.txt');
const side = laneList('test/side-lane.txt');
/** What a side-lane file must not reach: the lab, the main host's libvirtd, the main sanlock daemon, the storage task lab (it uses that daemon). */
const SIDE_FORBIDDEN = [LAB_MODULE, ...MAIN_HOST_HELPERS, 'test/agent/storage/sanlock-daemon.ts', 'test/agent/storage/tasks-fixture.ts'];

t.test('every test file is in exactly one lane, and the lane lists name only test files, once', async (t) => {
  t.ok(all.length > 100, `found the test files (${all.length})`);
  for (const [name, list] of [['light-lane.txt', light], ['lab-lane.txt', lab], ['side-lane.txt', side]] as const) {
    t.same(list.filter((f) => !all.includes(f)), [], `${name} names only existing test files`);
    t.same(list.filter((f, i) => list.indexOf(f) !== i), [], `${name} names each file once`);
  }
  t.same(light.filter((f) => lab.includes(f)), [], 'no file is in both the light and the lab lane');
  t.same(side.filter((f) => lab.includes(f) || light.includes(f)), [], 'no side-lane file is in the light or the lab lane');
});

t.test('the side lane (run beside the main lane) reaches none of the main host\'s shared daemons', async (t) => {
  for (const f of side) {
    const closure = importClosure(f);
    t.same(SIDE_FORBIDDEN.filter((h) => closure.has(h)), [], `${f} imports no lab, main-host libvirt, sanlock or storage-task helper`);
    const text = readFileSync(join(REPO, f), 'utf8');
    t.notOk(text.includes('qemu:///system'), `${f} never names qemu:///system`);
    // An agent started here must run on libvirt's test driver: its default is the main libvirtd.
    const starts = text.split('\n').filter((l) => /\b(startAgent|spawnAgent)\(/.test(l));
    t.same(starts.filter((l) => !l.includes('test:///')), [], `${f}: every agent it starts names a test:/// libvirt`);
  }
});

t.test('the lab lane is exactly the test files that use the multi-host lab', async (t) => {
  const users = all.filter((f) => importClosure(f).has(LAB_MODULE));
  t.ok(users.length >= 10, `the lab's users are found (${users.length})`);
  t.same(users.filter((f) => !lab.includes(f)), [], `every file that imports ${LAB_MODULE} is in test/lab-lane.txt`);
  t.same(lab.filter((f) => !users.includes(f)), [], 'every file in test/lab-lane.txt imports the lab');
});

t.test('no lab-lane file reaches the main host\'s libvirtd', async (t) => {
  for (const f of lab) {
    const closure = importClosure(f);
    t.same(MAIN_HOST_HELPERS.filter((h) => closure.has(h)), [], `${f} imports no main-host libvirt helper`);
    // qemu:///system is the lab host's own libvirtd only inside it (host.exec([...]).
    const outside = readFileSync(join(REPO, f), 'utf8').split('\n').filter((l) => l.includes('qemu:///system') && !l.includes('.exec(['));
    t.same(outside, [], `${f} names qemu:///system only in commands run inside a lab host`);
  }
});

t.test('the helpers that reach the main host\'s daemons refuse to run in the lab lane', async (t) => {
  const before = process.env[LANE_ENV];
  t.teardown(() => { if (before === undefined) delete process.env[LANE_ENV]; else process.env[LANE_ENV] = before; });
  delete process.env[LANE_ENV];
  t.doesNotThrow(() => refuseInLabLane('something'), 'outside the lab lane nothing is refused');
  process.env[LANE_ENV] = 'lab';
  t.throws(() => refuseInLabLane('something'), MainHostInLabLaneError);
  await t.rejects(ensureSanlockDaemon(), MainHostInLabLaneError, 'the main sanlock daemon');
  await t.rejects(libvirtdCtl('restart'), MainHostInLabLaneError, 'the main libvirtd\'s control script');
  await t.rejects(startAgent({ 'libvirt.uri': 'qemu:///system' }), MainHostInLabLaneError, 'an agent in the main namespace on the main libvirtd');
});

t.comment(`lanes: ${all.length - light.length - lab.length} main, ${light.length} light, ${lab.length} lab`);
