// The VM registry: rebuilt from libvirt on every (re)connection, kept current
// by libvirt's events. A VM that has not been reconciled since the agent
// started (or since libvirt came back) is Unknown, never Down; the agent
// never destroys a domain it cannot account for, and never touches external
// domains (those without our metadata).
import { EventEmitter } from 'node:events';
import type { ReconnectingLibvirtClient, Connection, Domain } from '../libvirt/index.js';
import { NoVmError, ExternalVmError, RecoveryError, LibvirtUnavailableApiError } from '../../api/errors.js';
import type { Logger } from '../log.js';
import { PhaseTimer } from '../log.js';
import { Vm } from './vm.js';
import { metadataFromDomainXml } from './metadata.js';
import { parseDomainDevices } from './domain-xml.js';
import { applyIoError, applyLifecycle } from './lifecycle-events.js';
import { ExitReason, type PauseCodeT, type VmStatusT } from './status.js';
import { enums, LibvirtError } from '../libvirt/index.js';
import { api } from './libvirt-errors.js';

const RECONCILE_RETRY_MS = 1000;

type ManagerEvents = { status: [Vm]; recovered: [{ generation: number; managed: number; external: number }] };

export class VmManager extends EventEmitter<ManagerEvents> {
  readonly vms = new Map<string, Vm>();
  /**
   * VM.create calls between their "exists" check and the VM's registration
   * (NIC and disk resolution await in between), by vmID: a second create of
   * one gets 4, and a destroy of one waits for it to register (or fail).
   */
  readonly creating = new Map<string, Promise<unknown>>();
  /** True until the first reconciliation with libvirt has finished. */
  recovering = true;
  private reconciledGeneration = 0;

  constructor(readonly client: ReconnectingLibvirtClient, private readonly log: Logger) {
    super();
  }

  async start(): Promise<void> {
    this.client.on('connected', ({ generation }) => { void this.reconcile(generation); });
    this.client.on('disconnected', () => this.markUnknown());
    await this.client.subscribe('lifecycle', (ev) => {
      const vm = this.vms.get(ev.domain.uuid);
      if (!vm) {
        if (ev.event === enums.DomainEventType.STARTED || ev.event === enums.DomainEventType.DEFINED) void this.adopt(ev.domain.uuid);
        return;
      }
      if (applyLifecycle(vm, ev)) this.emit('status', vm);
    });
    await this.client.subscribe('io-error-reason', (ev) => {
      const vm = this.vms.get(ev.domain.uuid);
      if (vm && applyIoError(vm, ev)) this.emit('status', vm);
    });
  }

  conn(): Connection {
    return this.client.connection;
  }

  /** Throws the API's libvirtUnavailable (1001) during a libvirt outage. */
  requireLibvirt(): void {
    if (!this.client.connected) throw new LibvirtUnavailableApiError();
  }

  async domain(vm: Vm): Promise<Domain> {
    return api(() => this.conn().lookupByUUID(vm.id), vm.id);
  }

  get(vmId: string): Vm {
    const vm = this.vms.get(vmId);
    if (!vm) throw new NoVmError(vmId);
    return vm;
  }

  /** A VM the caller may change: ours, and reconciled. */
  managed(vmId: string): Vm {
    if (this.recovering) throw new RecoveryError();
    const vm = this.get(vmId);
    if (vm.external) throw new ExternalVmError(vmId);
    if (vm.status === 'Unknown') throw new RecoveryError(`VM ${vmId} is not reconciled with libvirt yet`);
    return vm;
  }

  setStatus(vm: Vm, status: VmStatusT, extra: Parameters<Vm['setStatus']>[1] = {}): void {
    if (vm.setStatus(status, extra)) this.emit('status', vm);
  }

  private markUnknown(): void {
    for (const vm of this.vms.values()) {
      if (vm.status !== 'Down' && vm.status !== 'WaitForLaunch') this.setStatus(vm, 'Unknown');
    }
  }

  /** Lists libvirt's domains and rebuilds every VM from its XML and state. */
  async reconcile(generation: number): Promise<void> {
    const timer = new PhaseTimer();
    try {
      const conn = this.conn();
      const domains = await conn.listAllDomains();
      timer.mark('list');
      const seen = new Set<string>();
      let managed = 0, external = 0;
      await Promise.all(domains.map(async (d) => {
        let xml: string, state: DomainStateT, ioPause: PauseCodeT | undefined;
        try {
          [xml, state] = await Promise.all([d.xml(), d.state()]);
          ioPause = await ioPauseCode(d, state);
        } catch (e) {
          // Gone between the listing and now: it is simply not there.
          if (e instanceof LibvirtError && e.code === enums.ErrorNumber.ERR_NO_DOMAIN) return;
          throw e;
        }
        seen.add(d.uuid);
        this.rebuild(d, xml, state, ioPause);
        if (this.vms.get(d.uuid)?.external) external++; else managed++;
      }));
      timer.mark('rebuild');
      for (const vm of this.vms.values()) {
        if (seen.has(vm.id) || vm.status === 'Down' || vm.status === 'WaitForLaunch') continue;
        // Ours, gone while we were not looking: it is Down, and we say why.
        this.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.DOMAIN_MISSING, exitMessage: 'domain disappeared from libvirt' } });
      }
      this.reconciledGeneration = generation;
      this.recovering = false;
      this.log.info('VMs reconciled with libvirt', { generation, managed, external, ...timer.fields() });
      this.emit('recovered', { generation, managed, external });
    } catch (e) {
      // Retry while this connection lasts; a new connection reconciles anyway.
      this.log.warn('reconcile failed; retrying', { err: e, generation, retryInMs: RECONCILE_RETRY_MS, ...timer.fields() });
      setTimeout(() => {
        if (this.client.connected && this.reconciledGeneration < generation) void this.reconcile(generation);
      }, RECONCILE_RETRY_MS).unref();
    }
  }

  /** ioPause: why a domain paused on an I/O error is paused (ENOSPC or EIO; see ioPauseCode). */
  private rebuild(d: Domain, xml: string, state: DomainStateT, ioPause?: PauseCodeT): void {
    const meta = metadataFromDomainXml(xml);
    let vm = this.vms.get(d.uuid);
    if (!vm || vm.external !== (meta === undefined)) {
      vm = new Vm(d.uuid, d.name, meta === undefined);
      // Found running, not launched by this agent: its storage disks are known by their ids only, until recovered.
      if (meta) vm.storageFromMetadata(meta);
      this.vms.set(d.uuid, vm);
    }
    if (meta) vm.meta = meta;
    vm.name = d.name;
    vm.domId = d.id >= 0 ? d.id : undefined;
    vm.hasGuestAgent = parseDomainDevices(xml).hasGuestAgentChannel;
    const S = enums.DomainState;
    switch (state.state) {
      case S.RUNNING: case S.BLOCKED:
        if (!vm.shuttingDown) this.setStatus(vm, 'Up'); else this.setStatus(vm, 'Powering down');
        break;
      case S.PAUSED: {
        const io = state.reason === enums.DomainPausedReason.IOERROR;
        this.setStatus(vm, 'Paused', { pauseCode: io ? ioPause ?? 'EIO' : 'NOERR' });
        break;
      }
      case S.SHUTDOWN:
        this.setStatus(vm, 'Powering down');
        break;
      default:
        // Defined but not running (persistent external domains).
        this.setStatus(vm, 'Down', { exit: { exitCode: 0, exitReason: ExitReason.SUCCEEDED, exitMessage: 'not running' } });
    }
  }

  /** A domain that appeared without us (started by someone else). */
  private async adopt(uuid: string): Promise<void> {
    if (this.reconciledGeneration === 0 || this.vms.has(uuid)) return;
    try {
      const d = await this.conn().lookupByUUID(uuid);
      const [xml, state] = await Promise.all([d.xml(), d.state()]);
      const ioPause = await ioPauseCode(d, state);
      if (!this.vms.has(uuid)) this.rebuild(d, xml, state, ioPause);
    } catch (e) {
      this.log.debug('could not adopt new domain', { vm: uuid, err: e });
    }
  }

  /**
   * After a thin drive was extended: a VM paused because its disk was full
   * goes on (never one paused for another reason, or by the engine).
   */
  async resumeIfEnospc(vmId: string): Promise<void> {
    const vm = this.vms.get(vmId);
    if (!vm || vm.status !== 'Paused' || vm.pauseCode !== 'ENOSPC') return;
    const dom = await this.domain(vm);
    await api(() => dom.resume(), vm.id);
    this.setStatus(vm, 'Up');
    this.log.info('VM resumed after extension', { vm: vmId });
  }

  forget(vm: Vm): void {
    this.vms.delete(vm.id);
  }

  list(): Vm[] {
    return [...this.vms.values()];
  }
}

type DomainStateT = { state: number; reason: number };

/**
 * For a domain paused on an I/O error, the pause code libvirt's disk errors
 * give (as VDSM reads it at recovery): ENOSPC when a disk is full, else EIO.
 * Undefined for any other state. Unreadable errors are EIO, never a guess of ENOSPC.
 */
async function ioPauseCode(d: Domain, state: DomainStateT): Promise<PauseCodeT | undefined> {
  if (state.state !== enums.DomainState.PAUSED || state.reason !== enums.DomainPausedReason.IOERROR) return undefined;
  const errors = await d.diskErrors().catch(() => ({}));
  return Object.values(errors).includes(enums.DomainDiskErrorCode.NO_SPACE) ? 'ENOSPC' : 'EIO';
}
