// `hostvisor restore-networks`: the boot-time half of network persistence,
// VDSM's `vdsm-tool restore-nets` run by vdsm-network.service.
//
// Run by the oneshot unit hostvisor-network.service before hostvisord. With
// the agent's settings (the same agent.toml) it removes the networks and bonds
// that are in the running config but were never persisted, re-applies the
// persisted (safe) ones, verifies the result, and makes the running config
// equal to the safe one (restoreNetworks in agent/network/persist.ts).
//
// Output: one JSON report on stdout (ok, what was removed and restored, the
// steps, phase times); logs go to stderr as JSON lines. On success it writes
// the marker file (VDSM's /run/vdsm/nets_restored); a failure removes it, so
// the marker never outlives a failed run. The whole run is bounded by
// network.restoreTimeoutMs on top of the per-command timeouts.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config/settings.js';
import { HostvisorError } from '../../api/errors.js';
import type { Logger } from '../log.js';
import { describeStep } from '../network/apply.js';
import { HostNetworks } from '../network/index.js';

export const DEFAULT_MARKER = '/run/hostvisor/nets_restored';

export interface RestoreNetworksReport {
  ok: boolean;
  /** false when nothing was ever persisted: the host's networking was left alone. */
  restored: boolean;
  confDir: string;
  removedNetworks: string[];
  removedBondings: string[];
  networks: string[];
  bondings: string[];
  /** Every change made, as a command line an operator could replay. */
  steps: string[];
  /** DHCP leases obtained for restored DHCP networks, by device. */
  leases: Record<string, { address: string; prefix: number }>;
  phasesMs: Record<string, number>;
  ms: number;
  marker?: string;
  error?: { code: number; name: string; message: string; data?: unknown };
}

export interface RestoreNetworksOptions {
  config: Config;
  log: Logger;
  markerPath: string;
}

function errorOf(e: unknown): NonNullable<RestoreNetworksReport['error']> {
  if (e instanceof HostvisorError) return { code: e.code, name: e.name, message: e.message, ...(e.data ? { data: e.data } : {}) };
  const err = e instanceof Error ? e : new Error(String(e));
  return { code: -1, name: err.name, message: err.message };
}

/** Runs the restore; never throws: failures come back as ok: false with the error. */
export async function restoreNetworksCommand(o: RestoreNetworksOptions): Promise<RestoreNetworksReport> {
  const t0 = performance.now();
  const confDir = o.config['network.confDir'];
  const report: RestoreNetworksReport = {
    ok: false, restored: false, confDir,
    removedNetworks: [], removedBondings: [], networks: [], bondings: [],
    steps: [], leases: {}, phasesMs: {}, ms: 0,
  };
  const timeoutMs = o.config['network.restoreTimeoutMs'];
  let timer: NodeJS.Timeout | undefined;
  try {
    await rm(o.markerPath, { force: true });
    const nets = HostNetworks.fromConfig(o.config, o.log);
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`restore-networks did not finish within ${timeoutMs} ms (network.restoreTimeoutMs)`)), timeoutMs);
    });
    const r = await Promise.race([nets.restoreNetworks(), timedOut]);
    Object.assign(report, {
      restored: r.restored,
      removedNetworks: r.removedNetworks, removedBondings: r.removedBondings,
      networks: r.networks, bondings: r.bondings,
      steps: (r.apply?.steps ?? []).map(describeStep),
      leases: Object.fromEntries(Object.entries(r.apply?.leases ?? {}).map(([dev, l]) => [dev, { address: l.address, prefix: l.prefix }])),
      phasesMs: r.apply?.phasesMs ?? {},
    });
    await mkdir(dirname(o.markerPath), { recursive: true });
    await writeFile(o.markerPath, new Date().toISOString() + '\n');
    report.marker = o.markerPath;
    report.ok = true;
  } catch (e) {
    report.error = errorOf(e);
    o.log.error('restore-networks failed', { err: e });
  } finally {
    clearTimeout(timer);
    report.ms = Math.round(performance.now() - t0);
  }
  return report;
}
