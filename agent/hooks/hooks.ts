// The agent's face of hooks: runs a point only when the inventory says it has
// scripts (so hook-free calls cost nothing), and helpers for the JSON points.
import { HookInventoryWatcher, type HookInventory } from './inventory.js';
import { HookRunner, hookError, type HookCall, type HookResult, type HookRunnerOptions } from './runner.js';
import { HOOK_POINTS, type HookPoint } from './points.js';
import { HookError } from '../../api/errors.js';

export class Hooks {
  readonly runner: HookRunner;
  readonly inventory: HookInventoryWatcher;

  constructor(o: HookRunnerOptions) {
    this.runner = new HookRunner(o);
    this.inventory = new HookInventoryWatcher(o.dir, this.runner, o.log);
  }

  start(): Promise<void> { return this.inventory.start(); }
  stop(): Promise<void> { return this.inventory.stop(); }

  get current(): HookInventory { return this.inventory.inventory; }

  has(point: HookPoint): boolean {
    return this.inventory.inventory[point] !== undefined;
  }

  async run(point: HookPoint, call: HookCall): Promise<HookResult> {
    if (!this.has(point)) return { data: call.data, runs: [], failed: false, ...(call.launchFlags !== undefined ? { launchFlags: call.launchFlags } : {}) };
    return this.runner.run(point, call);
  }

  /** For raising points: a failure throws HookError (78). */
  async runRaising(point: HookPoint, call: HookCall): Promise<HookResult> {
    const r = await this.run(point, call);
    if (r.failed && HOOK_POINTS[point].raising) throw hookError(point, r);
    return r;
  }

  /** Runs a JSON point over `value` and returns what the hooks left (or `value` if they left no valid JSON). */
  async filterJson<T>(point: HookPoint, value: T, call: Omit<HookCall, 'data'> = {}): Promise<T> {
    if (!this.has(point)) return value;
    const r = HOOK_POINTS[point].raising ? await this.runRaising(point, { ...call, data: JSON.stringify(value) }) : await this.run(point, { ...call, data: JSON.stringify(value) });
    try {
      return JSON.parse(r.data) as T;
    } catch (e) {
      if (HOOK_POINTS[point].raising) throw new HookError(`${point} hook left invalid JSON`, { cause: e });
      return value;
    }
  }
}
