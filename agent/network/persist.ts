// Persisted network config, VDSM's two levels:
// - running.json: what the engine last set (written after every successful
//   setupNetworks);
// - safe.json: what setSafeNetworkConfig (or commitOnSuccess) persisted; the
//   host returns to it at boot. netConfigDirty = running ≠ safe.
// Files are written atomically: temp file in the same folder, fsync, rename,
// fsync of the folder, so a crash leaves the old or the new file, never half.
//
// restoreNetworks() is for the boot oneshot (`hostvisor restore-networks`,
// before the agent starts): it removes the managed networks and bonds that are
// not persisted, re-applies the persisted ones, verifies, and makes the
// running config equal to the safe one.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { silentLogger } from '../log.js';
import { applyConfig, type ApplyDeps, type ApplyReport } from './apply.js';
import { emptyConfig, NetConfig, sameConfig, sortedConfig, type NetConfigT } from './model.js';

export const DEFAULT_NETCONF_DIR = '/var/lib/hostvisor/netconf';
const FORMAT = 1;
const check = TypeCompiler.Compile(NetConfig);

interface StoredFile {
  format: number;
  savedAt: string;
  config: NetConfigT;
}

/** Writes PATH atomically (temp + fsync + rename + fsync of the folder). */
export async function atomicWriteFile(path: string, data: string, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  const d = await open(dir, 'r');
  try { await d.sync(); } finally { await d.close(); }
}

export class NetConfStore {
  readonly runningPath: string;
  readonly safePath: string;

  constructor(readonly dir: string = DEFAULT_NETCONF_DIR) {
    this.runningPath = join(dir, 'running.json');
    this.safePath = join(dir, 'safe.json');
  }

  private async load(path: string): Promise<NetConfigT | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const f = JSON.parse(text) as StoredFile;
    if (f.format !== FORMAT || !check.Check(f.config)) throw new Error(`${path}: not a format-${FORMAT} network config`);
    return f.config;
  }

  private save(path: string, cfg: NetConfigT): Promise<void> {
    const f: StoredFile = { format: FORMAT, savedAt: new Date().toISOString(), config: sortedConfig(cfg) };
    return atomicWriteFile(path, JSON.stringify(f, null, 2) + '\n');
  }

  /** The running config (empty if none was ever set). */
  async running(): Promise<NetConfigT> {
    return (await this.load(this.runningPath)) ?? emptyConfig();
  }

  /** The safe config, or undefined if setSafeNetworkConfig never ran. */
  safe(): Promise<NetConfigT | undefined> {
    return this.load(this.safePath);
  }

  writeRunning(cfg: NetConfigT): Promise<void> {
    return this.save(this.runningPath, cfg);
  }

  /** setSafeNetworkConfig: the running config becomes the safe one. */
  async setSafe(): Promise<void> {
    await this.save(this.safePath, await this.running());
  }

  /** netConfigDirty: the running config is not what the host would return to at boot. */
  async isDirty(): Promise<boolean> {
    return !sameConfig(await this.running(), (await this.safe()) ?? emptyConfig());
  }
}

export interface RestoreReport {
  /** false when nothing was ever persisted: the host's networking is left alone. */
  restored: boolean;
  removedNetworks: string[];
  removedBondings: string[];
  networks: string[];
  bondings: string[];
  apply?: ApplyReport;
}

/**
 * Boot-time restore: from the running config (what may still exist) to the
 * safe config. Throws what applyConfig throws (the caller exits non-zero).
 */
export async function restoreNetworks(store: NetConfStore, deps: ApplyDeps & { markerPath?: string }): Promise<RestoreReport> {
  const log = deps.log ?? silentLogger;
  const safe = await store.safe();
  if (!safe) {
    log.info('restore-networks: nothing persisted; leaving the host networking alone');
    return { restored: false, removedNetworks: [], removedBondings: [], networks: [], bondings: [] };
  }
  const running = await store.running();
  const report: RestoreReport = {
    restored: true,
    removedNetworks: Object.keys(running.networks).filter((n) => !Object.hasOwn(safe.networks, n)).sort(),
    removedBondings: Object.keys(running.bondings).filter((n) => !Object.hasOwn(safe.bondings, n)).sort(),
    networks: Object.keys(safe.networks).sort(),
    bondings: Object.keys(safe.bondings).sort(),
  };
  report.apply = await applyConfig(running, safe, deps);
  await store.writeRunning(safe);
  if (deps.markerPath) await writeFile(deps.markerPath, new Date().toISOString() + '\n');
  log.info('restore-networks done', { removed: report.removedNetworks, restored: report.networks, steps: report.apply.steps.length });
  return report;
}
