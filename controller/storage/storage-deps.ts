// What the storage part's jobs and loops share (built once by installStorage).
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { Store } from '../store/store.js';
import type { LogFn } from '../agents/log-fn.js';
import type { SpmLoop } from '../spm/spm-loop.js';
import type { PoolConnector } from './pool-connector.js';
import type { PoolState } from './pool-state.js';

export interface StorageDeps {
  runtime: ControllerRuntime;
  store: Store;
  settings: DecisionSettings;
  log: LogFn;
  pool: PoolState;
  connector: PoolConnector;
  spm: SpmLoop;
}
