// The vm.snapshot job (POST /vms/{id}/snapshots): per disk a new COW leaf on the disk's current
// leaf (Volume.create with srcVolUUID, an SPM task), with memory a RAW volume for the RAM state,
// then VM.snapshot on the VM's host, which switches each drive to its new leaf (for a stopped VM
// the new leaves are all there is). The disks' leaves and the snapshot are then recorded. The
// volumes are chosen and recorded before they are made, so a resumed run makes the same ones;
// a snapshot that fails deletes the volumes it made and its record.
import { randomUUID } from 'node:crypto';
import type { JobContext, JobHandler } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { VmSnapshot } from '../model/snapshots.js';
import type { Vm } from '../model/vms.js';
import { agentCode, errorText } from '../storage/agent-answer.js';
import { listEveryHost, sightings } from '../vms/find-vm.js';
import { jobVm } from '../vms/vm-job-deps.js';
import { createPoolVolume, deletePoolImage, deletePoolVolume, stateVolumeBytes } from './pool-volumes.js';
import { SnapshotAgent } from './snapshot-agent.js';
import { agentRef, volumeHomeOf, type VmImageDeps } from './vm-image-deps.js';

const LIVE = new Set(['Up', 'Paused']);
/** A disk-only snapshot is quick (a freeze, a switch of leaves); one with memory writes all the RAM. */
const SNAPSHOT_CALL_MS = 120_000;
const MEMORY_SNAPSHOT_CALL_MS = 30 * 60_000;

export function snapshotCreateJob(d: VmImageDeps): JobHandler {
  return async (ctx) => {
    const { store } = d.vms;
    const vm = await jobVm(d.vms, ctx);
    const sid = ctx.job.params['snapshotId'] as string;
    let snap = await store.snapshots.get(sid);
    if (snap.status === 'ready') return;
    // VM.snapshot sent by an earlier run: the drives may be on the new leaves, which then must never be deleted here.
    const sentBefore = ctx.memo<string>('snapshotSentTo') !== undefined;
    const lists = await ctx.step('look for the VM on every host', () => listEveryHost(d.vms.links, d.vms.monitor, d.vms.settings, ctx.correlationId));
    const running = sightings(lists, vm.id).filter((x) => x.status !== 'Down');
    try {
      if (running.length > 1) throw new JobFailure('RunningTwice', `VM ${vm.name} is listed on ${running.map((x) => x.hostId).join(', ')}`, {});
      const on = running[0];
      if (on && !LIVE.has(on.status)) throw new JobFailure('WrongState', `VM ${vm.name} is ${on.status} on ${on.hostId}: a snapshot is taken of an Up, Paused or stopped VM`, { status: on.status });
      if (!on && Object.keys(lists.unanswered).length > 0 && vm.hostId !== null && vm.hostId in lists.unanswered) {
        throw new JobFailure('HostUnreachable', `host ${vm.hostId} did not answer: whether the VM runs there is not known`, { hostId: vm.hostId });
      }
      if (snap.memory && !on) throw new JobFailure('VmNotRunning', `VM ${vm.name} is not running: there is no RAM state to save`, {});
      if (snap.disks.length === 0) snap = await chooseVolumes(d, vm, snap);
      await makeVolumes(d, ctx, vm, snap);
      await ctx.progress(50);
      let outcome = { frozen: null as boolean | null, warnings: [] as string[] };
      if (on) {
        const home = await volumeHomeOf(store, vm);
        await ctx.remember('snapshotSentTo', on.hostId);
        const r = await ctx.step('VM.snapshot', () => new SnapshotAgent(d.vms.links).snapshot(on.hostId, {
          vmID: vm.id, jobUUID: snap.id,
          snapDrives: snap.disks.map((x) => ({ domainID: x.domainId, imageID: x.imageId, volumeID: x.childId, baseVolumeID: x.volumeId })),
          ...(snap.memoryVolume && { snapMemory: agentRef(home.poolId, snap.memoryVolume) }),
        }, { correlationId: ctx.correlationId, timeoutMs: snap.memory ? MEMORY_SNAPSHOT_CALL_MS : SNAPSHOT_CALL_MS }).catch((e: unknown) => {
          throw new JobFailure('SnapshotFailed', `host ${on.hostId} did not take the snapshot: ${errorText(e)}`, { hostId: on.hostId, agentCode: agentCode(e) ?? null }, { cause: e });
        }), { hostId: on.hostId });
        outcome = { frozen: r.frozen, warnings: r.warnings };
        ctx.log('info', 'snapshot taken', { hostId: on.hostId, frozen: r.frozen, freezeMs: r.freezeMs, snapshotMs: r.snapshotMs, warnings: r.warnings });
      }
      for (const x of snap.disks) await store.disks.setVolume(x.diskId, x.childId);
      await store.snapshots.update(snap.id, { status: 'ready', vmRunning: !!on, frozen: outcome.frozen, warnings: outcome.warnings });
      await store.event({ kind: 'vm.snapshot', subjectKind: 'vm', subjectId: vm.id, correlationId: ctx.correlationId,
        message: `VM ${vm.name}: snapshot "${snap.description}" taken${on ? ` live on ${on.hostId}${outcome.frozen ? ', file systems frozen' : ', not frozen'}` : ' of the stopped VM'}${snap.memory ? ', with its RAM' : ''}`,
        details: { snapshotId: snap.id, frozen: outcome.frozen, warnings: outcome.warnings } });
      await ctx.progress(100);
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      // Only an agent's answer to this run's VM.snapshot says the drives stayed on their old leaves.
      const refused = e instanceof JobFailure && e.code === 'SnapshotFailed' && agentCode((e as { cause?: unknown }).cause) !== undefined;
      if (ctx.memo('snapshotSentTo') !== undefined && (sentBefore || !refused)) {
        const why = e instanceof Error ? e.message : String(e);
        throw new JobFailure('SnapshotOutcomeUnknown', `${why}; VM.snapshot was sent and the VM may use the new leaves, so they are kept and the snapshot stays "creating"`,
          { snapshotId: sid }, { cause: e });
      }
      await discard(d, ctx, vm, await store.snapshots.get(sid)).catch((err: unknown) => ctx.log('warn', 'could not delete the snapshot\'s volumes', { error: errorText(err) }));
      throw e;
    }
  };
}

/** The new leaf per disk (on the disk's current leaf) and the memory volume, recorded before they are made. */
async function chooseVolumes(d: VmImageDeps, vm: Vm, snap: VmSnapshot): Promise<VmSnapshot> {
  const { store } = d.vms;
  const disks = [];
  for (const ref of vm.spec.disks ?? []) {
    const disk = await store.disks.get(ref.diskId);
    disks.push({ diskId: disk.id, domainId: disk.storageDomainId, imageId: disk.imageId, volumeId: disk.volumeId, childId: randomUUID() });
  }
  if (disks.length === 0) throw new JobFailure('NoDisks', `VM ${vm.name} has no disks to snapshot`, {});
  const home = snap.memory ? await volumeHomeOf(store, vm) : null;
  const memory = home ? { domainId: home.domainId, imageId: randomUUID(), volumeId: randomUUID(), sizeBytes: stateVolumeBytes(vm.spec.memoryMiB) } : null;
  await store.snapshots.setVolumes(snap.id, disks, memory);
  return store.snapshots.get(snap.id);
}

async function makeVolumes(d: VmImageDeps, ctx: JobContext, vm: Vm, snap: VmSnapshot): Promise<void> {
  const { store } = d.vms;
  const home = await volumeHomeOf(store, vm);
  for (const x of snap.disks) {
    const disk = await store.disks.get(x.diskId);
    const domain = await store.storageDomains.get(x.domainId);
    await ctx.step(`create the new leaf of disk ${disk.name}`, () => createPoolVolume(d.storage, ctx, {
      clusterId: domain.clusterId, domainId: x.domainId, imageId: x.imageId, volumeId: x.childId, srcVolUUID: x.volumeId,
      sizeBytes: disk.sizeBytes, format: 'COW', preallocate: 'SPARSE', description: `snapshot ${snap.description}`,
    }, `leaf:${x.diskId}`));
  }
  const m = snap.memoryVolume;
  if (m) {
    await ctx.step('create the memory volume', () => createPoolVolume(d.storage, ctx, {
      clusterId: home.clusterId, ...m, format: 'RAW', preallocate: home.block ? 'PREALLOCATED' : 'SPARSE', description: `RAM of snapshot ${snap.description}`,
    }, 'memoryVolume'));
  }
}

/** A snapshot that was not taken: its new leaves, its memory volume and its record go. */
async function discard(d: VmImageDeps, ctx: JobContext, vm: Vm, snap: VmSnapshot): Promise<void> {
  const { store } = d.vms;
  for (const x of snap.disks) {
    const domain = await store.storageDomains.get(x.domainId);
    await ctx.step('delete an unused new leaf', () => deletePoolVolume(d.storage, ctx, { clusterId: domain.clusterId, domainId: x.domainId, imageId: x.imageId, volumeId: x.childId }, `unusedLeaf:${x.diskId}`));
  }
  if (snap.memoryVolume) {
    const home = await volumeHomeOf(store, vm);
    await ctx.step('delete the unused memory volume', () => deletePoolImage(d.storage, ctx, { clusterId: home.clusterId, ...snap.memoryVolume! }, 'unusedMemory'));
  }
  await store.snapshots.delete(snap.id);
}
