// The cold merge of one disk of a stopped VM (the snapshot-delete job's path when the VM runs
// nowhere): Volume.merge, an SPM task (VDSM's SDM.merge), commits the volume on top of the
// snapshot's volume into it. The task's id is remembered before it is sent (runSpmTask), so a
// resumed job follows the same task; "done" is read on storage: the top ILLEGAL (the agent's
// commit point, after which its recovery finishes the chain) or gone, and the base LEGAL.
import type { JobContext } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import { runSpmTask } from '../storage/spm-task.js';
import { errorText, agentCode } from '../storage/agent-answer.js';
import { legality } from './pool-volumes.js';
import type { MergeStep } from './snapshot-chain.js';
import type { VmImageDeps } from './vm-image-deps.js';

/**
 * Merges step.top into step.base on storage. A task that failed may have written part of the
 * top into the base (the chain through the top still reads the same): `touched:<disk>` is then
 * remembered, so the snapshot is not offered for a restore onto that base again.
 */
export async function coldMergeDisk(d: VmImageDeps, ctx: JobContext, step: MergeStep, progress: (p: number) => Promise<void>): Promise<void> {
  const domain = await d.vms.store.storageDomains.get(step.domainId);
  const vol = (volumeId: string) => ({ clusterId: domain.clusterId, domainId: step.domainId, imageId: step.imageId, volumeId });
  try {
    await runSpmTask(d.storage, ctx, {
      clusterId: domain.clusterId, verb: 'Volume.merge', memoKey: `coldMerge:${step.diskId}`,
      params: { storagedomainID: step.domainId, imageID: step.imageId, baseVolUUID: step.base, topVolUUID: step.top },
      done: async (spm) => (await legality(d.storage, ctx, spm, vol(step.top))) !== 'LEGAL' && (await legality(d.storage, ctx, spm, vol(step.base))) === 'LEGAL',
      onStatus: async (st) => { if (st.progress !== undefined) await progress(st.progress); },
    });
  } catch (e) {
    if (e instanceof JobFailure) {
      if (e.code === 'SpmTaskFailed') await ctx.remember(`touched:${step.diskId}`, true);
      throw e;
    }
    if (agentCode(e) === undefined) throw e;
    throw new JobFailure('MergeRefused', `the SPM refused the cold merge of disk ${step.diskId}: ${errorText(e)}`, { diskId: step.diskId, agentCode: agentCode(e) ?? null }, { cause: e });
  }
}
