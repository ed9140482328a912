// iproute2 access: reads with `ip -j` (JSON), changes with plain `ip`
// commands, each with a timeout, optionally in a network namespace
// (`ip -n NS …`), so tests run everything against a throwaway namespace from
// the main process.
//
// Why `ip -j` rather than raw netlink:
// - Node cannot open an AF_NETLINK socket without a native addon; a netlink
//   library would be one more native build to maintain, for a handful of calls
//   per setupNetworks.
// - iproute2 is on every Linux host, it is the kernel's reference netlink
//   client, and its JSON output is a stable interface (scripts and
//   NetworkManager's own tests rely on it).
// - Every change is an argv that is logged, can be replayed by an operator by
//   hand, and is unit-tested as a command line. That is how the VLAN and bond
//   paths are tested on kernels that lack those drivers.
// - `ip -n NS` scopes a command to a namespace without setns() in our process
//   (setns would move the whole thread, libuv's pool included).
// The cost is a fork per command (a few ms); setupNetworks issues tens of them.
import { silentLogger, type Logger } from '../log.js';
import { runCommand, type Runner } from './exec.js';
import { NetworkCommandError } from './errors.js';

export interface IpLinkInfo {
  info_kind?: string;
  info_data?: Record<string, unknown>;
  info_slave_kind?: string;
}

export interface IpLinkJson {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  master?: string;
  operstate?: string;
  /** The lower device (veth peer, vlan base). */
  link?: string;
  address?: string;
  link_type?: string;
  linkinfo?: IpLinkInfo;
}

export interface IpAddrInfo {
  family: 'inet' | 'inet6' | string;
  local: string;
  prefixlen: number;
  scope?: string;
  dynamic?: boolean;
  tentative?: boolean;
  valid_life_time?: number;
}

export interface IpAddrJson {
  ifname: string;
  addr_info: IpAddrInfo[];
}

export interface IpRouteJson {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  flags?: string[];
  family?: 4 | 6;
}

export interface IpOptions {
  /** A network namespace name (as in /run/netns); undefined = the agent's own. */
  netns?: string;
  /** One ip command's timeout. */
  timeoutMs?: number;
  log?: Logger;
  runner?: Runner;
}

export const IP_TIMEOUT_MS = 10_000;

export class Ip {
  readonly netns: string | undefined;
  readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly runner: Runner;

  constructor(opts: IpOptions = {}) {
    this.netns = opts.netns;
    this.timeoutMs = opts.timeoutMs ?? IP_TIMEOUT_MS;
    this.log = opts.log ?? silentLogger;
    this.runner = opts.runner ?? runCommand;
  }

  /** The full argv of `ip ARGS` in this namespace. */
  argv(args: readonly string[]): string[] {
    return this.netns ? ['ip', '-n', this.netns, ...args] : ['ip', ...args];
  }

  /** argv that runs CMD inside this namespace (`ip netns exec NS CMD…`), or CMD itself. */
  execArgv(cmd: readonly string[]): string[] {
    return this.netns ? ['ip', 'netns', 'exec', this.netns, ...cmd] : [...cmd];
  }

  /** Runs a change (`ip link add …`). Throws NetworkCommandError. */
  async run(args: readonly string[]): Promise<void> {
    await this.runner(this.argv(args), { timeoutMs: this.timeoutMs, log: this.log });
  }

  /** Runs CMD inside this namespace (for what `ip` cannot do, such as /proc/sys writes). */
  async exec(cmd: readonly string[]): Promise<void> {
    await this.runner(this.execArgv(cmd), { timeoutMs: this.timeoutMs, log: this.log });
  }

  /** Runs a read with -j and parses it. */
  async json<T>(args: readonly string[]): Promise<T> {
    const argv = this.argv(['-j', ...args]);
    const r = await this.runner(argv, { timeoutMs: this.timeoutMs, log: this.log });
    const text = r.stdout.trim();
    if (text === '') return [] as unknown as T; // iproute2 prints nothing for an empty list in some versions
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new NetworkCommandError(argv, r.rc, `unparseable JSON output: ${text.slice(0, 200)}`, { cause: e });
    }
  }

  /** Every link with details (-d: kind, vlan id, bridge stp_state, bond mode). */
  links(): Promise<IpLinkJson[]> {
    return this.json<IpLinkJson[]>(['-d', 'link', 'show']);
  }

  addrs(): Promise<IpAddrJson[]> {
    return this.json<IpAddrJson[]>(['addr', 'show']);
  }

  /** Routes of the main table, both families, each tagged with `family`. */
  async routes(): Promise<IpRouteJson[]> {
    const v4 = await this.json<IpRouteJson[]>(['-4', 'route', 'show', 'table', 'main']);
    const v6 = await this.json<IpRouteJson[]>(['-6', 'route', 'show', 'table', 'main']);
    return [...v4.map((r) => ({ ...r, family: 4 as const })), ...v6.map((r) => ({ ...r, family: 6 as const }))];
  }

  /** The ports of a bridge (or the slaves of a bond): links whose master is DEV. */
  async bridgePorts(dev: string): Promise<string[]> {
    const ports = await this.json<IpLinkJson[]>(['link', 'show', 'master', dev]);
    return ports.map((p) => p.ifname).sort();
  }
}

/** The kind of a link as iproute2 reports it ('bridge', 'vlan', 'bond', 'veth'…), or '' for a physical NIC. */
export function linkKind(l: IpLinkJson): string {
  if (l.link_type === 'loopback') return 'loopback';
  return l.linkinfo?.info_kind ?? '';
}

export function isUp(l: IpLinkJson): boolean {
  return l.flags.includes('UP');
}
