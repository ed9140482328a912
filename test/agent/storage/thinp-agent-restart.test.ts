// Thin disks survive a restart of the agent that runs the VM. On two lab
// hosts, A is the SPM and B runs a guest writing 2 GiB into a 256 MiB thin
// volume (4 GiB virtual). B's agent is killed with SIGKILL mid-write, so the
// guest fills its volume and pauses on ENOSPC with no agent to extend it.
// Then B's agent is started again and the engine stand-in (this test) does
// what an engine does after a restart: StoragePool.connect again. B must then
// reconcile: rebuild the VM's disks from its domain XML metadata, prepare them
// again, watch the thin drive, extend it through A and resume the VM; and
// VM.destroy must tear the image down. The pauses and resumes are read from
// B's libvirtd directly, so they are seen also while B's agent is dead.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { Connection, enums } from '../../../agent/libvirt/index.js';
import { StatusWatch, tinyGuest } from '../harness.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import { sanlockUnavailable } from './sanlock-daemon.js';
import type { LabAgent } from './lab-agents.js';
import { MiB, createVolume, logRecords, twoHostPool, waitLog } from './two-host-pool.js';
import { auditExtensions, describeUnmatched } from './extension-audit.js';
import { loopsBacking } from './tasks-fixture.js';

const echo = !!process.env['HV_TEST_LOG'];
const E = enums.DomainEventType;

const why = await sanlockUnavailable();

const at = (r: Record<string, unknown> | undefined): number => (r && typeof r['ts'] === 'string' ? Date.parse(r['ts']) : NaN);

t.test('agent restart on the VM host: kill -9 mid-write, restart, pool reconnect: the thin disk is watched again, extended through the SPM, the VM resumed, and destroyed cleanly', { skip: why ?? false }, async (t) => {
  // 1 GiB chunks (768 MiB free when an extension is asked): an unloaded guest writes ~360 MiB/s, and
  // with 512 MiB chunks it paused a second time after B was back (a pause this test does not expect).
  const pool = await twoHostPool({ name: 'thinp-restart', pvGiB: 12, echo, settings: { 'thinp.chunkMiB': 1024 } });
  t.teardown(() => pool.close());
  const { sd, sp } = pool;
  const cA = pool.clients[0]!;
  const agentA = pool.agents[0]!;
  const [idA, idB] = [1, 2];
  const lver = (await cA.call('StoragePool.spmStart', { storagepoolID: sp })).spmLver;
  t.ok(lver >= 1, `A (host id ${idA}) is the SPM (lver ${lver})`);

  const [img, vol] = [randomUUID(), randomUUID()];
  const v = await createVolume(cA, { storagedomainID: sd, imageID: img, volumeID: vol, size: 4096 * MiB, volFormat: 'COW', preallocate: 'SPARSE', initialSize: 256 * MiB });
  t.equal(v.apparentsize, 256 * MiB, 'the thin volume starts at 256 MiB');
  t.equal(v.capacity, 4096 * MiB, 'with a 4 GiB virtual size');

  // B's libvirtd, watched from here: pauses and resumes whether or not B's agent is alive.
  const conn = await Connection.open(pool.hosts[1]!.libvirtUri, { callTimeoutMs: 30_000 });
  t.teardown(() => conn.close());
  const g = tinyGuest('hv-it-thinp-restart', { cmdline: ['lab.delay=1', 'lab.dd=2048', 'lab.end=wait'], disks: [pool.disk(img, vol)] });
  const lifecycle: Array<{ event: number; detail: number; at: number }> = [];
  const ioErrors: Array<{ reason: string; at: number }> = [];
  const subs = [
    await conn.subscribe('lifecycle', (ev) => { if (ev.domain.uuid === g.vmID) lifecycle.push({ event: ev.event, detail: ev.detail, at: Date.now() }); }),
    await conn.subscribe('io-error-reason', (ev) => { if (ev.domain.uuid === g.vmID) ioErrors.push({ reason: ev.reason, at: Date.now() }); }),
  ];
  t.teardown(async () => { for (const s of subs) await s.close().catch(() => {}); });

  let agentB: LabAgent = pool.agents[1]!;
  let cB: HostvisorClient = pool.clients[1]!;
  const rec = pool.trackVm(cB, g.vmID);
  const watch0 = new StatusWatch(cB);
  await cB.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch0.wait(g.vmID, 'Up', 60_000);
  const extendedOf = (logs: string[]) => logRecords(logs, 'drive extended').filter((r) => r['volume'] === vol);
  const servedOf = (logs: string[]) => logRecords(logs, 'extend request served').filter((r) => r['volumeId'] === vol);

  // Mid-write: B has extended the drive once (the guest is writing, the drive monitor watches it).
  await waitLog(agentB.logs, () => extendedOf(agentB.logs).length >= 1, 120_000, 'B extended the drive once');
  const extBeforeKill = extendedOf(agentB.logs).length;
  await agentB.kill();
  const tKill = Date.now();
  t.comment(`B's agent killed (SIGKILL) after ${extBeforeKill} extension(s)`);

  // With nobody to extend it, the guest fills the volume: wait for its pause (bounded) before bringing B back.
  const until = Date.now() + 30_000;
  while (!lifecycle.some((e) => e.event === E.SUSPENDED && e.at >= tKill) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  const pausedWhileAbsent = lifecycle.find((e) => e.event === E.SUSPENDED && e.at >= tKill);
  t.comment(pausedWhileAbsent
    ? `the VM paused ${pausedWhileAbsent.at - tKill} ms after the kill (io errors: ${ioErrors.map((e) => e.reason).join(', ') || 'none'})`
    : 'the VM did not pause within 30 s of the kill');

  ({ agent: agentB, client: cB } = await pool.respawn(1));
  const tBack = Date.now();
  const watch = new StatusWatch(cB);
  await pool.reconnectPool(1); // the engine stand-in: StoragePool.connect again after the restart
  const tConnect = Date.now();
  t.comment(`B's agent ready ${tBack - tKill} ms after the kill; pool connected again ${tConnect - tBack} ms later`);

  const reconciled = await waitLog(agentB.logs, (l) => l.includes('"msg":"VM disks recovered"') && l.includes(g.vmID), 30_000, "B's reconcile of the VM's disks")
    .then((l) => JSON.parse(l) as Record<string, unknown>, (e: unknown) => { t.fail(String(e)); return undefined; });
  const tReconcile = at(reconciled);
  if (reconciled) t.comment(`B reconciled the VM's disks ${tReconcile - tConnect} ms after the pool connect: ${JSON.stringify(reconciled)}`);

  const done = await waitForSerialMarker(g.serial, 'LAB-DD-DONE', 150_000).catch((e: unknown) => { t.fail(`the guest did not finish its write: ${String(e)}`); return undefined; });
  if (done) t.match(done.line, /rc=0/, `the guest finished its 2 GiB write (${done.line})`);

  // Every pause began while B could not act (killed, not yet reconciled), and was resumed within 2 s of the reconcile.
  const pauses = lifecycle.filter((e) => e.event === E.SUSPENDED);
  const resumes = lifecycle.filter((e) => e.event === E.RESUMED);
  const figures = pauses.map((p) => {
    const r = resumes.find((x) => x.at >= p.at);
    return { pausedAfterKillMs: p.at - tKill, pausedMs: r ? r.at - p.at : undefined, resumeAfterReconcileMs: r && reconciled ? r.at - tReconcile : undefined };
  });
  t.comment(`pauses: ${pauses.length} ${JSON.stringify(figures)}`);
  for (const [i, p] of pauses.entries()) {
    const f = figures[i]!;
    t.ok(p.at >= tKill && (!reconciled || p.at <= tReconcile), `pause ${i + 1} began during B's absence (${f.pausedAfterKillMs} ms after the kill)`);
    t.ok(f.resumeAfterReconcileMs !== undefined && f.resumeAfterReconcileMs <= 2000,
      `pause ${i + 1} was resumed within 2 s of B's reconcile (${f.resumeAfterReconcileMs ?? 'never'} ms; paused ${f.pausedMs ?? '-'} ms)`);
  }
  const state = await (await conn.lookupByUUID(g.vmID)).state();
  t.equal(state.state, enums.DomainState.RUNNING, 'the domain runs at the end');

  // Every extension after the restart went through the mailbox to A.
  const ext = extendedOf(agentB.logs);
  const audit = auditExtensions(ext, servedOf(agentA.logs), idB);
  t.ok(ext.length >= 1, `B extended the drive ${ext.length} time(s) after the restart (${extBeforeKill} before the kill)`);
  t.equal(audit.unmatched.length, 0, `each of them matched by request id to A's "extend request served"${audit.unmatched.length ? `; unmatched: ${describeUnmatched(audit)}` : ` (${audit.matched.length} matched)`}`);
  t.equal(new Set(audit.matched.map((m) => m.served['requestId'])).size, audit.matched.length, 'each by a request of its own');
  const after = await cB.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol });
  t.ok(after.apparentsize >= 2048 * MiB, `the LV grew to ${after.apparentsize / MiB} MiB, covering the data`);
  t.comment(`B's VM_status events after the restart: ${watch.statuses(g.vmID).join(' -> ') || 'none'}`);

  // VM.destroy after the restart tears the image down: no loop device, no activation left on B.
  await cB.call('VM.destroy', { vmID: g.vmID });
  rec.destroyed = true;
  const driverB = pool.lab.driver('hostB');
  t.equal(await driverB.attached(sd, vol), undefined, "no activation of the volume is left on B (link to a loop device)");
  t.same(await loopsBacking(driverB.dataFile(sd, vol)), [], 'no loop device is backed by the volume');
  t.ok(logRecords(agentB.logs, 'image torn down').some((r) => r['imgUUID'] === img), 'B logged the teardown of the image');

  const prepared = await cB.call('Image.prepare', { storagedomainID: sd, imageID: img, volumeID: vol });
  const check = await agentB.host.exec(['qemu-img', 'check', prepared.path], { timeoutMs: 120_000 });
  t.match(check.stdout, /No errors were found/, `qemu-img check is clean${check.code === 0 ? '' : `: ${check.stdout}${check.stderr}`}`);
  await cB.call('Image.teardown', { storagedomainID: sd, imageID: img });
});
