// hostvisor-ctl hosts maintenance | activate | maintenance-cancel, run as a user runs them
// (bin/hostvisor-ctl, a child process) against a controller built as main.ts builds it (VM and
// migration parts) with two real agents on libvirt's test driver. The test driver cannot migrate
// a domain, so a host with a VM of ours ends MaintenanceFailed (the real path, the agent's own
// refusal), and its own external domain keeps an otherwise empty host PreparingForMaintenance
// (an external VM does that in oVirt too): both are what the commands must show.
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { Host } from '../../../controller/model/hosts.js';
import { maintenanceRig } from '../migration/test-driver-maintenance.js';
import { addLocalHosts } from '../vms/controller-harness.js';

t.setTimeout(240_000);
const rig = await maintenanceRig(t);
const c = await rig.controller();
t.teardown(() => c.close());
const [hostA, hostB] = await addLocalHosts(c, rig.agents.map((a) => a.config['rpc.port'])) as [Host, Host];
const { call } = c.api;

const CTL = join(import.meta.dirname, '..', '..', '..', '..', 'bin', 'hostvisor-ctl');
function ctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(CTL, ['--url', `https://localhost:${c.api.port}`, '--creds', join(c.api.dir, 'admin'), ...args], { timeout: 120_000 },
      (e, stdout, stderr) => resolve({ code: e ? (e as { code?: number }).code ?? -1 : 0, stdout, stderr }));
  });
}
const statusOf = async (h: Host): Promise<string> => (await call('GET', `/api/v1/hosts/${h.id}`)).body.status;

async function running(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const d = await call('POST', '/api/v1/vms', { body: { name, spec: { memoryMiB: 64, domainType: 'qemu' }, ...extra } });
  const s = await call('POST', `/api/v1/vms/${d.body.id}/start`, { body: { host: 'a' } });
  const j = await c.jobEnd(s.headers.location as string);
  if (j.state !== 'succeeded') throw new Error(`start ${name}: ${JSON.stringify(j.error)}`);
  return d.body.id as string;
}
async function stopped(id: string): Promise<void> {
  await call('POST', `/api/v1/vms/${id}/stop`);
  await c.until(`/api/v1/vms/${id}`, (a) => a.body.status === 'Down', 15_000, 'VM stopped');
}

t.test('hosts maintenance refused: exit 1, every blocker on its own line, the host stays Up', async (t) => {
  const pinned = await running('cli-pinned', { pinnedHost: 'a' });
  const r = await ctl('hosts', 'maintenance', 'a');
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, /Conflict \(HTTP 409\): host .* cannot enter maintenance: .*\n\s+- .*cli-pinned/, `the blocker listed: ${r.stderr.trim()}`);
  t.equal(await statusOf(hostA), 'Up', 'A stays Up');
  await stopped(pinned);
});

t.test('hosts maintenance follows the job with a progress bar; a VM that cannot move ends MaintenanceFailed (exit 1, naming it), and maintenance-cancel returns the host to Up', async (t) => {
  const vm = await running('cli-stuck');
  const r = await ctl('hosts', 'maintenance', 'a', '--reason', 'kernel update', '--timeout', '100');
  t.match(r.stdout, /\[[#-]{30}\]\s+\d+% (pending|running)/, `a progress bar: ${r.stdout.trim().split('\n')[0]}`);
  t.equal(r.code, 1, 'exit 1: the maintenance failed');
  t.match(r.stderr, /maintenance of a failed: MaintenanceFailed: .*cli-stuck/, `the VM named: ${r.stderr.trim()}`);
  t.equal(await statusOf(hostA), 'MaintenanceFailed', 'A is MaintenanceFailed');
  const shown = await ctl('hosts', 'get', 'a');
  t.match(shown.stdout, /MaintenanceFailed.*cli-stuck/, 'hosts get shows the reason');
  const cancel = await ctl('hosts', 'maintenance-cancel', 'a', '--reason', 'later');
  t.equal(cancel.code, 0, cancel.stderr);
  t.match(cancel.stdout, /^host a: (Up|Initializing)/, `cancel: ${cancel.stdout.trim()}`);
  await c.until(`/api/v1/hosts/${hostA.id}`, (a) => a.body.status === 'Up', 15_000, 'A Up again');
  const again = await ctl('hosts', 'maintenance-cancel', 'a');
  t.same([again.code, /Conflict \(HTTP 409\)/.test(again.stderr)], [1, true], `nothing to cancel: exit 1 (${again.stderr.trim()})`);
  await stopped(vm);
});

t.test('hosts maintenance --no-wait answers with the job; activate brings the host back (JSON with --json)', async (t) => {
  const r = await ctl('hosts', 'maintenance', 'b', '--no-wait');
  t.equal(r.code, 0, r.stderr);
  const jobId = /job ([0-9a-f-]{36})/.exec(r.stdout)?.[1];
  t.ok(jobId, `the job is named: ${r.stdout.trim()}`);
  t.equal(await statusOf(hostB), 'PreparingForMaintenance', 'B PreparingForMaintenance');
  const a = await ctl('--json', 'hosts', 'activate', 'b');
  t.equal(a.code, 0, a.stderr);
  t.equal(JSON.parse(a.stdout).id, hostB.id, 'the host as JSON');
  await c.until(`/api/v1/hosts/${hostB.id}`, (x) => x.body.status === 'Up', 15_000, 'B Up again');
  const j = await ctl('jobs', 'wait', jobId!, '--timeout', '20');
  t.match(j.stderr, /failed: Cancelled/, `its maintenance job ended Cancelled: ${j.stderr.trim()}`);
  t.equal((await ctl('hosts', 'activate', 'nowhere')).code, 1, 'an unknown host: exit 1');
});
