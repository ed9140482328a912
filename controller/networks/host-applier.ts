// Puts one cluster network on one host, the way both the network.apply job and the reconciler
// do it: read the host's networks first (a network already there as asked is not set up again,
// so a resumed job or a second attempt does nothing twice), Host.setupNetworks with the
// connectivity check, read again to verify, then Host.setSafeNetworkConfig so the host comes
// back with it after a reboot. Calls to one host are serialized: the agent answers 40 to a
// setupNetworks while another runs, and the job and the reconciler may meet on a host.
import { setTimeout as sleep } from 'node:timers/promises';
import type { NetworkCapabilitiesT, SetupNetworksResultT } from '../../api/network.js';
import { HostvisorClientError, RpcCallError } from '../../api/client/errors.js';
import { ERRORS } from '../../api/errors.js';
import type { AgentLinks } from '../agents/agent-links.js';
import { errorFields, type LogFn } from '../agents/log-fn.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { Network } from '../model/networks.js';
import { hostSpec, mismatch, setupRequest, specKey, type HostNetworkSpec } from './desired.js';
import { ClusterNetworkView, NET_STATUS, failedStatus, type EnrolledHost } from './network-view.js';

/** How often the controller proves it still reaches a host while its setupNetworks waits for that proof. */
const CONFIRM_EVERY_MS = 500;
/** How often a host busy with another setupNetworks is looked at again. */
const BUSY_RETRY_MS = 1_000;
/** A resumed job's second look at a host, after its first request confirmed what may have waited (persisting takes milliseconds). */
const SETTLE_MS = 1_000;

/** A network the host could not get; the message is the agent's (or the link's) reason. */
export class NetworkApplyError extends Error {
  override readonly name = 'NetworkApplyError';
  readonly code = 6101;
  constructor(readonly hostId: string, readonly network: string, message: string, readonly details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export type StepRunner = <T>(name: string, fn: () => Promise<T>) => Promise<T>;
const direct: StepRunner = (_name, fn) => fn();

export interface ApplyOptions {
  correlationId: string;
  /** the job's ctx.step (each action a recorded step); the reconciler runs them directly */
  step?: StepRunner;
  /** aborted when the controller stops: the interruption is passed on, not recorded as a failure */
  signal?: AbortSignal;
  /** a previous controller ran this job: a setupNetworks it sent may still run on the host */
  resumed?: boolean;
}

export type ApplyResult =
  | { ok: true; action: 'present' | 'applied'; committed: boolean }
  | { ok: false; error: string; details: Record<string, unknown> }
  | { ok: false; notAssigned: true };

interface Attempt { key: string; at: number; ok: boolean }

export interface HostNetworkApplierOptions {
  links: AgentLinks;
  view: ClusterNetworkView;
  settings: DecisionSettings;
  log: LogFn;
  clock?: () => number;
}

export class HostNetworkApplier {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly attempts = new Map<string, Attempt>();
  private readonly clock: () => number;

  constructor(private readonly o: HostNetworkApplierOptions) {
    this.clock = o.clock ?? Date.now;
  }

  /** The host's networks, read now (and recorded in the view). */
  async readNetworks(hostId: string, correlationId: string): Promise<NetworkCapabilitiesT> {
    // A controller that just started is still connecting (a resumed job runs at once): wait for
    // it within one connect bound, as the health monitor's poll does.
    const link = this.o.links.get(hostId);
    if (link !== undefined && link.state.phase !== 'connected') await link.whenConnected(this.o.settings.agentConnectTimeoutMs);
    const startedAt = this.clock();
    const caps = await this.o.links.call(hostId, 'Host.getNetworkCapabilities', {}, { correlationId });
    this.o.view.observe(hostId, caps, startedAt);
    return caps;
  }

  /**
   * Whether an attempt on this host may be made now: never tried, or asked differently since
   * (nic map, MTU...), or the last one succeeded (the network went since: put it back), or it
   * failed longer than networkRetryIntervalMs ago.
   */
  mayTry(network: Network, hostId: string): boolean {
    const spec = hostSpec(network, hostId);
    const last = this.attempts.get(`${network.id}/${hostId}`);
    if (spec === null || last === undefined || last.ok || last.key !== specKey(spec)) return true;
    return this.clock() - last.at >= this.o.settings.networkRetryIntervalMs;
  }

  /** A new connection to the host (its agent may have restarted): its networks get a fresh try. */
  forgetAttempts(hostId: string): void {
    for (const k of this.attempts.keys()) if (k.endsWith(`/${hostId}`)) this.attempts.delete(k);
  }

  /**
   * Makes the network present on the host as asked, and records the host's status for it. Never
   * throws for a failure on the host (it is the result); only an interruption is passed on.
   */
  async ensure(host: EnrolledHost, network: Network, o: ApplyOptions): Promise<ApplyResult> {
    const { view } = this.o;
    const spec = hostSpec(network, host.id);
    if (spec === null) {
      await view.setStatus(network.id, host.id, NET_STATUS.notAssigned);
      return { ok: false, notAssigned: true };
    }
    const step = o.step ?? direct;
    return this.exclusive(host.id, async () => {
      // Waited for the host behind another attempt while the controller began to stop: send nothing.
      o.signal?.throwIfAborted();
      this.attempts.set(`${network.id}/${host.id}`, { key: specKey(spec), at: this.clock(), ok: false });
      try {
        const action = await step(`setupNetworks ${network.name} on ${host.name} (${spec.nic})`, () => this.setup(host.id, network.id, spec, o));
        const committed = await step(`setSafeNetworkConfig on ${host.name}`, () => this.commit(host.id, o.correlationId));
        await view.setStatus(network.id, host.id, NET_STATUS.up);
        this.attempts.set(`${network.id}/${host.id}`, { key: specKey(spec), at: this.clock(), ok: true });
        return { ok: true, action, committed };
      } catch (e) {
        if (o.signal?.aborted) throw e;
        // The retry interval runs from the end of the attempt.
        this.attempts.set(`${network.id}/${host.id}`, { key: specKey(spec), at: this.clock(), ok: false });
        const failure = describeFailure(e);
        this.o.log('warn', 'cluster network not set up on a host', { hostId: host.id, network: network.name, nic: spec.nic, correlationId: o.correlationId, ...errorFields(e) });
        await view.setStatus(network.id, host.id, failedStatus(failure.error));
        return { ok: false, ...failure };
      }
    });
  }

  /** setupNetworks unless the host already has the network as asked; verified by reading it again. */
  private async setup(hostId: string, networkId: string, spec: HostNetworkSpec, o: ApplyOptions): Promise<'present' | 'applied'> {
    let caps = await this.readNetworks(hostId, o.correlationId);
    if (o.resumed === true && mismatch(caps, spec) !== null) {
      // The previous controller's setupNetworks may be waiting for a confirmation, which that read
      // just gave: let it finish and record the network before deciding it is not there.
      await sleep(SETTLE_MS, undefined, { signal: o.signal });
      caps = await this.readNetworks(hostId, o.correlationId);
    }
    const diff = mismatch(caps, spec);
    if (diff === null) return 'present';
    await this.o.view.setStatus(networkId, hostId, NET_STATUS.applying);
    this.o.log('info', 'setting up a cluster network on a host', { hostId, network: spec.name, nic: spec.nic, why: diff, correlationId: o.correlationId });
    const s = this.o.settings;
    const busyUntil = this.clock() + s.networkConnectivityTimeoutMs + s.agentCallTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const seen = lastSetupKey(caps);
      try {
        await this.confirmedSetup(hostId, spec, o);
        break;
      } catch (e) {
        // 40: another setupNetworks runs on the host (one a controller that died sent): wait until
        // the host records its end (our reads confirm it if it waits for that), then look again.
        if (!(e instanceof RpcCallError && e.code === ERRORS.unavailable.code) || this.clock() > busyUntil) throw e;
        this.o.log('info', 'another setupNetworks runs on the host; waiting for it to end', { hostId, network: spec.name, attempt, correlationId: o.correlationId });
        for (let i = 0; lastSetupKey(caps) === seen && this.clock() <= busyUntil && i < 10_000; i++) {
          await sleep(BUSY_RETRY_MS, undefined, { signal: o.signal });
          caps = await this.readNetworks(hostId, o.correlationId);
        }
        // The agent takes lastSetup after the rest of an answer: the read that saw it change may
        // show the networks from before that call ended. One more read is from after.
        caps = await this.readNetworks(hostId, o.correlationId);
        if (mismatch(caps, spec) === null) return 'present';
      }
    }
    const after = await this.readNetworks(hostId, o.correlationId);
    const still = mismatch(after, spec);
    if (still !== null) throw new NetworkApplyError(hostId, spec.name, `setupNetworks answered but the network is ${still}`, { mismatch: still });
    return 'applied';
  }

  /**
   * Host.setupNetworks while proving, every CONFIRM_EVERY_MS on the same link, that the
   * controller still reaches the host (Host.confirmConnectivity; any request would do). A change
   * that cuts the link off gets no proof and the agent rolls it back after the timeout.
   */
  private async confirmedSetup(hostId: string, spec: HostNetworkSpec, o: ApplyOptions): Promise<SetupNetworksResultT> {
    const s = this.o.settings;
    const { correlationId } = o;
    const params = setupRequest(spec, s.networkConnectivityTimeoutMs);
    o.signal?.throwIfAborted();
    let done = false;
    const sent = this.o.links.call(hostId, 'Host.setupNetworks', params, {
      correlationId, timeoutMs: s.agentCallTimeoutMs + s.networkConnectivityTimeoutMs,
    });
    // A stopping controller does not wait for the answer: the job stays for the next start, which
    // reads the host first (and its first request confirms a change still waiting, which is kept).
    const call = (o.signal ? raceAbort(sent, o.signal) : sent).finally(() => { done = true; });
    const ended = call.then(() => undefined, () => undefined);
    const maxConfirms = Math.ceil((s.agentCallTimeoutMs + s.networkConnectivityTimeoutMs) / CONFIRM_EVERY_MS);
    const confirming = (async () => {
      for (let i = 0; !done && i < maxConfirms; i++) {
        await Promise.race([sleep(CONFIRM_EVERY_MS), ended]);
        if (done) return;
        await this.o.links.call(hostId, 'Host.confirmConnectivity', {}, { correlationId, timeoutMs: 4 * CONFIRM_EVERY_MS }).catch(() => undefined);
      }
    })();
    try {
      return await call;
    } finally {
      await confirming;
    }
  }

  /** Persists the running config as the one the host boots with, if it differs. */
  private async commit(hostId: string, correlationId: string): Promise<boolean> {
    const caps = await this.o.links.call(hostId, 'Host.getNetworkCapabilities', {}, { correlationId });
    if (!caps.netConfigDirty) return false;
    await this.o.links.call(hostId, 'Host.setSafeNetworkConfig', {}, { correlationId });
    return true;
  }

  private exclusive<T>(hostId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(hostId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(hostId, tail);
    void tail.then(() => { if (this.locks.get(hostId) === tail) this.locks.delete(hostId); });
    return run;
  }
}

/** Which setupNetworks the host last finished (its seq restarts with the agent, so the time too). */
function lastSetupKey(caps: NetworkCapabilitiesT): string {
  return caps.lastSetup === undefined ? '' : `${caps.lastSetup.seq}|${caps.lastSetup.finishedAt}`;
}

/** P, or the signal's reason as soon as it is aborted. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  p.catch(() => undefined); // answered after we stopped waiting: nobody to tell
  if (signal.aborted) return Promise.reject(signal.reason);
  let off: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    const on = () => reject(signal.reason);
    signal.addEventListener('abort', on, { once: true });
    off = () => signal.removeEventListener('abort', on);
  });
  return Promise.race([p, aborted]).finally(off);
}

/** The reason shown per host: the agent's message, with its code and how the rollback went. */
function describeFailure(e: unknown): { error: string; details: Record<string, unknown> } {
  if (e instanceof NetworkApplyError) return { error: e.message, details: e.details };
  if (e instanceof RpcCallError) {
    const data = (e.data ?? {}) as { reason?: string; rollback?: { verified?: boolean } };
    const rollback = data.rollback === undefined ? '' : data.rollback.verified ? '; rolled back, verified' : '; rollback NOT verified';
    return {
      error: `${e.message} (agent error ${e.code}${e.errorName ? ` ${e.errorName}` : ''}${rollback})`,
      details: { agentCode: e.code, ...(e.errorName && { agentError: e.errorName }), ...(data.reason && { reason: data.reason }), ...(data.rollback && { rollbackVerified: data.rollback.verified }) },
    };
  }
  if (e instanceof HostvisorClientError) return { error: `agent unreachable: ${e.message}`, details: { agentCode: e.code } };
  return { error: e instanceof Error ? e.message : String(e), details: {} };
}
