// Live migration and host maintenance in the controller, wired into the runtime by one call
// (install-parts.ts): the vm.migrate job (placed at request time, or when it runs for a job the
// balancing loop made), the host.maintenance job, and what the REST routes call.
import type { LogFn } from '../agents/log-fn.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { ApiContext } from '../http/context.js';
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import type { StorageDeps } from '../storage/storage-deps.js';
import type { Store } from '../store/store.js';
import type { VmsPart } from '../vms/install.js';
import { maintenanceJob } from './maintenance-job.js';
import { HostMaintenance } from './maintenance-service.js';
import { migrateJob } from './migrate-job.js';
import { MigrationPlacement } from './migrate-placement.js';

export interface MigrationPart {
  placer: MigrationPlacement;
  maintenance: HostMaintenance;
}

export function installMigration(runtime: ControllerRuntime, store: Store, settings: DecisionSettings, log: LogFn,
  vms: VmsPart, storage?: Pick<StorageDeps, 'pool' | 'connector' | 'spm'>, api?: ApiContext): MigrationPart {
  const placer = new MigrationPlacement({
    store, settings, registry: vms.registry, reservations: vms.reservations, placement: vms.placement, facts: vms.facts, log, get ready() { return vms.ready; },
  });
  const maintenance = new HostMaintenance({ runtime, store, settings, vms, log });
  runtime.executor.register('vm.migrate', migrateJob({ ...vms.deps, placer }));
  runtime.executor.register('host.maintenance', maintenanceJob({ runtime, store, settings, vms, ...(storage && { storage }) }));
  if (api) {
    api.vmMigrations = placer;
    api.hostMaintenance = maintenance;
  }
  return { placer, maintenance };
}
