// The live inventory of installed hooks, {point: {script: {checksum}}}, kept
// current by a chokidar watch on the hook tree (so getCapabilities never
// rescans). Only directories holding executables are listed, as in VDSM.
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import chokidar, { type FSWatcher } from 'chokidar';
import type { Logger } from '../log.js';
import { isHookPoint, type HookPoint } from './points.js';
import type { HookRunner } from './runner.js';
import { HOOK_POINTS } from './points.js';

export type HookInventory = Record<string, Record<string, { checksum: string }>>;

export class HookInventoryWatcher extends EventEmitter<{ changed: [HookInventory] }> {
  private watcher: FSWatcher | undefined;
  private current: HookInventory = {};
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> = Promise.resolve();

  constructor(private readonly dir: string, private readonly runner: HookRunner, private readonly log: Logger, private readonly debounceMs = 100) {
    super();
  }

  get inventory(): HookInventory {
    return this.current;
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await this.rescan();
    this.watcher = chokidar.watch(this.dir, { depth: 2, ignoreInitial: true, persistent: true });
    this.watcher.on('all', () => this.schedule());
    this.watcher.on('error', (err) => this.log.warn('hook watch error', { err }));
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
    await this.rescan(); // anything that changed while the watch started
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.watcher?.close();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.scanning = this.scanning.then(() => this.rescan()); }, this.debounceMs);
  }

  async rescan(): Promise<void> {
    const next: HookInventory = {};
    for (const point of Object.keys(HOOK_POINTS) as HookPoint[]) {
      const scripts = await this.runner.scripts(point);
      for (const file of scripts) {
        try {
          const checksum = createHash('sha256').update(await readFile(file)).digest('hex');
          (next[point] ??= {})[basename(file)] = { checksum };
        } catch { /* removed meanwhile */ }
      }
    }
    if (JSON.stringify(next) !== JSON.stringify(this.current)) {
      this.current = next;
      this.log.info('hook inventory changed', { points: Object.keys(next).length, scripts: Object.values(next).reduce((n, p) => n + Object.keys(p).length, 0) });
      this.emit('changed', next);
    }
  }
}

export { isHookPoint };
