// The agent verbs of snapshots and live merge, as SESSION-18's contract gives them (api/methods
// snapshot.ts and merge.ts, being built on the agent side). Typed here by that contract until
// the agent's schema has them; the calls go over the same links as every other verb.
import type { LinkCallOptions } from '../agents/agent-link.js';
import type { AgentLinks } from '../agents/agent-links.js';
import type { AgentStorageRef } from './vm-image-deps.js';

export interface SnapDrive { domainID: string; imageID: string; volumeID: string; baseVolumeID: string }

export interface SnapshotParams {
  vmID: string;
  snapDrives: SnapDrive[];
  snapMemory?: AgentStorageRef;
  freezeTimeoutMs?: number;
  jobUUID?: string;
}

export interface SnapshotResult { frozen: boolean; freezeMs: number; snapshotMs: number; memory: boolean; warnings: string[] }

export interface MergeParams {
  vmID: string;
  drive: { domainID: string; imageID: string; volumeID: string };
  baseVolUUID: string;
  topVolUUID: string;
  bandwidth?: number;
  jobUUID: string;
}

export type MergeJobState = 'running' | 'ready' | 'pivoting' | 'cleanup' | 'done' | 'failed';

export interface MergeJob {
  id: string;
  type: 'merge';
  drive: { domainID: string; imageID: string };
  baseVolUUID: string;
  topVolUUID: string;
  state: MergeJobState;
  progress: number;
  removedVolUUID?: string;
  error?: { code: number; message: string };
}

type UntypedCall = (hostId: string, method: string, params: unknown, o?: LinkCallOptions) => Promise<unknown>;

export class SnapshotAgent {
  constructor(private readonly links: AgentLinks) {}

  private call(hostId: string, method: string, params: unknown, o: LinkCallOptions): Promise<unknown> {
    return (this.links.call.bind(this.links) as unknown as UntypedCall)(hostId, method, params, o);
  }

  snapshot(hostId: string, p: SnapshotParams, o: LinkCallOptions): Promise<SnapshotResult> {
    return this.call(hostId, 'VM.snapshot', p, o) as Promise<SnapshotResult>;
  }

  merge(hostId: string, p: MergeParams, o: LinkCallOptions): Promise<{ jobUUID: string }> {
    return this.call(hostId, 'VM.merge', p, o) as Promise<{ jobUUID: string }>;
  }

  async jobs(hostId: string, vmID: string, o: LinkCallOptions): Promise<MergeJob[]> {
    return ((await this.call(hostId, 'VM.getJobs', { vmID }, o)) as { jobs: MergeJob[] }).jobs;
  }
}
