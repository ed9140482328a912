// Host CPU from a cgroup-v1 cpuacct group (setting host.cpuAccountingCgroup): exact numbers from
// fixture group files, and one pass over a real cpuacct group holding a busy process and an
// idle one, which must read busy and idle while /proc/stat says the same for both.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cgroupCpuPercent, quotaCpus, readCgroupCpu } from '../../../agent/host/cgroup-cpu.js';
import { HostStatsSampler } from '../../../agent/host/host-stats.js';

function group(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hv-cgroup-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

t.test('usage over wall time x CPUs: 3 s of CPU (1 s in the kernel) in 2 s on 2 CPUs is 50 % user, 25 % sys', async (t) => {
  const dir = group({ 'cpuacct.usage': '1000000000\n', 'cpuacct.usage_sys': '500000000\n' });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = await readCgroupCpu({ cpuacctDir: dir }, 1_000, 2);
  writeFileSync(join(dir, 'cpuacct.usage'), '4000000000\n');
  writeFileSync(join(dir, 'cpuacct.usage_sys'), '1500000000\n');
  const b = await readCgroupCpu({ cpuacctDir: dir }, 3_000, 2);
  t.same(cgroupCpuPercent(a, b), { cpuUser: 50, cpuSys: 25, cpuIdle: 25 });
});

t.test('a CFS quota bounds the CPUs: 0.5 s used in 2 s under a quota of a quarter CPU is 100 %; none (-1) leaves the online CPUs', async (t) => {
  const dir = group({ 'cpuacct.usage': '0\n', 'cpu.cfs_quota_us': '25000\n', 'cpu.cfs_period_us': '100000\n' });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = await readCgroupCpu({ cpuacctDir: dir, quotaDir: dir }, 0, 2);
  t.equal(a.cpus, 0.25, 'quota/period');
  writeFileSync(join(dir, 'cpuacct.usage'), '500000000\n');
  const b = await readCgroupCpu({ cpuacctDir: dir, quotaDir: dir }, 2_000, 2);
  t.same(cgroupCpuPercent(a, b), { cpuUser: 100, cpuSys: 0, cpuIdle: 0 }, 'no usage_sys file (kernel < 4.7): all user');
  writeFileSync(join(dir, 'cpuacct.usage'), '2500000000\n');
  const c = await readCgroupCpu({ cpuacctDir: dir, quotaDir: dir }, 4_000, 2);
  t.same(cgroupCpuPercent(b, c).cpuUser, 100, 'usage over the capacity (quota enforcement per period) reads 100 %, never more');
  t.equal(quotaCpus('-1\n', '100000\n'), undefined, 'no quota');
  t.equal((await readCgroupCpu({ cpuacctDir: dir }, 0, 2)).cpus, 2, 'quota not read without quotaDir');
});

t.test('an unreadable counter is an error naming the file, not 0 % (unknown is not idle)', async (t) => {
  const dir = group({ 'cpuacct.usage': 'garbage\n' });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await t.rejects(readCgroupCpu({ cpuacctDir: dir }, 0, 2), /cpuacct\.usage/);
  await t.rejects(readCgroupCpu({ cpuacctDir: join(dir, 'missing') }, 0, 2), { code: 'ENOENT' });
});

const CPUACCT = '/sys/fs/cgroup/cpuacct';
const noCgroup = !existsSync(join(CPUACCT, 'cpuacct.usage')) ? `no cgroup-v1 cpuacct hierarchy at ${CPUACCT}` : process.getuid?.() !== 0 ? 'needs root to make cgroups' : false;

t.test('real cpuacct groups: the group with a busy process reads busy, the idle one idle, where /proc/stat gives both the same', { skip: noCgroup }, async (t) => {
  const busyDir = join(CPUACCT, `hv-test-busy-${process.pid}`);
  const idleDir = join(CPUACCT, `hv-test-idle-${process.pid}`);
  mkdirSync(busyDir);
  mkdirSync(idleDir);
  const busy = spawn(process.execPath, ['-e', 'const end = Date.now() + 30000; while (Date.now() < end) {}'], { stdio: 'ignore' });
  const idle = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(async () => {
    busy.kill('SIGKILL');
    idle.kill('SIGKILL');
    await sleep(200);
    for (const d of [busyDir, idleDir]) { try { rmdirSync(d); } catch { /* still emptying */ } }
  });
  writeFileSync(join(busyDir, 'cgroup.procs'), String(busy.pid));
  writeFileSync(join(idleDir, 'cgroup.procs'), String(idle.pid));
  await sleep(300); // the busy process's start-up is not what is measured
  const samplers = [busyDir, idleDir].map((cpuacctDir) => new HostStatsSampler({ cgroupCpu: { cpuacctDir } }));
  const whole = new HostStatsSampler();
  for (const s of [...samplers, whole]) await s.sample();
  await sleep(2_000);
  for (const s of [...samplers, whole]) await s.sample();
  const [b, i] = samplers.map((s) => s.current(0, 0));
  const w = whole.current(0, 0);
  const cpuOf = (x: { cpuUser: number; cpuSys: number }): number => x.cpuUser + x.cpuSys;
  t.comment(`busy group ${cpuOf(b!)} %, idle group ${cpuOf(i!)} %, /proc/stat ${cpuOf(w)} % (of all CPUs)`);
  // One spinning process on a machine shared with other work gets some part of a CPU (a few %
  // of the machine when it is loaded); its group must read it, and the idle group (a sleeping
  // process) nothing.
  t.ok(cpuOf(b!) > 2, `the busy group reads its process's CPU: ${cpuOf(b!)} %`);
  t.ok(cpuOf(i!) < 0.5, `the idle group reads idle: ${cpuOf(i!)} %`);
});
