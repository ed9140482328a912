// hostvisor-ctl as a user runs it (bin/hostvisor-ctl, a child process) against a real API server:
// tables for people, --json for scripts, exit codes, `jobs wait` with its progress bar.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startApi } from '../http/harness.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..', '..', '..');
const CTL = join(REPO, 'bin', 'hostvisor-ctl');

const api = await startApi();
t.teardown(() => api.close());
const base = ['--url', `https://localhost:${api.port}`, '--creds', join(api.dir, 'admin')];

async function ctl(args: string[], creds = base): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(CTL, [...creds, ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** The CLI started, its output readable while it runs (a `jobs wait` is watched mid-way). */
function ctlLive(args: string[]): { out: () => string; done: Promise<{ code: number; stdout: string; stderr: string }> } {
  const child = spawn(CTL, [...base, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
  return { out: () => stdout, done };
}

/** Polls (bounded) until `f` holds. */
async function until(f: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('hosts add prints a token and the enroll command; --json gives the token to scripts', async (t) => {
  const r = await ctl(['hosts', 'add', 'node1', '--address', '127.0.0.1']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /hostvisor enroll --controller https:\/\/localhost:\d+ --token hvt1\./);
  const j = await ctl(['--json', 'hosts', 'add', 'node2', '--address', '127.0.0.2', '--ttl', '600']);
  t.match(JSON.parse(j.stdout).token, /^hvt1\./);
  const bad = await ctl(['hosts', 'add', 'node3', '--address', '127.0.0.3', '--cluster', 'nowhere']);
  t.same([bad.code, /NotFound \(HTTP 404\)/.test(bad.stderr)], [1, true], 'a refusal: exit 1 with the code');
});

t.test('hosts, clusters and vms list as tables and as JSON', async (t) => {
  const cluster = await api.store.clusters.get('default');
  const h = await api.store.hosts.create({ name: 'node9', address: '10.250.0.9', port: 54321, clusterId: cluster.id, certFingerprint: 'f' });
  await api.store.vms.create({ name: 'tiny', clusterId: cluster.id, spec: { memoryMiB: 128 }, memoryReservationMiB: 128, cpuReservation: 1, pinnedHostId: null, priority: 0 });
  const hosts = await ctl(['hosts', 'list']);
  t.match(hosts.stdout, /^NAME\s+STATUS\s+SPM\s+ADDRESS/);
  t.match(hosts.stdout, /node9\s+Installing\s+10\.250\.0\.9/);
  t.same(JSON.parse((await ctl(['--json', 'hosts', 'list'])).stdout).map((x: { id: string }) => x.id), [h.id]);
  t.match((await ctl(['clusters', 'list'])).stdout, /default\s+evenly_distributed\s+highUtilization=80/);
  t.match((await ctl(['vms', 'list'])).stdout, /tiny\s+Down\s+down\s+-\s+128 MiB\s+1/);
});

t.test('jobs get and jobs wait: a pending job times out (exit 3), an ended one returns its outcome', async (t) => {
  const vm = (await api.store.vms.list())[0]!;
  const start = await api.call('POST', `/api/v1/vms/${vm.id}/start`);
  const id = start.body.id as string;
  const got = await ctl(['jobs', 'get', id]);
  t.match(got.stdout, new RegExp(`${id}\\s+vm.start\\s+pending\\s+0%`));
  const waited = await ctl(['jobs', 'wait', id, '--timeout', '1']);
  t.equal(waited.code, 3, 'still pending after 1 s: nothing runs jobs yet');
  t.match(waited.stdout, /\[-{30}\]\s+0% pending/, 'the progress bar');
  // What the executor will do, done by hand here: the CLI must report each outcome.
  await api.store.jobs.advance(id, { state: 'running', progress: 50, steps: [{ name: 'place', state: 'running', startedAt: Date.now(), endedAt: null }] });
  const ending = ctlLive(['jobs', 'wait', id, '--timeout', '30']);
  // The job fails only once the CLI has shown it running (a loaded machine starts the CLI slowly).
  await until(() => /50% running/.test(ending.out()), 30_000, 'jobs wait shows the running job');
  await api.store.jobs.advance(id, { state: 'failed', error: { code: 'NoPlacement', message: 'no host has 128 MiB free', details: {} } });
  const w = await ending.done;
  t.equal(w.code, 1, 'a failed job: exit 1');
  t.match(w.stdout, /#{15}-{15}\]\s+50% running \(place\)/);
  t.match(w.stderr, /failed: NoPlacement: no host has 128 MiB free/);
  t.equal(JSON.parse((await ctl(['--json', 'jobs', 'get', id])).stdout).state, 'failed');
});

t.test('usage errors exit 2; missing credentials and the read-only role are reported', async (t) => {
  t.equal((await ctl(['hosts', 'add', 'x'])).code, 2, 'no --address');
  t.equal((await ctl(['nonsense'])).code, 2);
  const noCreds = await ctl(['hosts', 'list'], ['--url', `https://localhost:${api.port}`, '--creds', '/nonexistent']);
  t.match(noCreds.stderr, /NoCredentials/);
  const ro = await ctl(['hosts', 'add', 'y', '--address', '127.0.0.1'], ['--url', `https://localhost:${api.port}`, '--creds', join(api.dir, 'read-only')]);
  t.same([ro.code, /Forbidden \(HTTP 403\)/.test(ro.stderr)], [1, true]);
});

t.test('storage, disks, vms and hosts by name: each command sends what it says and shows what comes back', async (t) => {
  const job = await ctl(['--json', 'storage', 'add', 'local', '--file', '/var/lib/hostvisor/storage']);
  t.equal(job.code, 0, job.stderr);
  t.equal(JSON.parse(job.stdout).kind, 'storage-domain.create', 'storage add records a storage-domain.create job');
  t.equal((await ctl(['storage', 'add', 'both', '--file', '/x', '--block', '/dev/loop9'])).code, 2, 'exactly one of --file and --block');
  const sd = (await api.store.storageDomains.list({ clusterId: (await api.store.clusters.get('default')).id }))[0]!;
  t.match((await ctl(['storage', 'list'])).stdout, /local\s+file\s+\S*\s*pending/);

  const disk = await ctl(['--json', 'disks', 'create', 'd1', '--size', '1G', '--domain', 'local']);
  t.equal(disk.code, 0, disk.stderr);
  const d = await api.store.disks.get(JSON.parse(disk.stdout).targetId);
  t.same([d.sizeBytes, d.provisioning, d.storageDomainId], [1024 ** 3, 'thin', sd.id], '1G thin on the domain named local');
  t.equal((await ctl(['disks', 'create', 'd2', '--size', 'lots', '--domain', 'local'])).code, 1, 'a size that is not one is refused');

  const specFile = join(api.dir, 'spec.json');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(specFile, JSON.stringify({ name: 'ignored', memoryMiB: 128, domainType: 'qemu' }));
  const vm = await ctl(['--json', 'vms', 'create', 'web1', '--spec', specFile, '--disk', 'vda=d1']);
  t.equal(vm.code, 0, vm.stderr);
  const v = JSON.parse(vm.stdout);
  t.match([v.name, v.spec.name, v.spec.disks], ['web1', 'web1', [{ name: 'vda', diskId: d.id }]], 'the disk by name becomes its id');
  const start = await ctl(['--json', 'vms', 'start', 'web1']);
  t.same([JSON.parse(start.stdout).kind, JSON.parse(start.stdout).targetId], ['vm.start', v.id], 'vms start by name');
  t.match((await ctl(['vms', 'get', 'web1'])).stdout, new RegExp(`web1\\s+Down\\s+\\w+\\s+-\\s+128 MiB\\s+1\\s+vda=${d.id}`));
  t.match((await ctl(['vms', 'get', 'nosuch'])).stderr, /NotFound: no VM named nosuch/);

  t.match((await ctl(['hosts', 'set-priority', 'node9', '-1'])).stdout, /node9: SPM priority -1/);
  t.match((await ctl(['hosts', 'get', 'node9'])).stdout, /node9\s+Installing/);
  const events = await ctl(['events', 'list', '--limit', '500']);
  t.match(events.stdout, /host\.updated\s+host \S+\s+host node9: spmPriority -1/, 'the change is in the audit log');
});

t.test('events watch prints the backlog and live events, and ends after --count', async (t) => {
  const backlog = await api.store.eventLog.latestSeq();
  const watching = ctl(['events', 'watch', '--since', '0', '--count', String(backlog + 1)]);
  await new Promise((r) => setTimeout(r, 2_000));
  t.equal((await ctl(['hosts', 'set-priority', 'node9', '7'])).code, 0);
  const w = await watching;
  t.equal(w.code, 0, w.stderr);
  const lines = w.stdout.trim().split('\n');
  t.equal(lines.length, backlog + 1, `the ${backlog} of the backlog and one live`);
  t.match(lines[0], /^\S+Z\s+1 info/);
  t.match(lines.at(-1), /host\.updated host \S+: host node9: spmPriority 7$/, 'the live one last');
});
