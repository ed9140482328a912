// Issue 11, must-show 1: `npm start`'s all-in-one setup as a user gets it. hostvisor-allinone runs
// (in scratch directories, on free ports, with the real libvirtd and sanlock): the controller and
// the agent come up, the host is enrolled with a token, the file storage domain is created as
// the pool master, and the host is Up and SPM, as `hostvisor-ctl hosts list` shows. Through the
// REST API a 1 GiB thin disk and the tiny guest on it are created and started; the guest boots
// (its serial marker), is stopped and deleted. A second run finds everything in place. SIGTERM
// stops both children.
import t from 'tap';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { scratchDir, freePort, stopChild } from '../../agent/harness.js';
import { ApiClient, loadCredentials } from '../../../controller/cli/api-client.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import type { Job } from '../../../controller/model/jobs.js';
import type { StorageDomain, Disk } from '../../../controller/model/storage.js';
import type { Vm } from '../../../controller/model/vms.js';
import { ensureSanlockDaemon, sanlockUnavailable } from '../../agent/storage/sanlock-daemon.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..', '..', '..');
const dir = scratchDir('hv-aio-');
const port = await freePort();
const agentPort = await freePort();
const url = `https://localhost:${port}`;

// The agent's config: its own PKI, port and scratch directories, so the machine's own setup is untouched.
const agentToml = join(dir, 'agent.toml');
writeFileSync(agentToml, [
  '[rpc]', `port = ${agentPort}`,
  '[pki]', `dir = "${join(dir, 'agent-pki')}"`, 'createDevCa = false',
  '[virt]', 'domainType = "qemu"',
  '[hooks]', `dir = "${scratchDir('hv-aio-hooks-')}"`, `runDir = "${scratchDir('hv-aio-run-')}"`,
  '[storage]', `loopDataDir = "${join(dir, 'loop-lvs')}"`, `loopLinkDir = "${join(dir, 'loop-links')}"`,
  '[network]', `confDir = "${join(dir, 'netconf')}"`, `runDir = "${join(dir, 'netrun')}"`,
  '',
].join('\n'));

function startAllInOne(): { child: ChildProcess; lines: string[]; ready: Promise<string> } {
  const child = spawn(process.execPath, [join(REPO, 'dist/controller/bootstrap/all-in-one.js'), '--port', String(port),
    '--pki-dir', join(dir, 'pki'), '--agent-pki-dir', join(dir, 'agent-pki'), '--db', join(dir, 'controller.db'),
    '--storage', join(dir, 'storage'), '--agent-config', agentToml, '--agent-port', String(agentPort), '--ready-timeout', '180'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const ready = new Promise<string>((resolve, reject) => {
    const onData = (b: Buffer) => {
      for (const l of b.toString().split('\n')) {
        if (!l) continue;
        lines.push(l);
        if (process.env.HV_TEST_LOG) process.stderr.write(l + '\n');
        if (l.startsWith('[all-in-one] ready')) resolve(l);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`all-in-one exited (${code}) before ready:\n${lines.filter((l) => !l.includes('"level":30')).slice(-15).join('\n')}`)));
  });
  return { child, lines, ready };
}

async function jobEnd(api: ApiClient, job: Job, ms: number): Promise<Job> {
  const end = Date.now() + ms;
  for (;;) {
    const j = await api.call<Job>('GET', `/api/v1/jobs/${job.id}`);
    if (j.state === 'succeeded' || j.state === 'failed') return j;
    if (Date.now() > end) throw new Error(`job ${job.kind} still ${j.state}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** The lockspaces of this test's storage (the agent keeps them when it stops, as VDSM does): removed so the daemon does not renew leases on deleted files. */
async function leaveLockspaces(): Promise<void> {
  const status = await run('sanlock', ['client', 'status'], { timeout: 10_000 }).then((r) => r.stdout, () => '');
  for (const line of status.split('\n')) {
    const m = /^s (\S+)/.exec(line);
    if (m && m[1]!.includes(dir)) await run('sanlock', ['client', 'rem_lockspace', '-s', m[1]!], { timeout: 60_000 }).catch(() => undefined);
  }
}

t.test('npm start\'s all-in-one: the host Up and SPM, a thin disk and the tiny guest started, stopped and deleted', async (t) => {
  const why = await sanlockUnavailable();
  if (why) { t.plan(0, `sanlock cannot run here: ${why}`); return; }
  // npm start runs test/lab/sanlock.sh; a test makes sure of its own daemon.
  const daemon = await ensureSanlockDaemon();
  t.teardown(async () => { await leaveLockspaces(); await daemon.stop().catch(() => undefined); });
  let aio = startAllInOne();
  t.teardown(() => stopChild(aio.child, 30_000));
  const t0 = Date.now();
  t.match(await aio.ready, /ready: host \S+ is Up and SPM/, `ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  t.ok(aio.lines.some((l) => /enrolled in cluster default/.test(l)), 'the host was enrolled with a token');

  const ctl = await run(join(REPO, 'bin/hostvisor-ctl'), ['--url', url, '--creds', join(dir, 'pki', 'admin'), 'hosts', 'list'], { timeout: 60_000 });
  t.match(ctl.stdout, /\n\S+\s+Up\s+SPM\s+localhost/, `hostvisor-ctl hosts list:\n${ctl.stdout}`);

  const api = new ApiClient(new URL(url), loadCredentials(join(dir, 'pki', 'admin')));
  const [sd] = await api.call<StorageDomain[]>('GET', '/api/v1/clusters/default/storage-domains');
  t.ok(sd?.master && sd.spec.type === 'file', 'the file storage domain is the master');
  const diskJob = await api.call<Job>('POST', '/api/v1/disks', { name: 'root', storageDomainId: sd!.id, sizeBytes: 1024 ** 3, provisioning: 'thin' });
  const diskDone = await jobEnd(api, diskJob, 120_000);
  t.equal(diskDone.state, 'succeeded', `disk.create: ${diskDone.error?.message ?? 'ok'}`);
  const disk = await api.call<Disk>('GET', `/api/v1/disks/${diskJob.targetId}`);
  t.equal(disk.status, 'ready');

  const guest = JSON.parse(readFileSync(join(REPO, 'examples/tiny-guest.json'), 'utf8')) as Record<string, unknown>;
  const serialLog = join(dir, 'tiny.serial');
  const vm = await api.call<Vm>('POST', '/api/v1/vms', { name: 'tiny', spec: { ...guest, name: 'tiny', serialLog, disks: [{ name: 'vda', diskId: disk.id }] } });
  const startJob = await api.call<Job>('POST', `/api/v1/vms/${vm.id}/start`, {});
  const started = await jobEnd(api, startJob, 120_000);
  t.equal(started.state, 'succeeded', `vm.start: ${started.error?.message ?? 'ok'}`);
  await waitForSerialMarker(serialLog, 'LAB-BOOT-OK', 60_000);
  t.pass('the tiny guest booted (LAB-BOOT-OK on its serial console)');
  const up = await until('VM Up in the API', 30_000, async () => {
    const v = await api.call<Vm>('GET', `/api/v1/vms/${vm.id}`);
    return v.status === 'Up' ? v : undefined;
  });
  t.ok(up.hostId, 'GET /vms shows it Up on the host');

  const stopJob = await api.call<Job>('POST', `/api/v1/vms/${vm.id}/stop`, {});
  t.equal((await jobEnd(api, stopJob, 60_000)).state, 'succeeded', 'stopped');
  await until('VM Down in the API', 30_000, async () => ((await api.call<Vm>('GET', `/api/v1/vms/${vm.id}`)).status === 'Down' ? true : undefined));
  await api.call('DELETE', `/api/v1/vms/${vm.id}`);
  t.equal((await api.call<Vm[]>('GET', '/api/v1/vms')).length, 0, 'deleted');
  const delJob = await api.call<Job>('DELETE', `/api/v1/disks/${disk.id}`);
  t.equal((await jobEnd(api, delJob, 60_000)).state, 'succeeded', 'the disk deleted too');

  // SIGTERM stops both children; a second run finds everything in place.
  aio.child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => aio.child.once('exit', (c) => r(c)));
  t.equal(code, 0, 'SIGTERM: a clean exit');
  const left = await run('pgrep', ['-f', agentToml]).then((r) => r.stdout.trim(), () => '');
  t.equal(left, '', 'no agent left running');
  aio = startAllInOne();
  await aio.ready;
  t.ok(aio.lines.some((l) => /is enrolled$/.test(l)) && aio.lines.some((l) => /is the pool master$/.test(l)), 'the second run changes nothing: enrolled, master in place');
});
