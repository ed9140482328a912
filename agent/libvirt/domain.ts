// A libvirt domain. Methods are thin, typed and timed wrappers over the addon;
// long calls (shutdown, reboot, migration, snapshots, guest agent) run on
// their own native threads and take their own timeouts.
import { native, type BlockInfo, type DiskErrors, type DomHandle, type DomainInfo, type InterfaceAddresses, type Int64, type TypedParamsRecord } from './native.js';
import type { Connection } from './connection.js';
import { LibvirtError } from './errors.js';
import { DomainMetadataType, DomainState, ErrorNumber, DomainInterfaceAddressesSource } from './generated/enums.js';
import { encodeTypedParams, type TypedParamValue } from './typed-params.js';

export interface LongCallOptions {
  flags?: number;
  /** ms; 0 = no timeout. Defaults to the connection's call timeout. */
  timeoutMs?: number;
}

export class Domain {
  readonly name: string;
  readonly uuid: string;

  /** @internal Created by Connection. */
  constructor(readonly conn: Connection, private readonly handle: DomHandle) {
    const ident = native.domainIdentity(handle);
    this.name = ident.name;
    this.uuid = ident.uuid;
  }

  /** @internal */
  h(): DomHandle {
    this.conn.h(); // throws once the connection is closed
    return this.handle;
  }

  /** libvirt's runtime id, -1 when not running (local, no RPC). */
  get id(): number {
    return native.domainIdentity(this.handle).id;
  }

  private run<T>(call: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T> {
    return this.conn.run(call, fn, timeoutMs);
  }

  create(flags = 0): Promise<void> { return this.run('domainCreate', () => native.domainCreate(this.h(), flags)); }
  destroy(flags = 0): Promise<void> { return this.run('domainDestroy', () => native.domainDestroy(this.h(), flags)); }
  shutdown(o: LongCallOptions = {}): Promise<void> {
    return this.run('domainShutdown', () => native.domainShutdown(this.h(), o.flags ?? 0), o.timeoutMs);
  }
  reboot(o: LongCallOptions = {}): Promise<void> {
    return this.run('domainReboot', () => native.domainReboot(this.h(), o.flags ?? 0), o.timeoutMs);
  }
  reset(): Promise<void> { return this.run('domainReset', () => native.domainReset(this.h(), 0)); }
  suspend(): Promise<void> { return this.run('domainSuspend', () => native.domainSuspend(this.h())); }
  resume(): Promise<void> { return this.run('domainResume', () => native.domainResume(this.h())); }
  undefine(flags = 0): Promise<void> { return this.run('domainUndefine', () => native.domainUndefine(this.h(), flags)); }

  xml(flags = 0): Promise<string> { return this.run('domainGetXMLDesc', () => native.domainGetXMLDesc(this.h(), flags)); }
  info(): Promise<DomainInfo> { return this.run('domainGetInfo', () => native.domainGetInfo(this.h())); }
  state(): Promise<{ state: DomainState; reason: number }> {
    return this.run('domainGetState', () => native.domainGetState(this.h(), 0));
  }

  /** The metadata element in namespace `uri` (ELEMENT type), or null if there is none. */
  async metadata(type: DomainMetadataType, uri: string | null = null, flags = 0): Promise<string | null> {
    try {
      return await this.run('domainGetMetadata', () => native.domainGetMetadata(this.h(), type, uri, flags));
    } catch (e) {
      if (e instanceof LibvirtError && e.code === ErrorNumber.ERR_NO_DOMAIN_METADATA) return null;
      throw e;
    }
  }
  /** Sets (or with `metadata` null, removes) metadata; for ELEMENT, `key` is the namespace prefix. */
  setMetadata(type: DomainMetadataType, metadata: string | null, key: string | null, uri: string | null, flags = 0): Promise<void> {
    return this.run('domainSetMetadata', () => native.domainSetMetadata(this.h(), type, metadata, key, uri, flags));
  }

  setBlockThreshold(dev: string, threshold: Int64, flags = 0): Promise<void> {
    return this.run('domainSetBlockThreshold', () => native.domainSetBlockThreshold(this.h(), dev, threshold, flags));
  }
  blockInfo(disk: string, flags = 0): Promise<BlockInfo> {
    return this.run('domainGetBlockInfo', () => native.domainGetBlockInfo(this.h(), disk, flags));
  }
  /** The disks with an I/O error pending (a domain paused on I/O error: which disk, and whether it is ENOSPC). */
  diskErrors(flags = 0): Promise<DiskErrors> {
    return this.run('domainGetDiskErrors', () => native.domainGetDiskErrors(this.h(), flags));
  }

  attachDevice(xml: string, flags = 0): Promise<void> { return this.run('domainAttachDevice', () => native.domainAttachDevice(this.h(), xml, flags)); }
  detachDevice(xml: string, flags = 0): Promise<void> { return this.run('domainDetachDevice', () => native.domainDetachDevice(this.h(), xml, flags)); }
  updateDevice(xml: string, flags = 0): Promise<void> { return this.run('domainUpdateDevice', () => native.domainUpdateDevice(this.h(), xml, flags)); }
  /** Writes the running domain's RAM and device state to `path` and stops it (hibernation). */
  save(path: string, dxml: string | null = null, flags = 0): Promise<void> { return this.run('domainSave', () => native.domainSave(this.h(), path, dxml, flags)); }
  detachDeviceAlias(alias: string, flags = 0): Promise<void> {
    return this.run('domainDetachDeviceAlias', () => native.domainDetachDeviceAlias(this.h(), alias, flags));
  }

  /** Migration driven from this side; params are VIR_MIGRATE_PARAM_* names with plain values. */
  migrateToURI3(dconnuri: string | null, params: Record<string, TypedParamValue | undefined>, o: LongCallOptions = {}): Promise<void> {
    return this.run('domainMigrateToURI3', () => native.domainMigrateToURI3(this.h(), dconnuri, encodeTypedParams(params), o.flags ?? 0), o.timeoutMs ?? 0);
  }
  async migrate3(dest: Connection, params: Record<string, TypedParamValue | undefined>, o: LongCallOptions = {}): Promise<Domain> {
    const nd = await this.run('domainMigrate3', () => native.domainMigrate3(this.h(), dest.h(), encodeTypedParams(params), o.flags ?? 0), o.timeoutMs ?? 0);
    return new Domain(dest, nd);
  }
  jobStats(flags = 0): Promise<{ type: number; stats: TypedParamsRecord }> {
    return this.run('domainGetJobStats', () => native.domainGetJobStats(this.h(), flags));
  }
  abortJob(): Promise<void> { return this.run('domainAbortJob', () => native.domainAbortJob(this.h())); }
  migrateSetMaxDowntime(ms: Int64, flags = 0): Promise<void> {
    return this.run('domainMigrateSetMaxDowntime', () => native.domainMigrateSetMaxDowntime(this.h(), ms, flags));
  }
  /** MiB/s. */
  migrateSetMaxSpeed(mibPerSec: Int64, flags = 0): Promise<void> {
    return this.run('domainMigrateSetMaxSpeed', () => native.domainMigrateSetMaxSpeed(this.h(), mibPerSec, flags));
  }

  /** Switches a migration started with VIR_MIGRATE_POSTCOPY to post-copy; no way back once it succeeded. */
  migrateStartPostCopy(flags = 0): Promise<void> {
    return this.run('domainMigrateStartPostCopy', () => native.domainMigrateStartPostCopy(this.h(), flags));
  }

  /** Returns the new snapshot's name. */
  snapshotCreateXML(xml: string, o: LongCallOptions = {}): Promise<string> {
    return this.run('domainSnapshotCreateXML', () => native.domainSnapshotCreateXML(this.h(), xml, o.flags ?? 0), o.timeoutMs);
  }
  /** Freezes every guest filesystem through the guest agent; resolves to how many were frozen. */
  fsFreeze(o: LongCallOptions = {}): Promise<number> {
    return this.run('domainFSFreeze', () => native.domainFSFreeze(this.h(), o.flags ?? 0), o.timeoutMs);
  }
  /** Thaws what fsFreeze froze; resolves to how many were thawed. */
  fsThaw(o: LongCallOptions = {}): Promise<number> {
    return this.run('domainFSThaw', () => native.domainFSThaw(this.h(), o.flags ?? 0), o.timeoutMs);
  }
  /** Raw guest-agent command (JSON string in, JSON string out). timeoutSec is libvirt's own agent timeout. */
  qemuAgentCommand(cmd: string, timeoutSec: number, o: LongCallOptions = {}): Promise<string> {
    return this.run('domainQemuAgentCommand', () => native.domainQemuAgentCommand(this.h(), cmd, timeoutSec, o.flags ?? 0), o.timeoutMs);
  }
  interfaceAddresses(source: DomainInterfaceAddressesSource, o: LongCallOptions = {}): Promise<InterfaceAddresses[]> {
    return this.run('domainInterfaceAddresses', () => native.domainInterfaceAddresses(this.h(), source, o.flags ?? 0), o.timeoutMs);
  }
  /** Guest agent information of the DomainGuestInfoTypes bits in `types` (0: all), as libvirt's flat keys (`hostname`, `if.0.name`, ...). */
  guestInfo(types: number, o: LongCallOptions = {}): Promise<TypedParamsRecord> {
    return this.run('domainGetGuestInfo', () => native.domainGetGuestInfo(this.h(), types, o.flags ?? 0), o.timeoutMs);
  }
  /** Sets the guest clock (through the guest agent); with flags SYNC, from the guest's RTC. */
  setTime(time: { seconds: Int64; nseconds: number } | null, o: LongCallOptions = {}): Promise<void> {
    return this.run('domainSetTime', () => native.domainSetTime(this.h(), time?.seconds ?? 0, time?.nseconds ?? 0, o.flags ?? 0), o.timeoutMs);
  }
}
