// The agent verbs of snapshots and live merge (api/methods/snapshot.ts and merge.ts), typed by
// the agent's schema and called over the same links as every other verb.
import type { ParamsOf, ResultOf } from '../../api/schema.js';
import type { LinkCallOptions } from '../agents/agent-link.js';
import type { AgentLinks } from '../agents/agent-links.js';

export type SnapshotParams = ParamsOf<'VM.snapshot'>;
export type SnapDrive = SnapshotParams['snapDrives'][number];
/** Also says jobUUID: the caller's, or the one the agent chose. */
export type SnapshotResult = ResultOf<'VM.snapshot'>;
export type MergeParams = ParamsOf<'VM.merge'>;
export type MergeJob = ResultOf<'VM.getJobs'>['jobs'][number];
export type MergeJobState = MergeJob['state'];

export class SnapshotAgent {
  constructor(private readonly links: AgentLinks) {}

  snapshot(hostId: string, p: SnapshotParams, o: LinkCallOptions): Promise<SnapshotResult> {
    return this.links.call(hostId, 'VM.snapshot', p, o);
  }

  merge(hostId: string, p: MergeParams, o: LinkCallOptions): Promise<ResultOf<'VM.merge'>> {
    return this.links.call(hostId, 'VM.merge', p, o);
  }

  async jobs(hostId: string, vmID: string, o: LinkCallOptions): Promise<MergeJob[]> {
    return (await this.links.call(hostId, 'VM.getJobs', { vmID }, o)).jobs;
  }
}
