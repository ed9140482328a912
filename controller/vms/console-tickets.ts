// Console access: a one-time VNC password set on the VM's display through its host's agent
// (VM.setTicket), answered with where to connect. The password is never stored or logged;
// the event says who opened a console and until when.
import { randomBytes } from 'node:crypto';
import type { AgentLinks } from '../agents/agent-links.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { Store } from '../store/store.js';
import { ConflictError } from '../store/errors.js';
import type { VmRegistry } from './vm-registry.js';

export interface ConsoleTicket {
  vmId: string;
  hostId: string;
  /** where the viewer connects */
  host: string;
  port: number;
  /** the one-time VNC password (8 characters, VNC's limit) */
  password: string;
  /** ISO time after which the password no longer opens the display */
  expiresAt: string;
  /** vnc://host:port (RFC 7869), without the password */
  url: string;
}

export interface ConsoleTicketsDeps {
  store: Store;
  registry: VmRegistry;
  links: AgentLinks;
  settings: DecisionSettings;
  clock?: () => number;
}

/** statuses with a display to connect to */
const RUNNING = new Set(['Up', 'Paused', 'Powering up']);

/** VNC passwords are at most 8 bytes; 48 random bits in URL-safe base64. */
function newPassword(): string {
  return randomBytes(6).toString('base64url');
}

/** An address a viewer can reach: the display's own, or the host's when it listens on every address. */
export function viewerAddress(listen: string, hostAddress: string): string {
  return listen === '0.0.0.0' || listen === '::' || listen === '' ? hostAddress : listen;
}

export function vncUrl(host: string, port: number): string {
  return `vnc://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export class ConsoleTickets {
  private readonly clock: () => number;

  constructor(private readonly d: ConsoleTicketsDeps) {
    this.clock = d.clock ?? Date.now;
  }

  /** 409 when the VM does not run on a known host; the agent's errors (no display: 1003) pass through. */
  async open(vmId: string, ttlSeconds: number | undefined, correlationId: string): Promise<ConsoleTicket> {
    const vm = await this.d.store.vms.get(vmId);
    await this.d.registry.ready;
    const rec = this.d.registry.record(vm.id);
    const hostId = rec?.hostId ?? null;
    const status = rec?.status ?? vm.status;
    if (hostId === null || !RUNNING.has(status)) {
      throw new ConflictError(`VM ${vm.name} is ${status}${RUNNING.has(status) ? ' on no known host' : ''}: a console needs it running`, { status, hostId });
    }
    const ttl = ttlSeconds ?? Math.round(this.d.settings.consoleTicketTtlMs / 1000);
    const password = newPassword();
    const r = await this.d.links.call(hostId, 'VM.setTicket', { vmID: vm.id, password, ttl, existingConnAction: 'keep' }, { correlationId });
    const host = await this.d.store.hosts.get(hostId);
    const expiresAt = new Date(this.clock() + ttl * 1000).toISOString();
    const address = viewerAddress(r.display.listen, host.address);
    await this.d.store.event({
      kind: 'vm.console-opened', subjectKind: 'vm', subjectId: vm.id, correlationId,
      message: `console ticket for VM ${vm.name} on ${host.name}, valid until ${expiresAt}`,
      details: { hostId, port: r.display.port, expiresAt },
    });
    return { vmId: vm.id, hostId, host: address, port: r.display.port, password, expiresAt, url: vncUrl(address, r.display.port) };
  }
}
