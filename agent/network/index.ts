// Host networking service: what the Host.* verbs call.
//   setupNetworks   canonicalize + validate → (before_network_setup rewrite → re-validate) → transaction → running config
//   confirmConnectivity / any engine request → connectivity.touch()
//   setSafeNetworkConfig → store.setSafe()
//   netConfigDirty  → store.isDirty()
//   getNetworkCapabilities → capabilities()
// setupNetworks is single-flight: a second call while one runs gets UnavailableError (40).
import { UnavailableError } from '../api/errors.js';
import { silentLogger, type Logger } from '../log.js';
import { canonicalize, type CanonicalRequest, type HostLink } from './canonicalize.js';
import { networkCapabilities, type NetworkCapabilities } from './caps.js';
import { ConnectivityWatch } from './connectivity.js';
import { UdhcpcClient, type DhcpClient } from './dhcp.js';
import { Ip, linkKind } from './ip.js';
import { NetConfStore, restoreNetworks, type RestoreReport } from './persist.js';
import { runTransaction, type TransactionResult } from './rollback.js';

export { SetupNetworksParams, NetConfig, NETWORK_DEFAULTS } from './model.js';
export type { NetConfigT, SetupNetworksRequest } from './model.js';
export { ConnectivityWatch } from './connectivity.js';

/** Tunables, with defaults and reasons (the lead moves them to agent/config/settings.ts). */
export const NETWORK_SETTINGS = {
  confDir: { default: '/var/lib/hostvisor/netconf', why: 'Like /var/lib/vdsm/persistence/netconf: running.json and safe.json, written atomically.' },
  runDir: { default: '/run/hostvisor/network', why: 'DHCP client pid, lease and log files; tmpfs, so a reboot forgets clients that no longer run.' },
  ipTimeoutMs: { default: 10_000, why: 'One ip command normally takes milliseconds; a hung one (a wedged driver) must not hang setupNetworks.' },
  dhcpTimeoutMs: { default: 30_000, why: 'Long enough for a few DISCOVERs to a server that ping-checks addresses first; a network without a lease then fails and rolls back.' },
  dhcpClient: { default: 'busybox', why: "busybox's udhcpc: on every Debian host (busybox-static), unlike dhclient (deprecated) or dhcpcd." },
  rollbackAttempts: { default: 2, why: 'A second convergence pass fixes what the kernel changed under the first (routes dropped with addresses); more would hide a real problem.' },
} as const;

export interface HostNetworksOptions {
  ip?: Ip;
  dhcp?: DhcpClient;
  store?: NetConfStore;
  connectivity?: ConnectivityWatch;
  log?: Logger;
  dhcpTimeoutMs?: number;
  rollbackAttempts?: number;
  resolvConf?: string;
  probeAfterRollback?: () => Promise<boolean>;
}

export interface SetupNetworksResult extends TransactionResult {
  request: Omit<CanonicalRequest, 'desired'>;
}

export class HostNetworks {
  readonly ip: Ip;
  readonly dhcp: DhcpClient;
  readonly store: NetConfStore;
  readonly connectivity: ConnectivityWatch;
  private readonly log: Logger;
  private busy = false;

  constructor(private readonly opts: HostNetworksOptions = {}) {
    this.log = opts.log ?? silentLogger;
    this.ip = opts.ip ?? new Ip({ timeoutMs: NETWORK_SETTINGS.ipTimeoutMs.default, log: this.log });
    this.dhcp = opts.dhcp ?? new UdhcpcClient({ runDir: NETWORK_SETTINGS.runDir.default, log: this.log });
    this.store = opts.store ?? new NetConfStore(NETWORK_SETTINGS.confDir.default);
    this.connectivity = opts.connectivity ?? new ConnectivityWatch();
  }

  async hostLinks(): Promise<HostLink[]> {
    return (await this.ip.links()).map((l) => ({ name: l.ifname, kind: linkKind(l), ...(l.master ? { master: l.master } : {}) }));
  }

  /** Validates without applying (also what setupNetworks does first). */
  async validate(params: unknown): Promise<CanonicalRequest> {
    return canonicalize(params, await this.store.running(), await this.hostLinks());
  }

  /**
   * beforeApply is the before_network_setup hook: it may return a rewritten
   * request, which is validated again.
   */
  async setupNetworks(params: unknown, hooks: { beforeApply?: (req: unknown) => Promise<unknown> } = {}): Promise<SetupNetworksResult> {
    if (this.busy) throw new UnavailableError('setupNetworks is already running', { data: { reason: 'setupNetworks in progress' } });
    this.busy = true;
    try {
      let req = await this.validate(params);
      if (hooks.beforeApply) req = await this.validate(await hooks.beforeApply(params));
      const running = await this.store.running();
      const result = await runTransaction(running, req.desired, req.options, {
        ip: this.ip, dhcp: this.dhcp, log: this.log,
        dhcpTimeoutMs: this.opts.dhcpTimeoutMs ?? NETWORK_SETTINGS.dhcpTimeoutMs.default,
        rollbackAttempts: this.opts.rollbackAttempts ?? NETWORK_SETTINGS.rollbackAttempts.default,
        waitForConfirmation: (ms) => this.connectivity.waitForConfirmation(ms),
        ...(this.opts.resolvConf ? { resolvConf: this.opts.resolvConf } : {}),
        ...(this.opts.probeAfterRollback ? { probeAfterRollback: this.opts.probeAfterRollback } : {}),
      });
      await this.store.writeRunning(req.desired);
      if (req.options.commitOnSuccess) await this.store.setSafe();
      const { desired: _d, ...summary } = req;
      return { ...result, request: summary };
    } finally {
      this.busy = false;
    }
  }

  get running(): boolean {
    return this.busy;
  }

  setSafeNetworkConfig(): Promise<void> {
    return this.store.setSafe();
  }

  netConfigDirty(): Promise<boolean> {
    return this.store.isDirty();
  }

  /** getNetworkCapabilities (also folded into getCapabilities). */
  async capabilities(): Promise<NetworkCapabilities> {
    return networkCapabilities(this.ip, this.dhcp, await this.store.running(), await this.store.isDirty());
  }

  restoreNetworks(markerPath?: string): Promise<RestoreReport> {
    return restoreNetworks(this.store, {
      ip: this.ip, dhcp: this.dhcp, log: this.log,
      dhcpTimeoutMs: this.opts.dhcpTimeoutMs ?? NETWORK_SETTINGS.dhcpTimeoutMs.default,
      ...(this.opts.resolvConf ? { resolvConf: this.opts.resolvConf } : {}),
      ...(markerPath ? { markerPath } : {}),
    });
  }
}
