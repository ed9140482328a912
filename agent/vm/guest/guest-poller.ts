// Guest agent information, polled through libvirt per category (VDSM's
// qemuguestagent.py): only VMs that run and whose agent is connected; each
// call bounded (a late answer is dropped and the VM skipped for a while, as
// VDSM throttles a failing agent); at most one call in flight per VM, so a
// hung agent holds one native thread, never the event loop or the pool.
// VM.getStats reads what was gathered; it never waits for a guest.
import { EventEmitter } from 'node:events';
import type { Logger } from '../../log.js';
import type { InterfaceAddresses, TypedParamsRecord } from '../../libvirt/index.js';
import { ConnectDomainEventAgentLifecycleState as AgentState, DomainInterfaceAddressesSource } from '../../libvirt/generated/enums.js';
import { dueCategories, GUEST_INFO_BIT, type GuestCategory, type GuestSchedule } from './schedule.js';
import { fromInterfaceAddresses, parseDisks, parseFilesystems, parseHostname, parseOs, parseTimezone, parseUsers, type GuestInfo } from './guest-info-parse.js';
import { agentChannelState } from './channel-state.js';
import { LibvirtTimeoutError, withTimeout } from '../../libvirt/index.js';

/** The libvirt calls the poller makes on one domain; timeouts are the poller's. */
export interface GuestDomain {
  guestInfo(types: number, o: { timeoutMs: number }): Promise<TypedParamsRecord>;
  interfaceAddresses(source: DomainInterfaceAddressesSource, o: { timeoutMs: number }): Promise<InterfaceAddresses[]>;
  xml(): Promise<string>;
}

export interface GuestPollerOptions {
  schedule: GuestSchedule;
  /** Bound on one agent call (VDSM's qga_command_timeout). */
  callTimeoutMs: number;
  /** A VM whose agent call failed is left alone this long (VDSM's throttling interval). */
  throttleMs: number;
  /** The VMs now: id, whether the guest runs (an agent can answer), whether it has the agent channel. */
  vms: () => { id: string; running: boolean; hasGuestAgent: boolean }[];
  domain: (vmId: string) => Promise<GuestDomain>;
  /** Subscribes to libvirt's agent-lifecycle events (durably, across reconnects). */
  subscribe: (listener: (vmId: string, state: number, reason: number) => void) => Promise<unknown>;
  log: Logger;
  now?: () => number;
}

interface VmGuest {
  /** undefined until an event or the live XML said. */
  connected?: boolean;
  connectedAt: number;
  lastDone: Map<GuestCategory, number>;
  skipUntil: number;
  /** A poll round runs, or a timed-out call still holds its thread: no other call is started. */
  busy: boolean;
  /** A timed-out call that libvirt has not ended yet. */
  inFlight?: Promise<void>;
  probing: boolean;
  info: GuestInfo;
}

const PARSERS: Record<Exclude<GuestCategory, 'interfaces'>, (p: TypedParamsRecord) => GuestInfo> = {
  users: parseUsers, hostname: parseHostname, os: parseOs, timezone: parseTimezone, filesystems: parseFilesystems, disks: parseDisks,
};

export class GuestPoller extends EventEmitter<{ agent: [vmId: string, connected: boolean] }> {
  private readonly state = new Map<string, VmGuest>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly o: GuestPollerOptions) {
    super();
    this.now = o.now ?? (() => performance.now());
  }

  async start(): Promise<void> {
    await this.o.subscribe((vmId, state) => this.onAgentEvent(vmId, state === AgentState.CONNECTED));
    this.timer = setInterval(() => this.tick(), this.o.schedule.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** What VM.getStats reports about the guest: empty for a VM the agent never answered for. */
  info(vmId: string): GuestInfo {
    const g = this.state.get(vmId);
    if (!g) return {};
    return { ...g.info, ...(g.connected !== undefined ? { guestAgentConnected: g.connected } : {}) };
  }

  private vm(vmId: string): VmGuest {
    let g = this.state.get(vmId);
    if (!g) {
      g = { connectedAt: this.now(), lastDone: new Map(), skipUntil: 0, busy: false, probing: false, info: {} };
      this.state.set(vmId, g);
    }
    return g;
  }

  private onAgentEvent(vmId: string, connected: boolean): void {
    const g = this.vm(vmId);
    const was = g.connected;
    g.connected = connected;
    if (connected) {
      // A (re)connected agent: a new boot or a restarted qemu-ga; ask everything again soon.
      g.connectedAt = this.now();
      g.lastDone.clear();
      g.skipUntil = 0;
    }
    this.o.log.info('guest agent', { vm: vmId, connected });
    if (was !== connected) this.emit('agent', vmId, connected);
    if (connected) void this.poll(vmId, g);
  }

  /** @internal One poll round over every VM (the interval's work; tests call it directly). */
  tick(): void {
    const seen = new Set<string>();
    for (const vm of this.o.vms()) {
      seen.add(vm.id);
      if (!vm.running || !vm.hasGuestAgent) continue;
      const g = this.vm(vm.id);
      if (g.connected === undefined) { void this.probe(vm.id, g); continue; }
      void this.poll(vm.id, g);
    }
    // A VM that is gone takes its guest's data with it.
    for (const id of this.state.keys()) if (!seen.has(id)) this.state.delete(id);
  }

  /** A VM found running (e.g. after an agent restart): its channel state is in the live XML. */
  private async probe(vmId: string, g: VmGuest): Promise<void> {
    if (g.probing) return;
    g.probing = true;
    try {
      const state = agentChannelState(await (await this.o.domain(vmId)).xml());
      if (g.connected === undefined && state !== undefined) {
        g.connected = state === 'connected';
        if (g.connected) await this.poll(vmId, g);
      }
    } catch (e) {
      this.o.log.debug('guest agent channel state unknown', { vm: vmId, err: e });
    } finally {
      g.probing = false;
    }
  }

  private async poll(vmId: string, g: VmGuest): Promise<void> {
    const now = this.now();
    if (!g.connected || g.busy || now < g.skipUntil) return;
    const due = dueCategories(now, g.connectedAt, g.lastDone, this.o.schedule);
    if (due.length === 0) return;
    g.busy = true;
    try {
      const dom = await this.o.domain(vmId);
      for (const c of due) {
        if (!g.connected) break;
        const got = await this.ask(dom, c, g);
        if (got === undefined) return;
        Object.assign(g.info, got);
        g.lastDone.set(c, this.now());
      }
    } catch (e) {
      g.skipUntil = this.now() + this.o.throttleMs;
      this.o.log.debug('guest agent poll failed', { vm: vmId, err: e });
    } finally {
      if (!g.inFlight) g.busy = false;
    }
  }

  /** One category; undefined after a failure or timeout (the VM is then skipped for throttleMs). */
  private async ask(dom: GuestDomain, c: GuestCategory, g: VmGuest): Promise<GuestInfo | undefined> {
    // No timeout of the binding's own: the call is raced here, so the real promise tells when the thread is free.
    const call: Promise<GuestInfo> = c === 'interfaces'
      ? dom.interfaceAddresses(DomainInterfaceAddressesSource.AGENT, { timeoutMs: 0 }).then(fromInterfaceAddresses)
      : dom.guestInfo(GUEST_INFO_BIT[c], { timeoutMs: 0 }).then(PARSERS[c]);
    try {
      return await withTimeout(`guest ${c}`, call, this.o.callTimeoutMs);
    } catch (e) {
      if (e instanceof LibvirtTimeoutError) {
        // Still running in libvirt: the VM stays busy until it ends, whatever it answers.
        g.inFlight = call.then(() => {}, () => {}).finally(() => { g.inFlight = undefined; g.busy = false; });
      }
      g.skipUntil = this.now() + this.o.throttleMs;
      this.o.log.debug('guest agent call failed', { category: c, err: e });
      return undefined;
    }
  }
}
