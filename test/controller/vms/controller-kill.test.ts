// Must-show 5: the controller process (dist/controller/main.js on its SQLite database) is killed
// with -9 during 10 concurrent VM starts and started again. Each VM ends Up exactly once (its
// id counted across both hosts' agents) or its job is failed with a reason, and no host runs a
// Hostvisor VM the store does not know. Two hosts: agents on libvirt's test driver, enrolled by
// token as real hosts are. Their before_vm_start hook sleeps 0-2.9 s (by VM id), so the kill
// finds VM.create calls in flight; a second round kills as the tenth start is accepted, before
// most jobs have begun. The controller runs with its default settings (polls every 3 s).
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from '../../../controller/model/jobs.js';
import type { Vm } from '../../../controller/model/vms.js';
import { addHook } from '../../agent/hooks/hook-fixtures.js';
import { scratchDir } from '../../agent/harness.js';
import { ControllerProcess, enrolledAgent, type EnrolledAgent } from './controller-process.js';

const VMS = 10;
t.setTimeout(600_000);
const ctl = await ControllerProcess.start();
t.teardown(() => ctl.stop());

// A slow before_vm_start: VM.create answers only after it, so creates are in flight at the kill.
const hooks = scratchDir('hv-slow-hooks-');
addHook(hooks, 'before_vm_start', '50_slow', 'n=$(printf "%d" "0x$(echo "$vmId" | cut -c1-4)"); sleep "$((n % 3)).$((n % 10))"; exit 0');
const agents: EnrolledAgent[] = [];
for (const name of ['k1', 'k2']) agents.push(await enrolledAgent(ctl, name, { 'hooks.dir': hooks }));
t.teardown(async () => { for (const a of agents) await a.stop(); });
const clients = await Promise.all(agents.map((a) => a.connect()));
t.teardown(async () => { for (const c of clients) await c.close(); });

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(250);
  }
}

await until('both hosts Up', 30_000, async () => {
  const hosts = await ctl.client.call<Array<{ status: string }>>('GET', '/api/v1/hosts');
  return hosts.length === 2 && hosts.every((h) => h.status === 'Up') ? true : undefined;
});

/** Every VM id the agents list (not external), with the hosts it is on and its status there. */
async function domains(): Promise<Map<string, Array<{ host: string; status: string }>>> {
  const out = new Map<string, Array<{ host: string; status: string }>>();
  for (const [i, c] of clients.entries()) {
    for (const v of (await c.call('Host.getVMList', {})).vmList) {
      if (v.external) continue;
      out.set(v.vmId, [...(out.get(v.vmId) ?? []), { host: agents[i]!.name, status: v.status }]);
    }
  }
  return out;
}

async function round(t: Test, label: string, killAfterMs: number | null, expectCreatesInFlight: boolean): Promise<void> {
  const ids: string[] = [];
  for (let i = 0; i < VMS; i++) {
    ids.push((await ctl.client.call<Vm>('POST', '/api/v1/vms', { name: `${label}-${i}`, spec: { memoryMiB: 64, domainType: 'qemu' } })).id);
  }
  const t0 = performance.now();
  let accepted = 0;
  let killed: Promise<void> | null = null;
  const starts = await Promise.allSettled(ids.map(async (id) => {
    const job = await ctl.client.call<Job>('POST', `/api/v1/vms/${id}/start`, {});
    // The kill comes as the tenth start is accepted, or a while after.
    if (++accepted === VMS) killed = (killAfterMs === null ? Promise.resolve() : sleep(killAfterMs)).then(() => ctl.kill9());
    return job;
  }));
  await killed;
  const killAt = performance.now() - t0;
  const jobs = starts.map((s) => (s.status === 'fulfilled' ? s.value : null));
  t.equal(jobs.filter(Boolean).length, VMS, `all ${VMS} starts accepted (202) before the kill`);
  const mid = await domains();
  t.comment(`${label}: kill -9 ${Math.round(killAt)} ms after the first request; at that moment the agents list ${ids.filter((id) => mid.has(id)).length} of the VMs`);

  const r0 = performance.now();
  await ctl.restart();
  const ended = await until('every start job ended', 120_000, async () => {
    const all = await Promise.all(jobs.map((j) => ctl.client.call<Job>('GET', `/api/v1/jobs/${j!.id}`)));
    return all.every((j) => j.state === 'succeeded' || j.state === 'failed') ? all : undefined;
  });
  t.comment(`${label}: restarted; every job ended ${((performance.now() - r0) / 1000).toFixed(1)} s after the restart began`);
  const resumed = ctl.logs.filter((l) => l.includes('"msg":"job resumed"')).length;
  t.ok(ctl.logs.some((l) => l.includes('resuming a job a previous controller left unfinished')), `the restarted controller resumed unfinished jobs (${resumed} runs resumed so far)`);

  // Reconcile settles the runtime status from the agents' lists.
  await sleep(4_000);
  const seen = await domains();
  let up = 0;
  for (const [i, id] of ids.entries()) {
    const job = ended[i]!;
    const on = seen.get(id) ?? [];
    const vm = await ctl.client.call<Vm>('GET', `/api/v1/vms/${id}`);
    t.ok(on.length <= 1, `${label}-${i}: on ${on.length} host(s) ${on.map((x) => `${x.host}:${x.status}`).join(' ')}`);
    if (job.state === 'succeeded') {
      up++;
      t.same(on.map((x) => x.status), ['Up'], `${label}-${i}: job succeeded, Up exactly once (${job.steps.map((s) => s.name).join(' > ')})`);
      t.equal(vm.status, 'Up', `${label}-${i}: GET /vms shows Up`);
    } else {
      t.ok(job.error && job.error.message.length > 0, `${label}-${i}: job failed with a reason: ${job.error?.code}: ${job.error?.message}`);
      t.equal(vm.status, on[0]?.status ?? 'Down', `${label}-${i}: GET /vms shows what the agent has (${vm.status})`);
    }
  }
  t.comment(`${label}: ${up} of ${VMS} Up, ${VMS - up} failed with a reason`);
  // A job whose VM.create was sent by the killed controller shows it before its resumed run's look.
  const afterCreate = ended.filter((j) => j.steps.findIndex((s) => s.name === 'VM.create') < j.steps.map((s) => s.name).lastIndexOf('look for the VM on every host')
    && j.steps.some((s) => s.name === 'VM.create')).length;
  const resumedJobs = ended.filter((j) => j.steps.filter((s) => s.name === 'look for the VM on every host').length > 1).length;
  t.comment(`${label}: ${resumedJobs} job(s) resumed after a first run, ${afterCreate} of them with their VM.create sent before the kill`);
  if (expectCreatesInFlight) t.ok(afterCreate > 0, `the kill found VM.create calls in flight (${afterCreate} resumed after their create was sent): the case where a second create would be a second VM`);
  const known = new Set((await ctl.client.call<Vm[]>('GET', '/api/v1/vms')).map((v) => v.id));
  const unknown = [...seen.keys()].filter((id) => !known.has(id));
  t.same(unknown, [], 'no host runs a Hostvisor VM the store does not know');
}

t.test('kill -9 while VM.create calls wait on the agents (a slow before_vm_start), then restart', async (t) => {
  await round(t, 'kill-mid', 600, true);
});

t.test('kill -9 as the tenth start is accepted, before most jobs have begun, then restart', async (t) => {
  await round(t, 'kill-early', null, false);
});
