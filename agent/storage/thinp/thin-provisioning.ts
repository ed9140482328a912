// Thin provisioning on this host, as one module with its dependencies named:
// the drive monitor, started at once by libvirt's block-threshold and ENOSPC
// events (its own poll is the fallback), extends a drive through the storage
// side (the SPM grows the volume through the pool's mailbox, then this host
// refreshes it) and has the VM side resume a VM that paused because its disk
// was full.
import type { Logger } from '../../log.js';
import type { Connection, DomainEvent, DomainEventKind } from '../../libvirt/index.js';
import { DriveMonitor, type ExtendAnswer } from './drive-monitor.js';
import type { ThinpPolicy } from './sizing.js';

/** libvirt as thin provisioning uses it: the current connection, and subscriptions that outlive reconnections. */
export interface ThinpLibvirt {
  readonly connection: Connection;
  subscribe<K extends DomainEventKind>(kind: K, listener: (ev: DomainEvent<K>) => void): Promise<{ close(): Promise<void> }>;
}

/** The storage side of an extension (the connected pool). */
export interface VolumeExtender {
  /** Asks the SPM, through the mailbox, to grow the volume; the answer names the request. */
  requestExtend(sdUUID: string, volUUID: string, sizeMiB: number): Promise<ExtendAnswer>;
  /** Makes this host see the volume's new size; returns it in bytes. */
  refreshVolume(sdUUID: string, volUUID: string): Promise<number>;
}

/** The VM side: a VM paused because its disk was full goes on once the disk has room (its status follows). */
export interface EnospcResumer {
  resumeIfEnospc(vmId: string): Promise<void>;
}

/** A migration's destination, which must see an extension before it counts (VDSM's refresh_disk). */
export type DestinationRefresh = (vmId: string, volumeId: string, sizeMiB: number) => Promise<number | undefined>;

export interface ThinProvisioningDeps {
  libvirt: ThinpLibvirt;
  /** For VMs migrating out; called lazily (the migrations exist after thin provisioning). */
  destinationRefresh?: DestinationRefresh;
  storage: VolumeExtender;
  vms: EnospcResumer;
  policy: ThinpPolicy;
  /** The monitor's fallback poll. */
  pollMs: number;
  /** An extension that did not finish in this long may be tried again. */
  retryAfterMs: number;
  log: Logger;
}

export class ThinProvisioning {
  readonly monitor: DriveMonitor;
  private readonly subscriptions: Array<{ close(): Promise<void> }> = [];

  constructor(private readonly deps: ThinProvisioningDeps) {
    const { libvirt, storage, vms } = deps;
    this.monitor = new DriveMonitor({
      getConnection: () => libvirt.connection,
      policy: deps.policy,
      requestExtend: (d, sizeMiB) => storage.requestExtend(d.domainId, d.volumeId, sizeMiB),
      refresh: (d) => storage.refreshVolume(d.domainId, d.volumeId),
      refreshElsewhere: (d, sizeMiB) => deps.destinationRefresh?.(d.vmId, d.volumeId, sizeMiB) ?? Promise.resolve(undefined),
      resumeIfEnospc: (vmId) => vms.resumeIfEnospc(vmId),
      pollMs: deps.pollMs, retryAfterMs: deps.retryAfterMs,
      log: deps.log,
    });
  }

  async start(): Promise<void> {
    const { libvirt } = this.deps;
    this.subscriptions.push(await libvirt.subscribe('block-threshold', (ev) => this.monitor.onThreshold(ev.domain.uuid, ev.dev)));
    this.subscriptions.push(await libvirt.subscribe('io-error-reason', (ev) => { if (ev.reason === 'enospc') this.monitor.onEnospc(ev.domain.uuid); }));
    this.monitor.start();
  }

  async stop(): Promise<void> {
    this.monitor.stop();
    for (const s of this.subscriptions.splice(0)) await s.close().catch(() => {});
  }
}
