// What the VM job handlers share: the runtime's links and monitor, the VM part's state, and the
// small steps more than one handler takes.
import { RpcCallError } from '../../api/client/errors.js';
import type { ParamsOf } from '../../api/schema.js';
import type { AgentLinks } from '../agents/agent-links.js';
import type { LogFn } from '../agents/log-fn.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { DecisionEvent } from '../decision-event.js';
import type { JobContext } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { Vm } from '../model/vms.js';
import type { HealthMonitor } from '../monitor/health-monitor.js';
import { recordDecisionEvent } from '../runtime/record-event.js';
import type { PendingReservations } from '../scheduler/reservations.js';
import type { Store } from '../store/store.js';
import type { HostFacts } from './host-facts.js';
import type { VmReconciler } from './vm-reconciler.js';
import type { VmRegistry } from './vm-registry.js';
import type { VmStarts } from './vm-starts.js';

export interface VmJobDeps {
  store: Store;
  settings: DecisionSettings;
  links: AgentLinks;
  monitor: Pick<HealthMonitor, 'health'>;
  registry: VmRegistry;
  reconciler: VmReconciler;
  reservations: PendingReservations;
  facts: HostFacts;
  starts: VmStarts;
  /** resolves once the registry and the reservations are loaded */
  ready: Promise<void>;
  log: LogFn;
  clock?: () => number;
  /** a start of a suspended VM resumes it (controller/vm-images); without it every start boots */
  restore?: StartRestore;
}

/** What a start asks about a VM's saved RAM state (controller/vm-images/resume.ts). */
export interface StartRestore {
  /** the state volume VM.create restores from; undefined: a cold boot */
  stateFor(ctx: JobContext, vmId: string): Promise<ParamsOf<'VM.create'>['restoreState']>;
  /** the VM is Up (resumed from that state): the state volume goes */
  resumed(ctx: JobContext, vmId: string): Promise<void>;
}

export function nowOf(d: VmJobDeps): number {
  return (d.clock ?? Date.now)();
}

/** Decision events of a job, in the audit log with the job's correlation id (a failure to write is logged, not thrown). */
export async function recordJobEvents(d: VmJobDeps, ctx: JobContext, events: readonly DecisionEvent[]): Promise<void> {
  for (const e of events) {
    ctx.log(e.severity === 'info' ? 'info' : 'warn', e.kind, { reason: e.reason, ...(e.host !== undefined && { hostId: e.host }) });
    await recordDecisionEvent(d.store, e, ctx.correlationId).catch((err: unknown) => ctx.log('error', 'could not record an event', { kind: e.kind, error: String(err) }));
  }
}

/** The job's VM from the store, once the VM part is loaded; known to the registry from here on. */
export async function jobVm(d: VmJobDeps, ctx: JobContext): Promise<Vm> {
  await d.ready;
  const vm = await d.store.vms.find(ctx.job.targetId);
  if (!vm) throw new JobFailure('NotFound', `VM ${ctx.job.targetId} no longer exists`, { vmId: ctx.job.targetId });
  d.registry.define(vm);
  return vm;
}

/** VM.destroy on the host; an agent that has no such VM (1) has nothing to do. */
export async function destroyOn(d: VmJobDeps, ctx: JobContext, hostId: string): Promise<void> {
  try {
    await d.links.call(hostId, 'VM.destroy', { vmID: ctx.job.targetId }, { correlationId: ctx.correlationId });
  } catch (e) {
    if (!(e instanceof RpcCallError && e.code === 1)) throw e;
  }
}
