// What a migration runs with (the schedule, post-copy allowed or not, the
// deadlines), and the one safe end of a failed post-copy: neither host holds
// the guest's whole memory, so the VM is destroyed on both (the source's
// copy here; the caller destroys the destination's).
import type { Domain } from '../../libvirt/index.js';
import type { Logger } from '../../log.js';
import type { MigrateParamsT } from '../../../api/schema.js';
import type { Vm } from '../vm.js';
import { ExitReason } from '../status.js';
import type { MigrationContext, MigrationSettings } from './context.js';
import { defaultSchedule, scheduleHas, type ConvergenceScheduleT } from './schedule.js';
import { completionTimeoutMs, type TimeoutLimits } from './timeouts.js';

export interface MigrationPlan {
  schedule: ConvergenceScheduleT;
  /** VIR_MIGRATE_POSTCOPY: asked for, or needed by the schedule (as VDSM adds it). */
  postcopy: boolean;
  limits: TimeoutLimits;
}

/** How long the source waits for its destroyed domain's STOPPED event before setting Down itself. */
const DESTROYED_WAIT_MS = 5_000;

export function migrationPlan(p: MigrateParamsT, s: MigrationSettings, memoryBytes: number): MigrationPlan {
  const schedule = p.convergenceSchedule
    ?? (s.defaultSchedule === 'legacy' ? defaultSchedule(s.maxDowntimeMs, s.downtimeSteps, p.postcopy === true) : { init: [], stalling: [] });
  const postcopy = p.postcopy === true || scheduleHas(schedule, 'postcopy');
  return {
    schedule, postcopy,
    limits: {
      progressTimeoutMs: (p.progressTimeout ?? s.progressTimeoutSec) * 1000,
      completionTimeoutMs: completionTimeoutMs(p.completionTimeoutPerGiB ?? s.completionTimeoutPerGiBSec, memoryBytes),
    },
  };
}

/** The source's side of a failed post-copy: its paused, incomplete copy destroyed, Down saying why. */
export async function failInPostcopy(c: MigrationContext, vm: Vm, dom: Domain | undefined, log: Logger): Promise<void> {
  try {
    const d = dom ?? await c.manager.domain(vm);
    await d.destroy();
  } catch (e) {
    log.warn('could not destroy the source domain after the failed post-copy', { err: e });
  }
  await vm.waitFor((st) => st === 'Down', DESTROYED_WAIT_MS);
  vm.domId = undefined;
  c.manager.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.GENERIC_ERROR, exitMessage: 'post-copy migration failed: the VM was destroyed on both hosts' } });
  await c.disks?.released(vm.id, vm.disks);
  log.error('post-copy migration failed; the VM was destroyed on both hosts');
}
