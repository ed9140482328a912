// The setupNetworks transaction: snapshot, apply, wait for confirmation,
// record the result (running.json), and on any failure roll back to the
// snapshot and VERIFY the rollback. The rollback has its own deadline; a
// stopping agent aborts the wait (and any further apply step) so the
// rollback runs before it exits.
//
// What kubernetes-nmstate taught (peers.md #23):
// - #482: post-rollback probes were skipped because the rollback returned
//   early on an error. Here rollbackTo() never throws: every path ends in a
//   fresh capture and a diff against the snapshot, and the optional probe runs
//   whenever a rollback ran.
// - #960: a probe that failed during rollback was reported as success. Here
//   the outcome is never inferred: `verified` is `diff.length === 0` on a
//   capture taken after the rollback, and a rollback that is not verified
//   raises NetworkRollbackError carrying the remaining diff and the original
//   failure. Step errors, impossible restores and a failed probe are listed.
// - #474: status was computed while the node was still settling. Here the
//   caller gets an answer only after the rollback and its verification are
//   complete; both outcomes (why it failed, what the rollback achieved) are in
//   one error's data.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, PhaseTimer } from '../log.js';
import { applyConfig, describeStep, devicesOf, dhcpView, GONE_RE, resolvConfPath, type ApplyDeps, type ApplyReport, type Step } from './apply.js';
import { planLinksAndAddrs, planRoutes } from './converge.js';
import { abortReason } from './connectivity.js';
import { NetworkCommandError, NetworkLostConnectionError, NetworkRollbackError, NetworkSetupError } from './errors.js';
import type { NetConfigT, SetupOptionsCanonical } from './model.js';
import { captureState, diff, formatDiff, type Snapshot } from './state.js';
import { topology } from './topology.js';

export interface TransactionDeps extends ApplyDeps {
  /** Resolves true once the engine confirms it still reaches the host, false at the timeout. */
  waitForConfirmation(timeoutMs: number): Promise<boolean>;
  /** Optional check after a rollback (e.g. the gateway answers); a false is reported, never hidden. */
  probeAfterRollback?: () => Promise<boolean>;
  /** Convergence passes before giving up (default 2). */
  rollbackAttempts?: number;
  /**
   * The rollback starts no pass, command or DHCP wait after this long (its
   * DHCP waits get what is left); what is then still different is reported
   * as not verified. Default ROLLBACK_TIMEOUT_MS.
   */
  rollbackTimeoutMs?: number;
  /**
   * Records the committed change (running config, and the safe one with
   * commitOnSuccess). If it throws, the change is rolled back like any other
   * failure (reason persistFailed): a host running a config its record does
   * not know is the lie this prevents.
   */
  persist?: () => Promise<void>;
}

/** rollbackTimeoutMs when none is given (the agent passes network.rollbackTimeoutMs). */
export const ROLLBACK_TIMEOUT_MS = 20_000;

/**
 * The longest a transaction can still run once its signal is aborted: the
 * step in flight (an ip command; a DHCP wait ends at the abort), then the
 * rollback, which may overrun its deadline by the command in flight.
 */
export function settleBoundMs(ipTimeoutMs: number, rollbackTimeoutMs: number): number {
  return ipTimeoutMs + rollbackTimeoutMs + ipTimeoutMs;
}

export interface RollbackReport {
  /** diff(snapshot, after) is empty. */
  verified: boolean;
  /** What still differs from the snapshot ("path: before → after"). */
  diff: string[];
  steps: string[];
  errors: string[];
  impossible: string[];
  attempts: number;
  /** probeAfterRollback's answer, if one was given. */
  probe?: boolean;
  ms: number;
}

export interface TransactionResult {
  apply: ApplyReport;
  /** null when connectivityCheck was off. */
  confirmed: boolean | null;
  phasesMs: Record<string, number>;
}

export type FailureReason = 'applyFailed' | 'connectivityLost' | 'persistFailed';

/** Runs FROM → TO as a transaction. Throws NetworkSetupError / NetworkLostConnectionError (rolled back, verified) or NetworkRollbackError. */
export async function runTransaction(from: NetConfigT, to: NetConfigT, options: SetupOptionsCanonical, deps: TransactionDeps): Promise<TransactionResult> {
  const log = deps.log ?? silentLogger;
  const timer = new PhaseTimer();
  const devices = devicesOf(from, to);
  const before = await captureState(deps.ip, devices);
  const resolvPath = resolvConfPath(deps.ip, deps.resolvConf);
  const resolvBefore = await readFile(resolvPath, 'utf8').catch(() => undefined);
  timer.mark('snapshot');

  let failure: { reason: FailureReason; error?: unknown } | undefined;
  let apply: ApplyReport | undefined;
  let confirmed: boolean | null = null;
  try {
    apply = await applyConfig(from, to, deps);
  } catch (e) {
    failure = { reason: 'applyFailed', error: e };
  }
  timer.mark('apply');
  if (!failure && options.connectivityCheck) {
    confirmed = await boundedWait(deps, options.connectivityTimeoutMs);
    timer.mark('confirm');
    if (!confirmed) failure = { reason: 'connectivityLost' };
  }
  if (!failure && apply && deps.persist) {
    try {
      await deps.persist();
    } catch (e) {
      failure = { reason: 'persistFailed', error: e };
    }
    timer.mark('persist');
  }
  if (!failure && apply) {
    log.info('setupNetworks committed', { confirmed, ...timer.fields() });
    return { apply, confirmed, phasesMs: timer.phases };
  }

  const stopping = abortReason(deps.signal);
  const message = (e: unknown) => (e as Error)?.message ?? String(e);
  const why = failure!.reason === 'connectivityLost'
    ? (stopping !== undefined ? `not confirmed: ${stopping} (connectivityTimeout ${options.connectivityTimeoutMs} ms)` : `no connectivity confirmation within ${options.connectivityTimeoutMs} ms`)
    : failure!.reason === 'persistFailed' ? `applied, but recording it failed: ${message(failure!.error)}`
      : `apply failed: ${message(failure!.error)}`;
  log.warn('setupNetworks failed; rolling back', { reason: failure!.reason, why });
  const rollback = await rollbackTo(before, from, deps, { attempted: to, resolvPath, resolvBefore });
  timer.mark('rollback');
  const data = { reason: failure!.reason, rollback, phasesMs: timer.phases };
  const cause = failure!.error;
  if (!rollback.verified) {
    log.error('network rollback NOT verified', { reason: failure!.reason, diff: rollback.diff, errors: rollback.errors, ...timer.fields() });
    throw new NetworkRollbackError(`${why}; the rollback could not be verified: ${[...rollback.diff, ...rollback.impossible].slice(0, 5).join('; ')}`, { cause, data });
  }
  const probeNote = rollback.probe === false ? ' (but the post-rollback probe failed)' : '';
  log.warn('network rollback verified', { reason: failure!.reason, probe: rollback.probe, ...timer.fields() });
  if (failure!.reason === 'connectivityLost') throw new NetworkLostConnectionError(`${why}; rolled back and verified${probeNote}`, { data });
  throw new NetworkSetupError(`${why}; rolled back and verified${probeNote}`, { cause, data });
}

/** The injected wait, bounded even if it never settles. */
async function boundedWait(deps: TransactionDeps, timeoutMs: number): Promise<boolean> {
  const ac = new AbortController();
  try {
    return await Promise.race([
      deps.waitForConfirmation(timeoutMs).catch(() => false),
      sleep(timeoutMs + 1000, false, { signal: ac.signal }).catch(() => false),
    ]);
  } finally {
    ac.abort();
  }
}

/**
 * Converges the host back to BEFORE (the snapshot taken before the change),
 * stops the DHCP clients the attempted config started, restarts those of
 * CONFIG (the config that was running), restores resolv.conf, then captures
 * again and compares. Never throws.
 */
export async function rollbackTo(before: Snapshot, config: NetConfigT, deps: TransactionDeps,
  extra: { attempted?: NetConfigT; resolvPath?: string; resolvBefore?: string | undefined } = {}): Promise<RollbackReport> {
  const { resolvPath, resolvBefore } = extra;
  const log = deps.log ?? silentLogger;
  const t0 = performance.now();
  const report: RollbackReport = { verified: false, diff: [], steps: [], errors: [], impossible: [], attempts: 0, ms: 0 };
  const budgetMs = deps.rollbackTimeoutMs ?? ROLLBACK_TIMEOUT_MS;
  const leftMs = () => budgetMs - (performance.now() - t0);
  let outOfTime = false;
  const late = (what: string): boolean => {
    if (leftMs() > 0) return false;
    if (!outOfTime) report.errors.push(`rollback deadline (${budgetMs} ms) passed: ${what} and what follows not run`);
    outOfTime = true;
    return true;
  };
  const run = async (steps: Step[]) => {
    for (const s of steps) {
      if (late(describeStep(s))) return;
      report.steps.push(describeStep(s));
      try {
        if (s.op === 'ip') await deps.ip.run(s.args);
      } catch (e) {
        if (s.op === 'ip' && s.ignoreMissing && e instanceof NetworkCommandError && GONE_RE.test(e.stderr)) continue;
        report.errors.push(`${describeStep(s)}: ${(e as Error).message}`);
      }
    }
  };
  const attempts = Math.max(1, deps.rollbackAttempts ?? 2);
  const t = topology(config);
  const wantDhcp = new Map(Object.entries(config.networks).filter(([, n]) => n.ipv4.bootproto === 'dhcp').map(([name, n]) => [t.ipDev[name]!, n.defaultRoute]));
  for (let i = 1; i <= attempts; i++) {
    if (i > 1 && late(`pass ${i}`)) break;
    report.attempts = i;
    try {
      // DHCP clients the failed change started (or reconfigured) go first.
      for (const [dev, r] of await dhcpView(deps, extra.attempted ? [config, extra.attempted] : [config])) {
        if (wantDhcp.get(dev) !== r.defaultRoute) { report.steps.push(`dhcp stop on ${dev}`); await deps.dhcp.stop(deps.ip, dev); }
      }
      const p = planLinksAndAddrs(before, await captureState(deps.ip, before.devices));
      report.impossible = p.impossible;
      await run(p.steps);
      await run(planRoutes(before, await captureState(deps.ip, before.devices)));
      for (const [dev, defaultRoute] of wantDhcp) {
        if (await deps.dhcp.running(deps.ip, dev)) continue;
        if (late(`dhcp start on ${dev}`)) break;
        report.steps.push(`dhcp start on ${dev}`);
        try {
          await deps.dhcp.start(deps.ip, dev, { defaultRoute, timeoutMs: Math.min(deps.dhcpTimeoutMs, Math.max(1, Math.round(leftMs()))) });
        } catch (e) {
          report.errors.push(`dhcp start on ${dev}: ${(e as Error).message}`);
        }
      }
      if (resolvPath !== undefined) {
        const now = await readFile(resolvPath, 'utf8').catch(() => undefined);
        if (now !== resolvBefore) {
          report.steps.push(`restore ${resolvPath}`);
          if (resolvBefore === undefined) await rm(resolvPath, { force: true });
          else await writeFile(resolvPath, resolvBefore);
        }
      }
      report.diff = formatDiff(diff(before, await captureState(deps.ip, before.devices)));
    } catch (e) {
      report.errors.push(`rollback pass ${i}: ${(e as Error).message}`);
      report.diff = ['(state could not be captured)'];
    }
    report.verified = report.diff.length === 0;
    if (report.verified) break;
    log.warn('rollback pass left differences', { pass: i, diff: report.diff });
  }
  if (deps.probeAfterRollback) {
    try { report.probe = await deps.probeAfterRollback(); } catch { report.probe = false; }
  }
  report.ms = Math.round(performance.now() - t0);
  return report;
}
