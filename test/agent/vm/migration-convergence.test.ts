// Migrations that do not converge, on two lab hosts (test/lab/multihost) with
// one agent each, driven through the API: a guest that rewrites its memory
// faster than the bandwidth lets the copy finish is aborted by its schedule's
// last step (Up on A, nothing on B); the same guest moves with post-copy and
// keeps counting on B; a migration past its completion deadline is aborted;
// and a third concurrent outgoing migration waits for one of the two slots.
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { labDown, labUp, type LabHost } from '../../lab/multihost/lab.js';
import { GUEST_DIR, waitForSerialMarker } from '../../lab/guest.js';
import { dirtyTickerScript, dirtyRateIn, labShWord, ticksIn } from '../../lab/workloads.js';
import { bounded, StatusWatch, testConfig, type VmSpecParam } from '../harness.js';
import { connectLabClient, spawnLabAgent, type LabAgent } from '../storage/lab-agents.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import type { MigrationStatsT, ParamsOf } from '../../../api/schema.js';

const echo = !!process.env['HV_TEST_LOG'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CONSOLE_DIR = '/var/log/libvirt/qemu';
type Schedule = NonNullable<ParamsOf<'VM.migrate'>['params']['convergenceSchedule']>;

/** Where host `h` keeps a guest's console log (its private /var/log/libvirt), seen from the main namespace. */
const consoleOf = (h: LabHost, name: string): string => join(h.dir, 'log', 'libvirt', 'qemu', `${name}.serial`);
const consoleText = (file: string): string => (existsSync(file) ? readFileSync(file, 'latin1') : '');

/** A guest that ticks every 100 ms and rewrites `dirtyMiBs` MiB/s of a 32 MiB region (0: ticks only). */
function guest(name: string, dirtyMiBs: number, memoryMiB: number): { vmID: string; spec: VmSpecParam } {
  const word = labShWord(dirtyTickerScript({ dirtyMiBs, regionMiB: 32 }));
  return {
    vmID: randomUUID(),
    spec: {
      name, memoryMiB, vcpus: 1, domainType: 'qemu',
      kernel: join(GUEST_DIR, 'vmlinux'), initrd: join(GUEST_DIR, 'initrd.img'),
      cmdline: `console=ttyS0 quiet panic=-1 no_timer_check ${word}`, serialLog: join(CONSOLE_DIR, `${name}.serial`),
    } as VmSpecParam,
  };
}

t.test('migrations that do not converge, post-copy, and the outgoing limit, between two lab hosts', async (t) => {
  const agents: LabAgent[] = [];
  const clients: HostvisorClient[] = [];
  const started: string[] = [];
  t.teardown(async () => {
    for (const c of clients) for (const id of started) await bounded('VM.destroy', c.call('VM.destroy', { vmID: id }).catch(() => {}), 30_000);
    for (const c of clients) await bounded('client close', c.close(), 10_000);
    for (const a of agents) await bounded('agent stop', a.stop(), 30_000);
    await bounded('labDown', labDown(), 120_000);
  });
  const t0 = performance.now();
  const [hA, hB] = (await labUp(2)) as [LabHost, LabHost];
  /** An agent in lab host `h` (its console dir made), with a client and a status watch on it. */
  const agentOn = async (h: LabHost): Promise<{ agent: LabAgent; client: HostvisorClient; watch: StatusWatch }> => {
    await h.exec(['mkdir', '-p', CONSOLE_DIR]);
    const agent = await spawnLabAgent(h, await testConfig({
      'rpc.host': '0.0.0.0', 'rpc.port': 54321, 'virt.domainType': 'qemu',
      'migration.libvirtTransport': 'tcp', 'migration.peerTlsServername': 'localhost',
      'migration.monitorIntervalMs': 250, 'migration.incomingStartTimeoutMs': 15_000, 'migration.maxOutgoing': 2,
    }), { echo });
    agents.push(agent);
    const client = await connectLabClient(agent);
    clients.push(client);
    return { agent, client, watch: new StatusWatch(client) };
  };
  const [onA, onB] = await Promise.all([agentOn(hA), agentOn(hB)]);
  const { agent: aA, client: cA, watch: watchA } = onA;
  const { agent: aB, client: cB, watch: watchB } = onB;
  t.comment(`lab and agents up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const events = new Map<string, MigrationStatsT[]>();
  cA.on('VM_migration_status', (vmId, body) => { events.set(vmId, [...(events.get(vmId) ?? []), { vmId, ...body }]); });
  const dst = `${hB.address}:54321`;
  const domainsOnB = async (): Promise<string[]> => (await hB.exec(['virsh', '-c', 'qemu:///system', 'list', '--all', '--name'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const listedOnB = async (vmID: string): Promise<boolean> => (await cB.call('Host.getVMList', {})).vmList.some((v) => v.vmId === vmID);
  const launch = async (g: ReturnType<typeof guest>, marker: string): Promise<void> => {
    started.push(g.vmID);
    await cA.call('VM.create', { vmID: g.vmID, spec: g.spec });
    await watchA.wait(g.vmID, 'Up', 60_000);
    await waitForSerialMarker(consoleOf(hA, g.spec.name), marker, 120_000);
  };
  const ended = async (vmID: string, ms: number): Promise<MigrationStatsT> => {
    const until = Date.now() + ms;
    let st = await cA.call('VM.getMigrationStatus', { vmID });
    while (st.status === 'in_progress' && Date.now() < until) { await sleep(250); st = await cA.call('VM.getMigrationStatus', { vmID }); }
    return st;
  };
  /** B keeps nothing of a failed migration: not in its agent, not in its libvirt, no run files (waits for the cleanup). */
  const bIsClean = async (t: Test, g: ReturnType<typeof guest>): Promise<void> => {
    const until = Date.now() + 30_000;
    while (Date.now() < until && ((await listedOnB(g.vmID)) || (await domainsOnB()).includes(g.spec.name))) await sleep(250);
    t.notOk(await listedOnB(g.vmID), "B's agent does not list the VM");
    t.notOk((await domainsOnB()).includes(g.spec.name), "B's libvirt holds no domain of it");
    t.notOk(existsSync(join(aB.config['hooks.runDir'], g.vmID)), "no run files of it on B (the guest has no storage disks, so there is no image to prepare)");
  };
  const ticksGoOn = async (h: LabHost, name: string): Promise<[number, number]> => {
    const before = Math.max(-1, ...ticksIn(consoleText(consoleOf(h, name))));
    await sleep(1_500);
    return [before, Math.max(-1, ...ticksIn(consoleText(consoleOf(h, name))))];
  };

  await t.test('no convergence: a guest dirtying faster than the bandwidth is aborted by the schedule\'s last step; Up on A, nothing on B', async (t) => {
    const g = guest('hv-conv-abort', 30, 256);
    await launch(g, 'LAB-DIRTY-READY');
    const schedule: Schedule = {
      init: [{ name: 'setDowntime', params: ['50'] }],
      stalling: [{ limit: 0, action: { name: 'setDowntime', params: ['100'] } }, { limit: 1, action: { name: 'abort', params: [] } }],
    };
    const tm = performance.now();
    await cA.call('VM.migrate', { vmID: g.vmID, params: { dst, maxBandwidth: 5, convergenceSchedule: schedule } });
    const st = await ended(g.vmID, 120_000);
    const secs = ((performance.now() - tm) / 1000).toFixed(1);
    t.equal(st.status, 'failed', `the migration failed after ${secs} s: ${st.error?.message}`);
    t.equal(st.error?.step, 'abort by schedule', "the error's step: abort by schedule");
    t.ok((st.memoryIteration ?? 0) >= 2, `libvirt was in memory iteration ${st.memoryIteration} (the schedule steps on iterations)`);
    const seen = events.get(g.vmID) ?? [];
    const downtimes = [...new Set(seen.flatMap((e) => (e.maxDowntime === undefined ? [] : [e.maxDowntime])))];
    t.same(downtimes, [50, 100], `the events carried the downtime in force as the schedule set it: ${downtimes.join(' -> ')} ms`);
    t.ok(seen.some((e) => (e.dataRemaining ?? 0) > 0), 'and the data remaining');
    t.ok(seen.every((e, i) => i === 0 || e.progress >= seen[i - 1]!.progress) && seen.every((e) => e.progress <= 99), `progress monotone, held below 100 (${seen.map((e) => e.progress).join(',')})`);
    await watchA.wait(g.vmID, 'Up', 30_000, tm);
    t.pass('the VM is Up on A again');
    const [before, after] = await ticksGoOn(hA, g.spec.name);
    t.ok(after > before, `it keeps counting on A (${before} -> ${after})`);
    const rate = dirtyRateIn(consoleText(consoleOf(hA, g.spec.name)));
    t.comment(`guest dirty rate ${rate?.toFixed(1) ?? '?'} MiB/s against 5 MiB/s of bandwidth`);
    await bIsClean(t, g);
    await cA.call('VM.destroy', { vmID: g.vmID });
  });

  await t.test('post-copy completes for the same guest: the schedule switches and the counter goes on on B', async (t) => {
    const g = guest('hv-conv-postcopy', 30, 256);
    await launch(g, 'LAB-DIRTY-READY');
    const schedule: Schedule = { init: [], stalling: [{ limit: 0, action: { name: 'postcopy' } }] };
    let cancelInPostcopy: Promise<unknown> | undefined;
    let bInPostcopy: Promise<{ onB: string | undefined; stillCopying: boolean }> | undefined;
    cA.on('VM_migration_status', (vmId, body) => {
      if (vmId === g.vmID && body.postcopy && body.status === 'in_progress' && !cancelInPostcopy) {
        cancelInPostcopy = cA.call('VM.migrateCancel', { vmID: g.vmID }).then(() => 'accepted', (e: { code?: number; message?: string }) => e);
        // B's status a moment into post-copy (the guest already runs there), and whether the copy still ran after.
        bInPostcopy = (async () => {
          await sleep(1_000);
          const onB = (await cB.call('Host.getVMList', {})).vmList.find((v) => v.vmId === g.vmID)?.status;
          const stillCopying = (await cA.call('VM.getMigrationStatus', { vmID: g.vmID })).status === 'in_progress';
          return { onB, stillCopying };
        })();
      }
    });
    const tm = performance.now();
    // 10 MiB/s: still below what the guest dirties, and post-copy (held to the same bandwidth) ends sooner.
    await cA.call('VM.migrate', { vmID: g.vmID, params: { dst, maxBandwidth: 10, convergenceSchedule: schedule } });
    const down = await watchA.wait(g.vmID, 'Down', 120_000, tm);
    t.equal(down['exitMessage'], 'migration succeeded', `A is Down with "migration succeeded" after ${((performance.now() - tm) / 1000).toFixed(1)} s`);
    await watchB.wait(g.vmID, 'Up', 30_000);
    const st = await ended(g.vmID, 30_000);
    t.equal(st.status, 'done', 'getMigrationStatus: done');
    t.equal(st.postcopy, true, 'getMigrationStatus: postcopy true');
    t.ok((events.get(g.vmID) ?? []).some((e) => e.postcopy && e.status === 'in_progress'), 'a VM_migration_status event said postcopy while it ran');
    const seen = bInPostcopy ? await bInPostcopy : undefined;
    if (seen?.stillCopying) t.equal(seen.onB, 'Migration Destination', 'during post-copy B shows Migration Destination, not Up, though the guest runs there');
    else t.comment(`post-copy ended within 1 s; B's status then: ${seen?.onB}`);
    if (cancelInPostcopy) {
      const r = await cancelInPostcopy as { code?: number; message?: string } | string;
      t.equal(typeof r === 'object' ? r.code : r, 47, `a cancel in post-copy is refused: ${typeof r === 'object' ? r.message : r}`);
      t.match(typeof r === 'object' ? r.message ?? '' : '', /post-copy|already ended/, 'saying it cannot be undone (or that it had already ended)');
    }
    const lastA = Math.max(...ticksIn(consoleText(consoleOf(hA, g.spec.name))));
    const [before, after] = await ticksGoOn(hB, g.spec.name);
    const firstB = ticksIn(consoleText(consoleOf(hB, g.spec.name)))[0];
    t.ok(firstB !== undefined && firstB > lastA - 5 && firstB <= lastA + 50, `the counter on B continues A's (first on B ${firstB}, last on A ${lastA})`);
    t.ok(after > before, `and keeps counting on B (${before} -> ${after})`);
    t.notMatch(consoleText(consoleOf(hB, g.spec.name)), /LAB-BOOT-OK/, 'no boot on B');
    await cA.call('VM.destroy', { vmID: g.vmID });
    await cB.call('VM.destroy', { vmID: g.vmID });
  });

  await t.test('a post-copy that fails (the destination QEMU dies) destroys the VM on both hosts and says so', async (t) => {
    const g = guest('hv-conv-pcfail', 30, 256);
    await launch(g, 'LAB-DIRTY-READY');
    let killed: Promise<string> | undefined;
    cA.on('VM_migration_status', (vmId, body) => {
      if (vmId !== g.vmID || !body.postcopy || body.status !== 'in_progress' || killed) return;
      // Post-copy slowed to 1 MiB/s (migrateChangeParams applies to the phase running), then B's QEMU killed.
      killed = (async () => {
        await cA.call('VM.migrateChangeParams', { vmID: g.vmID, params: { maxBandwidth: 1 } });
        const r = await hB.exec(['virsh', '-c', 'qemu:///system', 'destroy', g.spec.name]);
        return r.stdout.trim();
      })().catch((e: Error) => `not killed: ${e.message}`);
    });
    const tm = performance.now();
    await cA.call('VM.migrate', { vmID: g.vmID, params: { dst, maxBandwidth: 5, convergenceSchedule: { init: [], stalling: [{ limit: 0, action: { name: 'postcopy' } }] } } });
    const st = await ended(g.vmID, 120_000);
    t.comment(`B's domain: ${killed ? await killed : 'never killed (no post-copy event)'}`);
    t.equal(st.status, 'failed', `the migration failed after ${((performance.now() - tm) / 1000).toFixed(1)} s: ${st.error?.message}`);
    t.equal(st.error?.step, 'postcopy', "the error's step: postcopy");
    t.match(st.error?.message ?? '', /destroyed on both hosts/, 'saying the VM was destroyed on both hosts');
    await watchA.wait(g.vmID, 'Down', 30_000, tm);
    // libvirt's STOPPED event for the destroy comes first ("destroyed outside the agent"); the agent's reason follows it.
    const until = Date.now() + 10_000;
    const lastDown = (): string => String(watchA.events.filter((e) => e.vmId === g.vmID && e.body['status'] === 'Down').at(-1)?.body['exitMessage']);
    while (!/post-copy/.test(lastDown()) && Date.now() < until) await sleep(100);
    t.match(lastDown(), /post-copy migration failed/, `A: Down, "${lastDown()}"`);
    t.notOk((await hA.exec(['virsh', '-c', 'qemu:///system', 'list', '--name'])).stdout.includes(g.spec.name), "A's libvirt runs no domain of it");
    await bIsClean(t, g);
    await cA.call('VM.destroy', { vmID: g.vmID }).catch(() => {});
  });

  await t.test('past completionTimeoutPerGiB x memory the migration is aborted: Up on A, the step says completionTimeout', async (t) => {
    const g = guest('hv-conv-deadline', 0, 128);
    await launch(g, 'LAB-TICK 5');
    const tm = performance.now();
    // 1 MiB/s for 128 MiB (1 GiB rounded up) against 8 s per GiB: aborted at about 8 s.
    await cA.call('VM.migrate', { vmID: g.vmID, params: { dst, maxBandwidth: 1, completionTimeoutPerGiB: 8, convergenceSchedule: { init: [], stalling: [] } } });
    const st = await ended(g.vmID, 60_000);
    const secs = (performance.now() - tm) / 1000;
    t.equal(st.error?.step, 'completionTimeout', `failed at completionTimeout after ${secs.toFixed(1)} s: ${st.error?.message}`);
    t.ok(secs >= 8, 'not before the deadline');
    await watchA.wait(g.vmID, 'Up', 30_000, tm);
    await bIsClean(t, g);
    await cA.call('VM.destroy', { vmID: g.vmID });
  });

  await t.test('limits: with migration.maxOutgoing 2 a third outgoing migration waits for a slot; a cancel in pre-copy (post-copy allowed) leaves the VM Up on A', async (t) => {
    const gs = [guest('hv-conv-slot-1', 0, 128), guest('hv-conv-slot-2', 0, 128), guest('hv-conv-slot-3', 0, 128)];
    await Promise.all(gs.map((g) => launch(g, 'LAB-TICK 5')));
    // Post-copy allowed, far off: the first one is cancelled in pre-copy.
    const late: Schedule = { init: [], stalling: [{ limit: 1000, action: { name: 'postcopy' } }] };
    for (const g of gs) await cA.call('VM.migrate', { vmID: g.vmID, params: { dst, maxBandwidth: 1, postcopy: true, convergenceSchedule: late } });
    const [g1, g2, g3] = gs as [ReturnType<typeof guest>, ReturnType<typeof guest>, ReturnType<typeof guest>];
    const until = Date.now() + 60_000;
    while (Date.now() < until && !((await listedOnB(g1.vmID)) && (await listedOnB(g2.vmID)))) await sleep(250);
    t.ok((await listedOnB(g1.vmID)) && (await listedOnB(g2.vmID)), 'the first two reached B (Migration Destination)');
    await sleep(3_000);
    const third = await cA.call('VM.getMigrationStatus', { vmID: g3.vmID });
    t.equal(third.status, 'in_progress', 'the third is in progress on A ...');
    t.notOk(await listedOnB(g3.vmID), '... but has not reached B: it waits for an outgoing slot');
    t.equal(third.dataRemaining, undefined, 'no libvirt copy of it has started');
    t.ok(aA.logs.every((l) => !(l.includes('migration failed') && l.includes(g3.vmID))), 'and it has not failed');
    const tc = performance.now();
    await cA.call('VM.migrateCancel', { vmID: g1.vmID });
    await watchA.wait(g1.vmID, 'Up', 60_000, tc);
    const c1 = await cA.call('VM.getMigrationStatus', { vmID: g1.vmID });
    t.equal(c1.error?.step, 'cancelled', `the cancelled one failed at the step cancelled (postcopy ${c1.postcopy})`);
    t.equal(c1.postcopy, false, 'it never switched to post-copy');
    const [before, after] = await ticksGoOn(hA, g1.spec.name);
    t.ok(after > before, `the cancelled VM keeps counting on A (${before} -> ${after})`);
    const u3 = Date.now() + 60_000;
    while (Date.now() < u3 && !(await listedOnB(g3.vmID))) await sleep(250);
    t.ok(await listedOnB(g3.vmID), `the freed slot went to the third: B has it ${((performance.now() - tc) / 1000).toFixed(1)} s after the cancel`);
    for (const g of [g2, g3]) await cA.call('VM.migrateCancel', { vmID: g.vmID });
    for (const g of gs) await watchA.wait(g.vmID, 'Up', 60_000, tc);
    t.pass('all three are Up on A after their cancels');
    for (const g of gs) await bIsClean(t, g);
    for (const g of gs) await cA.call('VM.destroy', { vmID: g.vmID });
  });
});
