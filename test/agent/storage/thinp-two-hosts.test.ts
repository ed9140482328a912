// The storage headline on two lab hosts: host A is the SPM, host B runs the
// VM, and every thin-volume extension goes from B's drive monitor through the
// mailbox on the master domain to A (lvextend), and back. Same scenario and
// settings as thinp-agent.test.ts (one host), plus an SPM failover: the SPM
// agent is killed mid-write and B takes over the SPM role.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { StatusWatch, tinyGuest } from '../harness.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import { RpcCallError, type HostvisorClient } from '../../../api/client/client.js';
import { sanlockUnavailable } from './sanlock-daemon.js';
import type { LabAgent } from './lab-agents.js';
import { MiB, createVolume, logRecords, parseLogLine as parse, twoHostPool, waitLog } from './two-host-pool.js';
import { auditExtensions, describeUnmatched } from './extension-audit.js';

const echo = !!process.env['HV_TEST_LOG'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const why = await sanlockUnavailable();

t.test('two lab hosts: A is the SPM, B runs the VM, every extension through the mailbox to A', { skip: why ?? false }, async (t) => {

  const tUp = performance.now();
  // 1 GiB chunks (768 MiB free when an extension is asked): the guest writes at up to ~360 MiB/s on
  // an idle machine, and with the lab's 512 MiB chunks (384 MiB free) it paused once in a full run.
  const pool = await twoHostPool({ name: 'thinp-2h', pvGiB: 12, echo, settings: { 'thinp.chunkMiB': 1024 } });
  t.teardown(() => pool.close());
  t.comment(`lab, agents and pool up in ${((performance.now() - tUp) / 1000).toFixed(1)} s`);
  const { sd, sp, clients } = pool;
  const [agentA0, agentB0] = pool.agents as [LabAgent, LabAgent];
  const [cA0, cB0] = clients as [HostvisorClient, HostvisorClient];

  // Both race for the SPM lease: exactly one wins, the other gets 40 (unavailable).
  const tSpm = performance.now();
  const race = await Promise.allSettled([
    cA0.call('StoragePool.spmStart', { storagepoolID: sp }),
    cB0.call('StoragePool.spmStart', { storagepoolID: sp }),
  ]);
  t.comment(`spmStart race settled in ${((performance.now() - tSpm) / 1000).toFixed(1)} s: ${race.map((r) => r.status === 'fulfilled' ? `lver ${r.value.spmLver}` : `error ${(r.reason as RpcCallError).code}: ${(r.reason as Error).message}`).join(' | ')}`);
  const winners = race.filter((r) => r.status === 'fulfilled').length;
  t.equal(winners, 1, 'exactly one host became SPM');
  const loser = race.find((r) => r.status === 'rejected');
  t.ok(loser && loser.reason instanceof RpcCallError && loser.reason.code === 40, 'the other got error 40 (unavailable)');
  if (winners !== 1) return;
  const aWon = race[0]!.status === 'fulfilled';
  // From here on "A" is the SPM and "B" the other host.
  const [agentA, agentB, cA, cB] = aWon ? [agentA0, agentB0, cA0, cB0] : [agentB0, agentA0, cB0, cA0];
  const idA = aWon ? 1 : 2;
  const idB = aWon ? 2 : 1;
  t.comment(`SPM: host h${agentA.host.index} (host id ${idA}); VM host: h${agentB.host.index} (host id ${idB})`);
  t.equal((await cA.call('StoragePool.getSpmStatus', { storagepoolID: sp })).spmStatus, 'SPM', 'A reports SPM');
  const bStatus = await cB.call('StoragePool.getSpmStatus', { storagepoolID: sp });
  t.not(bStatus.spmStatus, 'SPM', `B is not SPM (${bStatus.spmStatus}, spmId ${bStatus.spmId})`);

  const newVolume = async (t: Test): Promise<{ img: string; vol: string }> => {
    const [img, vol] = [randomUUID(), randomUUID()];
    const v = await createVolume(cA, { storagedomainID: sd, imageID: img, volumeID: vol, size: 4096 * MiB, volFormat: 'COW', preallocate: 'SPARSE', initialSize: 256 * MiB });
    t.equal(v.apparentsize, 256 * MiB, 'the thin volume starts at 256 MiB');
    t.equal(v.capacity, 4096 * MiB, 'with a 4 GiB virtual size');
    return { img, vol };
  };
  const qemuImgCheck = async (t: Test, img: string, vol: string): Promise<void> => {
    const prepared = await cB.call('Image.prepare', { storagedomainID: sd, imageID: img, volumeID: vol });
    const r = await agentB.host.exec(['qemu-img', 'check', prepared.path], { timeoutMs: 120_000 });
    t.match(r.stdout, /No errors were found/, `qemu-img check is clean (on B)${r.code === 0 ? '' : `: ${r.stdout}${r.stderr}`}`);
    await cB.call('Image.teardown', { storagedomainID: sd, imageID: img });
  };
  const watchB = new StatusWatch(cB);
  /** A new thin volume, and a guest on B writing 2 GiB to it (Up when this returns). */
  const startWriter = async (t: Test, name: string) => {
    const { img, vol } = await newVolume(t);
    const g = tinyGuest(name, { cmdline: ['lab.delay=1', 'lab.dd=2048', 'lab.end=wait'], disks: [pool.disk(img, vol)] });
    const rec = pool.trackVm(cB, g.vmID);
    const bLogStart = agentB.logs.length;
    const t0 = performance.now();
    await cB.call('VM.create', { vmID: g.vmID, spec: g.spec });
    await watchB.wait(g.vmID, 'Up', 60_000);
    return { img, vol, g, rec, bLogStart, t0 };
  };
  const served = (logs: string[], volumeId: string): Array<Record<string, unknown>> =>
    logRecords(logs, 'extend request served').filter((r) => r['volumeId'] === volumeId);
  const extended = (logs: string[], volumeId: string): Array<Record<string, unknown>> => logRecords(logs, 'drive extended').filter((r) => r['volume'] === volumeId);

  await t.test('B writes 2 GiB into a thin volume: 0 pauses, every extension served by A for host id B', async (t) => {
    const { img, vol, g, rec, bLogStart, t0 } = await startWriter(t, 'hv-it-thinp2h');
    const done = await waitForSerialMarker(g.serial, 'LAB-DD-DONE', 240_000);
    const secs = (performance.now() - t0) / 1000;
    t.match(done.line, /rc=0/, `the guest wrote 2 GiB (${done.line.match(/secs=\S+/)?.[0] ?? ''})`);
    const pauses = watchB.statuses(g.vmID).filter((st) => st === 'Paused').length;
    t.comment(`pauses: ${pauses}; run ${secs.toFixed(1)} s`);
    t.equal(pauses, 0, 'the VM never paused');

    const after = await cB.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol });
    t.ok(after.apparentsize >= 2048 * MiB, `the LV grew to ${after.apparentsize / MiB} MiB, covering the data`);
    const ext = extended(agentB.logs.slice(bLogStart), vol);
    const srv = served(agentA.logs, vol);
    t.ok(ext.length >= 3, `B logged ${ext.length} "drive extended"`);
    t.ok(srv.length > 0 && srv.every((r) => r['hostId'] === idB), `every request A served for this volume came from host id ${idB} (${srv.length} served)`);
    // Each extension on its own: its request id names a request A served ok, for B, this volume, at least this size.
    const audit = auditExtensions(ext, srv, idB);
    t.equal(audit.unmatched.length, 0, `every one of B's ${ext.length} extensions went through the mailbox to A: ${audit.matched.length} matched by request id to A's "extend request served"${audit.unmatched.length ? `; unmatched: ${describeUnmatched(audit)}` : ''}`);
    t.equal(new Set(audit.matched.map((m) => m.served['requestId'])).size, ext.length, 'each by a request of its own');
    t.equal(served(agentB.logs, vol).length, 0, 'B served none itself');
    t.comment(`first request served by A: ${record(srv[0])}`);
    t.comment(`extension phases (B): ${ext.slice(0, 3).map((r) => JSON.stringify(r['phasesMs'] ?? r)).join(' ')}`);
    t.comment(`served phases (A): ${srv.slice(0, 3).map((r) => JSON.stringify(r['phasesMs'] ?? r)).join(' ')}`);

    await cB.call('VM.destroy', { vmID: g.vmID });
    rec.destroyed = true;
    await qemuImgCheck(t, img, vol);
  });

  await t.test('SPM failover: the SPM agent is killed mid-write, B takes over, the pending extension completes', async (t) => {
    const { img, vol, g, rec, bLogStart, t0 } = await startWriter(t, 'hv-it-thinp2h-fo');
    // Let two extensions through A (the write is under way), then kill A's agent.
    await waitLog(agentA.logs, () => served(agentA.logs, vol).length >= 2, 120_000, 'A served two extensions of the new volume');
    const servedByA = served(agentA.logs, vol).length;
    await agentA.kill();
    const tKill = performance.now();
    t.comment(`SPM agent killed ${((tKill - t0) / 1000).toFixed(1)} s after VM.create, after ${servedByA} extension(s) served by it`);
    const ci = clients.indexOf(cA);
    if (ci >= 0) clients.splice(ci, 1);
    void cA.close().catch(() => {});

    // With no SPM, B's next request stays unanswered: wait until B re-sends it.
    const bKill = agentB.logs.length;
    const pendingLine = await waitLog(agentB.logs, (l) => l.includes('"msg":"no reply yet; re-sending the request"') && parse(l)['volumeId'] === vol, 60_000, 'B re-sends an unanswered extension request', bKill);
    const pending = parse(pendingLine);
    const tPending = performance.now();
    t.comment(`B's request ${String(pending['requestId'])} (${String(pending['sizeMiB'])} MiB) pending with no SPM, ${((tPending - tKill) / 1000).toFixed(1)} s after the kill`);

    // B becomes SPM once sanlock has dropped the dead process's lease.
    let lver = 0;
    let lastErr = '';
    let attempts = 0;
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      attempts++;
      try {
        lver = (await cB.call('StoragePool.spmStart', { storagepoolID: sp })).spmLver;
        break;
      } catch (e) {
        lastErr = String(e);
        await sleep(1000);
      }
    }
    const tSpm = performance.now();
    t.ok(lver >= 2, `B became SPM (lver ${lver}) ${((tSpm - tKill) / 1000).toFixed(1)} s after the kill, ${attempts} attempt(s)${lver ? '' : `; last error: ${lastErr}`}`);
    if (!lver) return;
    t.equal((await cB.call('StoragePool.getSpmStatus', { storagepoolID: sp })).spmStatus, 'SPM', 'B reports SPM');
    const answered = await waitLog(agentB.logs, (l) => l.includes('"msg":"extend request answered"') && parse(l)['requestId'] === pending['requestId'], 60_000, 'the pending request is answered').catch((e: unknown) => { t.fail(String(e)); return ''; });
    if (answered) t.pass(`the pending request was answered by SPM host ${String(parse(answered)['spmHostId'])} ${((performance.now() - tSpm) / 1000).toFixed(1)} s after spmStart (served by B: ${served(agentB.logs, vol).some((r) => r['requestId'] === pending['requestId'])})`);

    const done = await waitForSerialMarker(g.serial, 'LAB-DD-DONE', 300_000);
    const secs = (performance.now() - t0) / 1000;
    t.match(done.line, /rc=0/, `the guest finished its 2 GiB write (${done.line.match(/secs=\S+/)?.[0] ?? ''})`);
    const servedByB = served(agentB.logs, vol);
    t.ok(servedByB.length >= 1, `B (now SPM) served ${servedByB.length} extension(s) of its own (host id ${idB})`);
    t.ok(servedByB.every((r) => r['hostId'] === idB), 'for its own host id');
    const statuses = watchB.statuses(g.vmID);
    const pauses = statuses.filter((st) => st === 'Paused').length;
    t.comment(`failover run ${secs.toFixed(1)} s; pauses: ${pauses}; statuses: ${statuses.join(' -> ')}`);
    t.equal(statuses.at(-1), 'Up', 'the VM is Up at the end');
    const after = await cB.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol });
    t.ok(after.apparentsize >= 2048 * MiB, `the LV grew to ${after.apparentsize / MiB} MiB`);
    const ext = extended(agentB.logs.slice(bLogStart), vol);
    // Every extension of the run was served by an SPM through the mailbox: A before the kill, B after.
    const audit = auditExtensions(ext, [...served(agentA.logs, vol), ...servedByB], idB);
    t.equal(audit.unmatched.length, 0, `each of B's ${ext.length} extensions in this run is matched by request id to a request served ok by A (before the kill) or B (after)${audit.unmatched.length ? `; unmatched: ${describeUnmatched(audit)}` : ''}`);

    await cB.call('VM.destroy', { vmID: g.vmID });
    rec.destroyed = true;
    await qemuImgCheck(t, img, vol);
  });
});

function record(r: Record<string, unknown> | undefined): string {
  return r ? JSON.stringify(r) : '(none)';
}
