// The vm.snapshot.delete job (DELETE /vms/{id}/snapshots/{sid}): a merge per disk, live when the
// VM runs on one host, cold (Volume.merge, an SPM task: cold-merge.ts) when it runs nowhere. The
// volume on top of the snapshot's volume is committed into it by the agent (VM.merge: an active
// commit pivoted to the base when the top is the leaf, an internal one otherwise), followed with
// VM.getJobs to its end; the volume the merge took out of the chain is then deleted (Volume.delete,
// an SPM task), and the records follow: the disk's leaf, and the snapshot that kept the top now
// keeps the base. Each disk's merge job id is remembered before VM.merge is sent and each disk
// is marked merged once recorded, so a resumed run follows the same merge and does no disk twice.
import { randomUUID } from 'node:crypto';
import type { JobContext, JobHandler } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { Vm } from '../model/vms.js';
import { agentCode, answered, errorText } from '../storage/agent-answer.js';
import { sleepOrAbort } from '../storage/sleep.js';
import { listEveryHost, sightings } from '../vms/find-vm.js';
import { jobVm, nowOf } from '../vms/vm-job-deps.js';
import { deletePoolImage, deletePoolVolume } from './pool-volumes.js';
import { SnapshotAgent, type MergeJob } from './snapshot-agent.js';
import { coldMergeDisk } from './cold-merge.js';
import { mergePlan, SnapshotChainError, type MergeStep } from './snapshot-chain.js';
import { volumeHomeOf, type VmImageDeps } from './vm-image-deps.js';

const MERGE_POLL_MS = 1_000;

/** The copy rate the DELETE asked for (MiB/s); none: unlimited. */
const bandwidthOf = (ctx: JobContext): number | undefined => ctx.job.params['bandwidthMiBs'] as number | undefined;

export function snapshotDeleteJob(d: VmImageDeps): JobHandler {
  return async (ctx) => {
    const { store } = d.vms;
    const vm = await jobVm(d.vms, ctx);
    const sid = ctx.job.params['snapshotId'] as string;
    const snap = await store.snapshots.find(sid);
    if (!snap) return; // an earlier run got to the end
    try {
      const lists = await ctx.step('look for the VM on every host', () => listEveryHost(d.vms.links, d.vms.monitor, d.vms.settings, ctx.correlationId));
      const seen = sightings(lists, vm.id);
      const on = seen.filter((x) => x.status === 'Up' || x.status === 'Paused');
      // Stopped: listed nowhere but Down, and its last host answered (else whether it runs is not known).
      const stopped = seen.every((x) => x.status === 'Down') && !(vm.hostId !== null && vm.hostId in lists.unanswered);
      if (on.length !== 1 && !stopped) {
        throw new JobFailure('VmNotRunning', `VM ${vm.name} is neither running on one host nor stopped (${seen.map((x) => `${x.hostId}: ${x.status}`).join(', ') || 'listed nowhere, its host did not answer'})`, {});
      }
      const hostId = on[0]?.hostId ?? null;
      const todo = { ...snap, disks: snap.disks.filter((x) => ctx.memo(`merged:${x.diskId}`) !== true) };
      const plan = await ctx.step('plan the merge', async () => {
        const leaves = new Map<string, string>();
        for (const x of todo.disks) leaves.set(x.diskId, (await store.disks.get(x.diskId)).volumeId);
        try {
          return mergePlan(todo, await store.snapshots.list(vm.id), leaves);
        } catch (e) {
          if (e instanceof SnapshotChainError) throw new JobFailure('ChainMismatch', e.message, e.details, { cause: e });
          throw e;
        }
      });
      for (const [i, step] of plan.entries()) {
        const progress = (p: number) => ctx.progress(Math.round(((i + p / 100) / plan.length) * 90));
        if (hostId === null) {
          await ctx.step(`cold merge of disk ${step.diskId}`, () => coldMergeDisk(d, ctx, step, progress), { detail: `${step.top} into ${step.base}` });
          await afterMerge(d, ctx, step, step.top);
        } else {
          await mergeDisk(d, ctx, vm, hostId, step, progress);
        }
      }
      if (snap.memoryVolume) {
        const home = await volumeHomeOf(store, vm);
        await ctx.step('delete the memory volume', () => deletePoolImage(d.storage, ctx, { clusterId: home.clusterId, ...snap.memoryVolume! }, 'snapshotMemory'));
      }
      await store.snapshots.delete(sid);
      await store.event({ kind: 'vm.snapshot-deleted', subjectKind: 'vm', subjectId: vm.id, correlationId: ctx.correlationId,
        message: `VM ${vm.name}: snapshot "${snap.description}" merged ${hostId === null ? 'cold' : 'live'} and deleted`, details: { snapshotId: sid } });
      await ctx.progress(100);
    } catch (e) {
      // Nothing merged and no commit begun (no VM.merge sent, or only refused by the agent's answer): the snapshot
      // is as it was. Once a commit began (live, or a cold merge's base part written) its volume may hold part of
      // the top's data: it stays 'deleting', never restored to (a DELETE again goes on). So does a snapshot already
      // 'deleting' before this job (an earlier one's commit cut short).
      const begun = snap.disks.some((x) => ctx.memo(`mergeJob:${x.diskId}`) !== undefined) && !(e instanceof JobFailure && e.code === 'MergeRefused');
      const touched = begun || ctx.job.params['from'] === 'deleting' || snap.disks.some((x) => ctx.memo(`merged:${x.diskId}`) === true || ctx.memo(`touched:${x.diskId}`) === true);
      if (!ctx.signal.aborted && !touched) await store.snapshots.update(sid, { status: 'ready' });
      throw e;
    }
  };
}

async function mergeDisk(d: VmImageDeps, ctx: JobContext, vm: Vm, hostId: string, step: MergeStep, progress: (p: number) => Promise<void>): Promise<void> {
  const { store } = d.vms;
  const agent = new SnapshotAgent(d.vms.links);
  const call = { correlationId: ctx.correlationId, timeoutMs: d.vms.settings.pollTimeoutMs };
  const key = `mergeJob:${step.diskId}`;
  let jobUUID = ctx.memo<string>(key);
  const known = jobUUID === undefined ? undefined : (await agent.jobs(hostId, vm.id, call)).find((j) => j.id === jobUUID);
  if (known === undefined) {
    jobUUID = randomUUID();
    await ctx.remember(key, jobUUID); // before VM.merge: a resumed run looks for this job
    const id = jobUUID;
    await ctx.step(`VM.merge of disk ${step.diskId}`, () => agent.merge(hostId, {
      vmID: vm.id, drive: { domainID: step.domainId, imageID: step.imageId, volumeID: step.leaf }, baseVolUUID: step.base, topVolUUID: step.top, jobUUID: id,
      ...(bandwidthOf(ctx) !== undefined && { bandwidth: bandwidthOf(ctx) }),
    }, { correlationId: ctx.correlationId }).catch((e: unknown) => {
      throw new JobFailure('MergeRefused', `host ${hostId} refused the merge of disk ${step.diskId}: ${errorText(e)}`, { hostId, diskId: step.diskId, agentCode: agentCode(e) ?? null }, { cause: e });
    }), { hostId, detail: `${step.active ? 'active' : 'internal'} commit of ${step.top} into ${step.base}` });
  }
  const done = await ctx.step(`follow the merge of disk ${step.diskId}`, () => follow(d, ctx, agent, hostId, jobUUID!, progress), { hostId });
  await afterMerge(d, ctx, step, done.removedVolUUID ?? step.top);
}

/** The records follow a merged disk (its leaf; the snapshots that kept the top keep the base); then the removed volume goes. */
async function afterMerge(d: VmImageDeps, ctx: JobContext, step: MergeStep, removed: string): Promise<void> {
  const { store } = d.vms;
  await store.disks.setVolume(step.diskId, step.leafAfter);
  for (const t of step.renamed) await store.snapshots.setDiskVolumes(t, step.diskId, { volumeId: step.base });
  await ctx.remember(`merged:${step.diskId}`, true);
  const domain = await store.storageDomains.get(step.domainId);
  await ctx.step(`delete the merged volume of disk ${step.diskId}`, () => deletePoolVolume(d.storage, ctx,
    { clusterId: domain.clusterId, domainId: step.domainId, imageId: step.imageId, volumeId: removed }, `removed:${step.diskId}`));
}

/** VM.getJobs until the job is done (its outcome) or failed; a job the agent no longer lists is an unknown outcome. */
async function follow(d: VmImageDeps, ctx: JobContext, agent: SnapshotAgent, hostId: string, jobUUID: string, progress: (p: number) => Promise<void>): Promise<MergeJob> {
  const s = d.vms.settings;
  const until = nowOf(d.vms) + s.vmMergeTimeoutMs;
  let last = 'not asked yet';
  for (;;) {
    try {
      const j = (await agent.jobs(hostId, ctx.job.targetId, { correlationId: ctx.correlationId, timeoutMs: s.pollTimeoutMs })).find((x) => x.id === jobUUID);
      if (j === undefined) throw new JobFailure('MergeOutcomeUnknown', `host ${hostId} no longer lists merge job ${jobUUID}: whether it merged is not known`, { hostId, jobUUID });
      if (j.state === 'done') return j;
      if (j.state === 'failed') throw new JobFailure('MergeFailed', `the merge failed on ${hostId}: ${j.error ? `${j.error.code} ${j.error.message}` : 'no reason given'}`, { hostId, jobUUID, agentCode: j.error?.code ?? null });
      last = `${j.state} ${j.progress} %`;
      await progress(j.progress);
    } catch (e) {
      if (e instanceof JobFailure) throw e;
      // The VM no longer runs there (stopped, or crashed): its block job ended with it, waiting is useless.
      if (answered(e, 'noVM')) throw new JobFailure('VmStoppedDuringMerge', `VM ${ctx.job.targetId} stopped on ${hostId} during merge job ${jobUUID}: the commit was cut short`, { hostId, jobUUID }, { cause: e });
      last = `no answer: ${errorText(e)}`;
    }
    if (nowOf(d.vms) > until) throw new JobFailure('MergeTimeout', `the merge job ${jobUUID} has not ended on ${hostId} after ${Math.round(s.vmMergeTimeoutMs / 1000)} s (${last}); it goes on there`, { hostId, jobUUID });
    await sleepOrAbort(MERGE_POLL_MS, ctx.signal);
  }
}

