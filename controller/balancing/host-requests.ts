// power_saving's host requests carried out by the maintenance flow (controller/migration): a park
// is the same maintenance an admin asks for (its blockers checked, then a host.maintenance job
// that empties the host), an activation the same activate. A refusal (409: blockers, a state
// that forbids it, a maintenance job already under way) is an answer, not a fault: the loop
// records it and tries again on a later cycle.
import type { Job } from '../model/jobs.js';
import type { HostMaintenanceApi } from '../migration/maintenance-service.js';
import type { Store } from '../store/store.js';
import { ConflictError } from '../store/errors.js';
import type { LogFn } from '../agents/log-fn.js';
import type { BalancingDeps } from './balancing-loop.js';

export function maintenanceRequests(d: { store: Store; maintenance: HostMaintenanceApi; submit: (job: Job) => void; log: LogFn }): NonNullable<BalancingDeps['hostRequest']> {
  return async (kind, hostId, reason, correlationId) => {
    const why = `balancing: ${reason}`;
    try {
      if (kind === 'activate') {
        await d.maintenance.activate(hostId, why);
        await d.store.event({ kind: 'host.activate', subjectKind: 'host', subjectId: hostId, correlationId, message: `host ${hostId}: ${why}` });
        return true;
      }
      const active = await d.store.jobs.activeFor(hostId, ['host.maintenance']);
      if (active) return false;
      await d.maintenance.prepare(hostId, why);
      const job = await d.store.jobs.create({ kind: 'host.maintenance', targetKind: 'host', targetId: hostId, params: { reason: why }, correlationId });
      await d.store.event({ kind: 'job.created', subjectKind: 'job', subjectId: job.id, correlationId, message: `maintenance of host ${hostId} (${why})`,
        details: { kind: job.kind, targetKind: job.targetKind, targetId: job.targetId } });
      d.submit(job);
      return true;
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e;
      d.log('info', `balancing: the ${kind} of host ${hostId} was refused`, { hostId, reason: e.message });
      return false;
    }
  };
}
