// Storage once per cluster: the pool connector (every Up host connected to its cluster's pool),
// the SPM loop, the job handlers (storage-domain.create, disk.create, disk.delete), and what
// the health monitor learns from them (which host is the SPM; which pool domains a host
// cannot reach, so it turns NonOperational after storageUnreachableGraceMs).
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { Store } from '../store/store.js';
import { noLog, type LogFn } from '../agents/log-fn.js';
import { SpmLoop } from '../spm/spm-loop.js';
import type { RandomSource } from '../spm/spm-record.js';
import { PoolConnector } from './pool-connector.js';
import { PoolState } from './pool-state.js';
import { domainCreateJob } from './domain-job.js';
import { diskCreateJob, diskDeleteJob } from './disk-jobs.js';
import { diskCopyJob, diskMoveJob } from './disk-copy-jobs.js';
import type { StorageDeps } from './storage-deps.js';

export interface InstallStorageOptions {
  /** tie breaks between SPM candidates of equal priority (tests make them reproducible) */
  random?: RandomSource;
}

export function installStorage(runtime: ControllerRuntime, store: Store, settings: DecisionSettings, log: LogFn = noLog,
  o: InstallStorageOptions = {}): StorageDeps {
  const pool = new PoolState();
  const connector = new PoolConnector({ runtime, store, settings, state: pool, log });
  const spm = new SpmLoop({ runtime, store, settings, pool, log, ...(o.random && { random: o.random }) });
  const deps: StorageDeps = { runtime, store, settings, log, pool, connector, spm };

  runtime.executor.register('storage-domain.create', domainCreateJob(deps));
  runtime.executor.register('disk.create', diskCreateJob(deps));
  runtime.executor.register('disk.delete', diskDeleteJob(deps));
  runtime.executor.register('disk.copy', diskCopyJob(deps), { cancellable: true });
  runtime.executor.register('disk.move', diskMoveJob(deps), { cancellable: true });

  runtime.hostContext.isSpm = (id) => spm.isSpm(id);
  // Another part (networks) may add its own observation: keep it and add the storage one.
  const before = runtime.hostContext.fitness;
  runtime.hostContext.fitness = (id) => {
    const other = before(id);
    const mine = pool.unreachable(id).map((sd) => connector.domainNames.get(sd) ?? sd);
    return mine.length === 0 ? other : { ...other, unreachableDomains: [...other.unreachableDomains, ...mine] };
  };

  // An agent that (re)connects may have restarted and left the pool: look at once, not at the next pass.
  const offResync = runtime.links.onResync(() => { connector.loop.kick(); spm.loop.kick(); });
  runtime.addLoop({
    start: () => { connector.loop.start(); spm.loop.start(); },
    close: async () => { offResync(); await spm.loop.close(); await connector.close(); },
  });
  return deps;
}
