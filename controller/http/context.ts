// What the routes work with, passed to each route module.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Enrollment } from '../enrollment/enroll.js';
import type { JobRunner } from '../jobs/runner.js';
import type { Job } from '../model/jobs.js';
import type { NewJob } from '../store/repos/jobs.js';
import type { Store } from '../store/store.js';
import type { VmMigrationPlacer } from '../migration/migrate-placement.js';
import type { HostMaintenanceApi } from '../migration/maintenance-service.js';

export interface ApiContext {
  store: Store;
  enrollment: Enrollment;
  jobs: JobRunner;
  /** Tells the runtime the set of hosts changed (enrolled, removed), so it links at once. */
  hostsChanged?: () => void;
  /** Places a VM when its start is requested (controller/vms); without it the start job is placed when it runs. */
  vmStarts?: VmStartPlacer;
  /** One-time console tickets (controller/vms); without them POST /vms/{id}/console answers 503. */
  consoles?: ConsoleOpener;
  /** Places a VM's migration when it is requested (controller/migration). */
  vmMigrations?: VmMigrationPlacer;
  /** Host maintenance: blockers, state moves (controller/migration). */
  hostMaintenance?: HostMaintenanceApi;
  /** The guest agent's report of a running VM for GET /vms/{id} (controller/vms); without it the field is left out. */
  guestInfo?: { read(vmId: string, correlationId: string): Promise<Record<string, unknown> | undefined> };
  /** The last verdict on a hibernation left `saving` (controller/vm-images): why the VM cannot start. */
  hibernations?: {
    verdict(vmId: string): { decision: { action: string; reason: string }; at: number } | undefined;
    discardBlockers(vmId: string, correlationId: string): Promise<{ runningOn: Array<{ hostId: string; status: string }>; unknown: Record<string, string> }>;
  };
}

export interface ConsoleOpener {
  open(vmId: string, ttlSeconds: number | undefined, correlationId: string): Promise<{
    vmId: string; hostId: string; host: string; port: number; password: string; expiresAt: string; url: string;
  }>;
}

/** A start placed and reserved at request time, before its job exists. */
export interface PlacedStart {
  /** what the job carries (the reservation, persisted with it) */
  params: Record<string, unknown>;
  /** the job now holds the reservation */
  attach(jobId: string): void;
  /** no job was made: drop the reservation */
  cancel(): void;
}

export interface VmStartPlacer {
  /** 409 when the VM's state forbids a start, 422 NoPlacement naming each host's excluding filter. */
  place(vmId: string, requestedHostId: string | null, correlationId: string): Promise<PlacedStart>;
}

export const API_PREFIX = '/api/v1';

/**
 * Records a pending job, logs it as an event and hands it to the runner; answers 202 with
 * Location: /api/v1/jobs/{id}. The job carries the request's correlation id.
 */
export async function acceptJob(ctx: ApiContext, req: FastifyRequest, reply: FastifyReply, j: Omit<NewJob, 'correlationId'> & { message: string }): Promise<Job> {
  const job = await ctx.store.jobs.create({ kind: j.kind, targetKind: j.targetKind, targetId: j.targetId, params: j.params ?? {}, correlationId: req.id });
  await ctx.store.event({ kind: 'job.created', subjectKind: 'job', subjectId: job.id, correlationId: req.id, message: j.message,
    details: { kind: job.kind, targetKind: job.targetKind, targetId: job.targetId } });
  req.log.info({ job: job.id, kind: job.kind, target: job.targetId }, 'job accepted');
  ctx.jobs.submit(job);
  void reply.code(202).header('location', `${API_PREFIX}/jobs/${job.id}`);
  return job;
}
