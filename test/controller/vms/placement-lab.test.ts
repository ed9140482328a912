// Must-show 3: 10 VMs started at once on two hosts with memory for 7 give 7 Up and 3 answered
// 422 naming the memory filter for each host, with no overbooking. Real parts: two hosts of
// the multi-host lab (each its own libvirtd), agents enrolled by token with the controller's
// CA, the tiny guest as a TCG (<domain type='qemu'>) VM, and the controller built as main.ts
// builds it (REST API, runtime, installVms), in this process.
//
// "Memory for 7": the hosts are namespaces of one machine, so both report the same memTotal
// (Host.getStats). Every VM reserves R = 2048 MiB (memoryReservationMiB; the guest itself uses
// 128), and the host reserved-memory setting keeps memTotal - 4.5 R for the host, so each host
// can book 4 VMs. One VM is started first on h2 (it books one of h2's four), which leaves room
// for 4 + 3 = 7 of the 10.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { enroll } from '../../../agent/cli/enroll.js';
import { HostvisorClient } from '../../../api/client/client.js';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { bounded, scratchDir, testConfig } from '../../agent/harness.js';
import { GUEST_DIR, serialPathFor, waitForSerialMarker } from '../../lab/guest.js';
import { labDown, labUp } from '../../lab/multihost/lab.js';
import { spawnLabAgent, type LabAgent } from '../../agent/storage/lab-agents.js';
import { startApi } from '../http/harness.js';
import { controllerCredentials, startController } from './controller-harness.js';

const R = 2048;
const VMS = 10;
t.setTimeout(900_000);

// Undone in reverse order, each step bounded: VMs, controller, clients, agents, API, lab.
const undo: Array<[string, () => Promise<unknown>]> = [];
t.teardown(async () => { for (const [what, fn] of undo.splice(0).reverse()) await bounded(what, fn(), 120_000); });
undo.push(['labDown', () => labDown()]);
const hosts = await labUp(2);
const api = await startApi();
undo.push(['api close', () => api.close()]);

// Enrolled as real hosts are: a token, `hostvisor enroll` (the controller signs the host's CSR
// for its lab address), then the agent on that pki.dir.
const agents: LabAgent[] = [];
undo.push(['agents stop', async () => { for (const a of agents) await a.stop(); }]);
for (const h of hosts) {
  const tok = await api.call('POST', '/api/v1/hosts', { body: { name: `h${h.index}`, address: h.address, port: 54321 } });
  const pkiDir = scratchDir(`hv-lab-enrolled-h${h.index}-`);
  await enroll({ controller: api.url, token: tok.body.token, pkiDir, name: `h${h.index}` });
  const config = await testConfig({ 'rpc.host': '0.0.0.0', 'rpc.port': 54321, 'pki.dir': pkiDir, 'pki.createDevCa': false, 'virt.domainType': 'qemu' });
  agents.push(await spawnLabAgent(h, config));
}
const clients = await Promise.all(hosts.map((h) => HostvisorClient.connect({ url: `wss://${h.address}:54321/`, ...controllerCredentials(api), timeoutMs: 20_000 })));
undo.push(['clients close', async () => { for (const cl of clients) await cl.close(); }]);
const memTotal = (await clients[0]!.call('Host.getStats', {})).memTotal;
const memTotal2 = (await clients[1]!.call('Host.getStats', {})).memTotal;
const hostReservedMemoryMiB = Math.ceil(memTotal - 4.5 * R);

const settings = resolveDecisionSettings({ hostReservedMemoryMiB, vmListIntervalMs: 2_000, vmStartTimeoutMs: 120_000 });
const c = await startController({ settings, credentials: 'own', api });
undo.push(['controller close', () => c.close()]);
const { call, store } = api;
await c.until('/api/v1/hosts', (a) => a.body.length === 2 && a.body.every((h: { status: string }) => h.status === 'Up'), 30_000, 'both lab hosts Up');
const hostIds = (await store.hosts.list()).map((h) => h.id);
const nameOf = new Map((await store.hosts.list()).map((h) => [h.id, h.name]));

const started: string[] = [];
undo.push(['VMs stop', async () => {
  for (const id of started) {
    const r = await call('POST', `/api/v1/vms/${id}/stop`).catch(() => undefined);
    if (r?.status === 202) await c.jobEnd(r.headers.location as string, 60_000).catch(() => undefined);
  }
}]);

async function define(name: string): Promise<string> {
  const spec = {
    memoryMiB: 128, vcpus: 1, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
    cmdline: 'console=ttyS0 quiet panic=-1 no_timer_check lab.end=wait', serialLog: serialPathFor(name),
  };
  const r = await call('POST', '/api/v1/vms', { body: { name, spec, memoryReservationMiB: R } });
  if (r.status !== 201) throw new Error(`define ${name}: ${r.status} ${r.text}`);
  return r.body.id as string;
}

t.test('10 VMs started at once on two hosts with memory for 7: 7 Up, 3 answered 422 naming the memory filter per host, no overbooking', async (t) => {
  t.equal(memTotal, memTotal2, `both lab hosts report memTotal ${memTotal} MiB (one machine)`);
  t.comment(`R = ${R} MiB per VM; hostReservedMemoryMiB = ${hostReservedMemoryMiB}: ${memTotal - hostReservedMemoryMiB} MiB bookable per host = ${((memTotal - hostReservedMemoryMiB) / R).toFixed(2)} R`);

  const resident = await define('place-resident');
  const r0 = await call('POST', `/api/v1/vms/${resident}/start`, { body: { host: 'h2' } });
  t.equal(r0.status, 202, 'a first VM on h2');
  t.equal((await c.jobEnd(r0.headers.location as string, 120_000)).state, 'succeeded', 'Up on h2: h2 has room for 3 more, h1 for 4');
  started.push(resident);

  const ids: string[] = [];
  for (let i = 0; i < VMS; i++) ids.push(await define(`place-${i}`));
  const t0 = performance.now();
  const answers = await Promise.all(ids.map((id) => call('POST', `/api/v1/vms/${id}/start`, { body: {} })));
  const answeredMs = performance.now() - t0;
  const accepted = ids.filter((_, i) => answers[i]!.status === 202);
  const refused = answers.filter((a) => a.status === 422);
  started.push(...accepted);
  t.equal(accepted.length, 7, `7 starts accepted (202), all ${VMS} answered in ${Math.round(answeredMs)} ms`);
  t.equal(refused.length, 3, '3 answered 422');
  for (const a of refused) {
    t.equal(a.body.code, 'NoPlacement');
    const per = Object.fromEntries(a.body.details.hosts.map((h: { hostName: string; filter: string }) => [h.hostName, h.filter]));
    t.same(per, { h1: 'memory', h2: 'memory' }, `each host named with the memory filter: ${a.body.details.hosts.map((h: { hostName: string; reason: string }) => `${h.hostName}: ${h.reason}`).join(' | ')}`);
  }

  // No overbooking: what is booked on each host (running and pending) stays within what it may book.
  const bookable = memTotal - hostReservedMemoryMiB;
  const placed = new Map<string, number>();
  for (const a of answers.filter((x) => x.status === 202)) placed.set(a.body.params.placement.hostId, (placed.get(a.body.params.placement.hostId) ?? 0) + 1);
  t.same(hostIds.map((h) => placed.get(h) ?? 0).sort(), [3, 4], `placed: ${hostIds.map((h) => `${nameOf.get(h)} ${placed.get(h) ?? 0}`).join(', ')} (plus the one on h2)`);
  for (const h of hostIds) {
    const booked = (placed.get(h) ?? 0) * R + (nameOf.get(h) === 'h2' ? R : 0);
    t.ok(booked <= bookable, `${nameOf.get(h)}: ${booked} MiB booked of ${bookable} bookable`);
  }
  const decisions = c.logs.filter((l) => l.msg === 'placement: VM placed and reserved' && ids.includes(l.fields.vm as string));
  const worst = Math.max(...decisions.map((l) => (l.fields.scores as Array<{ hostId: string; memoryPct: number }>).find((s) => s.hostId === l.fields.chosen)!.memoryPct));
  t.ok(worst <= 100, `every decision left its host at most full: highest booked memory after a placement ${worst} %`);
  t.equal(decisions.length, 7, 'each decision is logged with the scores');

  const jobs = await Promise.all(answers.filter((a) => a.status === 202).map((a) => c.jobEnd(a.headers.location as string, 180_000)));
  t.same(jobs.map((j) => j.state), Array(7).fill('succeeded'), `the 7 jobs succeeded (${Math.round(performance.now() - t0)} ms from the requests)`);
  const vms = await Promise.all(accepted.map((id) => call('GET', `/api/v1/vms/${id}`)));
  t.same(vms.map((v) => v.body.status), Array(7).fill('Up'), 'GET /vms: 7 Up');
  const lists = await Promise.all(clients.map((cl) => cl.call('Host.getVMList', {})));
  for (const id of accepted) {
    const on = lists.flatMap((l, i) => l.vmList.filter((v) => v.vmId === id).map((v) => `h${i + 1}:${v.status}`));
    t.same(on.length, 1, `${id.slice(0, 8)} on exactly one host (${on.join(' ')})`);
  }
  t.same(c.vms.reservations.list(), [], 'no reservation left once the jobs ended');

  const boots = await Promise.allSettled(accepted.map((id, i) => waitForSerialMarker(serialPathFor(`place-${ids.indexOf(id)}`), 'LAB-BOOT-OK', 240_000).then(() => i)));
  t.equal(boots.filter((b) => b.status === 'fulfilled').length, 7, `the 7 tiny guests booted (serial LAB-BOOT-OK) ${Math.round((performance.now() - t0) / 1000)} s after the requests`);
  await sleep(0);
});
