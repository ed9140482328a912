// What the source and destination sides of a migration share: the agent's
// services and the migration settings.
import type { Logger } from '../../log.js';
import type { Hooks } from '../../hooks/hooks.js';
import type { VmDisks } from '../../storage/vm-disks.js';
import type { VmManager } from '../manager.js';
import type { Slots } from './slots.js';

export interface MigrationSettings {
  maxOutgoing: number;
  maxIncoming: number;
  retryIntervalMs: number;
  maxBandwidthMiBs: number;
  timeoutSec: number;
  monitorIntervalMs: number;
  createTimeoutMs: number;
  incomingStartTimeoutMs: number;
  destinationTimeoutMs: number;
  libvirtTransport: 'tls' | 'tcp';
  /** Directory of libvirt's client certificates for qemu+tls; empty: libvirt's defaults under /etc/pki. */
  libvirtPkiPath: string;
  peerTlsServername: string;
  /** This agent's RPC port: the destination's when dst names none. */
  rpcPort: number;
  pkiDir: string;
  /** The default convergence schedule's last downtime and its number of steps (VDSM's legacy). */
  maxDowntimeMs: number;
  downtimeSteps: number;
  defaultSchedule: 'none' | 'legacy';
  /** KubeVirt's knobs; 0 off. */
  progressTimeoutSec: number;
  completionTimeoutPerGiBSec: number;
}

export interface MigrationContext {
  manager: VmManager;
  hooks: Hooks;
  disks?: VmDisks;
  /** Makes this host see a block volume's current size (loop/LV refresh); bytes. Absent without a pool. */
  refreshVolume?: (sdUUID: string, volUUID: string) => Promise<number>;
  log: Logger;
  settings: MigrationSettings;
  outgoing: Slots;
  incoming: Slots;
  /** False once the agent is stopping. */
  accepting: () => boolean;
}

/** Resolves after ms, or at once when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); };
    const t = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}
