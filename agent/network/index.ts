// Host networking service: what the Host.* network verbs call.
//   setupNetworks   canonicalize + validate → before_network_setup (may rewrite; re-validated)
//                   → transaction (apply, verify, confirm, record running.json; any failure,
//                     a failed record included, rolls back + verifies the rollback)
//                   → after_network_setup / after_network_setup_fail
//   confirmConnectivity / any engine request → connectivity.touch()
//   setSafeNetworkConfig → store.setSafe()
//   getNetworkCapabilities → capabilities() (live state, netConfigDirty, lastSetup)
// setupNetworks is single-flight: a second call while one runs gets
// UnavailableError (40). Every call that gets past that gate ends in a
// lastSetup record and a 'setup' event, so an engine that was cut off (its
// reply lost) learns after reconnecting what happened: applied, rolled back
// and verified, or a rollback that could not be verified.
import { EventEmitter } from 'node:events';
import { HookError, HostvisorError, InvalidParamsError, ShuttingDownError, UnavailableError } from '../../api/errors.js';
import { ConfigError } from '../config/load.js';
import { SETTINGS, type Config } from '../config/settings.js';
import { PhaseTimer, silentLogger, type Logger } from '../log.js';
import type { LastSetupT, RollbackReportT } from '../../api/network.js';
import { canonicalize, type CanonicalRequest, type HostLink } from './canonicalize.js';
import { networkCapabilities, type NetworkCapabilities } from './caps.js';
import { ConnectivityWatch } from './connectivity.js';
import { UdhcpcClient, type DhcpClient } from './dhcp.js';
import { NetworkLostConnectionError, NetworkRollbackError, NetworkSetupError } from './errors.js';
import { Ip, linkKind } from './ip.js';
import { NetConfStore, restoreNetworks, type RestoreReport } from './persist.js';
import { emptyConfig, sameConfig, type NetConfigT } from './model.js';
import { runTransaction, settleBoundMs, type TransactionResult } from './rollback.js';

export { SetupNetworksParams, NetConfig, NETWORK_DEFAULTS } from './model.js';
export type { NetConfigT, SetupNetworksRequest } from './model.js';
export { ConnectivityWatch } from './connectivity.js';

export interface HostNetworksOptions {
  ip?: Ip;
  dhcp?: DhcpClient;
  store?: NetConfStore;
  connectivity?: ConnectivityWatch;
  log?: Logger;
  dhcpTimeoutMs?: number;
  rollbackAttempts?: number;
  rollbackTimeoutMs?: number;
  resolvConf?: string;
  probeAfterRollback?: () => Promise<boolean>;
}

/** The hook points around setupNetworks (network/hooks.ts binds them to the hook runner). */
export interface SetupHooks {
  /** before_network_setup: gets the request, returns it (possibly rewritten); may throw (78). */
  before?(request: unknown): Promise<unknown>;
  /** after_network_setup (ok) or after_network_setup_fail; must not throw. */
  after?(ok: boolean, request: unknown): Promise<void>;
}

export interface SetupNetworksResult extends TransactionResult {
  request: Omit<CanonicalRequest, 'desired'>;
  committed: boolean;
}

const settingDefault = <K extends keyof typeof SETTINGS>(k: K): (typeof SETTINGS)[K]['default'] => SETTINGS[k].default;

export class HostNetworks extends EventEmitter<{ setup: [LastSetupT] }> {
  readonly ip: Ip;
  readonly dhcp: DhcpClient;
  readonly store: NetConfStore;
  readonly connectivity: ConnectivityWatch;
  private readonly log: Logger;
  private inFlight: Promise<unknown> | undefined;
  private seq = 0;
  private last: LastSetupT | undefined;
  /**
   * The running config when running.json could not be put back after a
   * failed record was rolled back (it names a change the host no longer
   * runs); used instead of the file until a write succeeds.
   */
  private unrecordedRunning: NetConfigT | undefined;

  /** From the agent's settings (network.*); used by the daemon and by `hostvisor restore-networks`. */
  static fromConfig(c: Pick<Config, Extract<keyof Config, `network.${string}`>>, log: Logger = silentLogger): HostNetworks {
    if (c['network.dhcpClient'] !== 'busybox') throw new ConfigError(`network.dhcpClient: only "busybox" (udhcpc) is supported, got "${c['network.dhcpClient']}"`);
    const ip = new Ip({ timeoutMs: c['network.ipTimeoutMs'], log });
    return new HostNetworks({
      ip, log,
      dhcp: new UdhcpcClient({ runDir: c['network.runDir'], log }),
      store: new NetConfStore(c['network.confDir']),
      dhcpTimeoutMs: c['network.dhcpTimeoutMs'],
      rollbackAttempts: c['network.rollbackAttempts'],
      rollbackTimeoutMs: c['network.rollbackTimeoutMs'],
      resolvConf: c['network.resolvConf'],
    });
  }

  constructor(private readonly opts: HostNetworksOptions = {}) {
    super();
    this.log = opts.log ?? silentLogger;
    this.ip = opts.ip ?? new Ip({ timeoutMs: settingDefault('network.ipTimeoutMs'), log: this.log });
    this.dhcp = opts.dhcp ?? new UdhcpcClient({ runDir: settingDefault('network.runDir'), log: this.log });
    this.store = opts.store ?? new NetConfStore(settingDefault('network.confDir'));
    this.connectivity = opts.connectivity ?? new ConnectivityWatch();
  }

  async hostLinks(): Promise<HostLink[]> {
    return (await this.ip.links()).map((l) => ({ name: l.ifname, kind: linkKind(l), ...(l.master ? { master: l.master } : {}) }));
  }

  /** The config the host runs: running.json, unless it could not be corrected (see unrecordedRunning). */
  async runningConfig(): Promise<NetConfigT> {
    return this.unrecordedRunning ?? this.store.running();
  }

  /** Validates without applying (also what setupNetworks does first). */
  async validate(params: unknown): Promise<CanonicalRequest> {
    return canonicalize(params, await this.runningConfig(), await this.hostLinks());
  }

  /** Runs one setupNetworks; throws 40 at once if one is already running. */
  setupNetworks(params: unknown, hooks: SetupHooks = {}): Promise<SetupNetworksResult> {
    if (this.inFlight) return Promise.reject(new UnavailableError('setupNetworks is already running', { data: { reason: 'setupNetworks in progress' } }));
    const p = this.runSetup(params, hooks);
    this.inFlight = p.finally(() => { this.inFlight = undefined; }).catch(() => undefined);
    return p;
  }

  private async runSetup(params: unknown, hooks: SetupHooks): Promise<SetupNetworksResult> {
    const startedAt = new Date().toISOString();
    const seq = ++this.seq;
    const timer = new PhaseTimer();
    let request = params;
    let summary: Omit<CanonicalRequest, 'desired'> | undefined;
    try {
      let req = await this.validate(params);
      timer.mark('validate');
      if (hooks.before) {
        request = await hooks.before(params);
        try {
          req = await this.validate(request);
        } catch (e) {
          if (!(e instanceof InvalidParamsError)) throw e;
          throw new HookError(`before_network_setup left an invalid request: ${e.message}`, { cause: e, data: e.data });
        }
        timer.mark('hooks');
      }
      const { desired, ...rest } = req;
      summary = rest;
      // A stopping agent starts no change (one already applying is rolled back: see ConnectivityWatch.abort).
      if (this.connectivity.signal.aborted) throw new ShuttingDownError({ data: { reason: 'the agent is stopping' } });
      const running = await this.runningConfig();
      let tx: TransactionResult;
      try {
        tx = await runTransaction(running, desired, req.options, {
          ip: this.ip, dhcp: this.dhcp, log: this.log,
          dhcpTimeoutMs: this.opts.dhcpTimeoutMs ?? settingDefault('network.dhcpTimeoutMs'),
          rollbackAttempts: this.opts.rollbackAttempts ?? settingDefault('network.rollbackAttempts'),
          rollbackTimeoutMs: this.rollbackTimeoutMs,
          waitForConfirmation: (ms) => this.connectivity.waitForConfirmation(ms),
          signal: this.connectivity.signal,
          persist: async () => {
            await this.store.writeRunning(desired);
            this.unrecordedRunning = undefined;
            if (req.options.commitOnSuccess) await this.store.setSafe();
          },
          ...(this.opts.resolvConf ? { resolvConf: this.opts.resolvConf } : {}),
          ...(this.opts.probeAfterRollback ? { probeAfterRollback: this.opts.probeAfterRollback } : {}),
        });
      } catch (e) {
        if (e instanceof HostvisorError && e.data?.['reason'] === 'persistFailed') await this.recordRunning(running, e);
        throw e;
      }
      Object.assign(timer.phases, tx.phasesMs);
      const result: SetupNetworksResult = { ...tx, phasesMs: timer.phases, request: rest, committed: req.options.commitOnSuccess };
      this.record({
        seq, startedAt, finishedAt: new Date().toISOString(), outcome: 'applied', confirmed: tx.confirmed,
        networks: rest.networks, bondings: rest.bondings, phasesMs: timer.phases,
      });
      this.log.info('setupNetworks applied', { seq, networks: rest.networks, bondings: rest.bondings, confirmed: tx.confirmed, ...timer.fields() });
      await hooks.after?.(true, request);
      return result;
    } catch (e) {
      const data = e instanceof HostvisorError ? e.data : undefined;
      const rollback = data?.['rollback'] as RollbackReportT | undefined;
      // The transaction's own phases (snapshot, apply, confirm, rollback) after ours.
      if (data && data['phasesMs']) data['phasesMs'] = { ...timer.phases, ...(data['phasesMs'] as Record<string, number>) };
      else timer.mark('failed');
      const outcome: LastSetupT['outcome'] = e instanceof NetworkRollbackError ? 'rollbackUnverified'
        : (e instanceof NetworkLostConnectionError || e instanceof NetworkSetupError) && rollback ? 'rolledBack' : 'refused';
      const reason = data?.['reason'];
      this.record({
        seq, startedAt, finishedAt: new Date().toISOString(), outcome,
        ...(e instanceof HostvisorError ? { code: e.code } : {}),
        message: (e as Error)?.message ?? String(e),
        ...(reason === 'applyFailed' || reason === 'connectivityLost' || reason === 'persistFailed' ? { reason } : {}),
        ...(rollback ? { rollback } : {}),
        ...(summary ? { networks: summary.networks, bondings: summary.bondings } : {}),
        phasesMs: (data?.['phasesMs'] as Record<string, number> | undefined) ?? timer.phases,
      });
      this.log[outcome === 'refused' ? 'info' : 'warn']('setupNetworks failed', { seq, outcome, code: (e as HostvisorError)?.code, error: (e as Error)?.message });
      await hooks.after?.(false, request);
      throw e;
    }
  }

  /**
   * After a change whose record failed was rolled back, running.json must
   * name RUNNING again (writeRunning may have succeeded before setSafe
   * failed). If it cannot be written either, the agent keeps RUNNING in
   * memory and says so in the error's message and data.
   */
  private async recordRunning(running: NetConfigT, e: HostvisorError): Promise<void> {
    const recorded = await this.store.running().catch(() => undefined);
    if (recorded && sameConfig(recorded, running)) return;
    try {
      await this.store.writeRunning(running);
      this.unrecordedRunning = undefined;
    } catch (writeError) {
      this.unrecordedRunning = running;
      const note = `running.json could not be put back (${(writeError as Error).message}); the agent keeps the running config in memory`;
      this.log.error('running config not recorded', { path: this.store.runningPath, err: writeError });
      e.message = `${e.message}; ${note}`;
      if (e.data) e.data['runningRecorded'] = false;
    }
  }

  private record(s: LastSetupT): void {
    this.last = s;
    this.emit('setup', s);
  }

  /** How the last setupNetworks ended (undefined if none ran since the agent started). */
  get lastSetup(): LastSetupT | undefined {
    return this.last;
  }

  get running(): boolean {
    return this.inFlight !== undefined;
  }

  private get rollbackTimeoutMs(): number {
    return this.opts.rollbackTimeoutMs ?? settingDefault('network.rollbackTimeoutMs');
  }

  /** How long a setupNetworks in flight can still take once connectivity.abort() was called (a stopping agent waits this long). */
  settleBoundMs(): number {
    return settleBoundMs(this.ip.timeoutMs, this.rollbackTimeoutMs);
  }

  /** Resolves once no setupNetworks runs (at most timeoutMs): a stopping agent lets a transaction finish or roll back. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (!this.inFlight) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
    try {
      return await Promise.race([this.inFlight.then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async setSafeNetworkConfig(): Promise<void> {
    if (this.unrecordedRunning) {
      await this.store.writeRunning(this.unrecordedRunning);
      this.unrecordedRunning = undefined;
    }
    await this.store.setSafe();
  }

  async netConfigDirty(): Promise<boolean> {
    if (!this.unrecordedRunning) return this.store.isDirty();
    return !sameConfig(this.unrecordedRunning, (await this.store.safe()) ?? emptyConfig());
  }

  /** getNetworkCapabilities (also folded into getCapabilities). */
  async capabilities(): Promise<NetworkCapabilities & { lastSetup?: LastSetupT }> {
    const caps = await networkCapabilities(this.ip, this.dhcp, await this.runningConfig(), await this.netConfigDirty());
    return this.last ? { ...caps, lastSetup: this.last } : caps;
  }

  restoreNetworks(markerPath?: string): Promise<RestoreReport> {
    return restoreNetworks(this.store, {
      ip: this.ip, dhcp: this.dhcp, log: this.log,
      dhcpTimeoutMs: this.opts.dhcpTimeoutMs ?? settingDefault('network.dhcpTimeoutMs'),
      ...(this.opts.resolvConf ? { resolvConf: this.opts.resolvConf } : {}),
      ...(markerPath ? { markerPath } : {}),
    });
  }
}
