// Apply a change from one config to another and VERIFY the result:
// plan (plan.ts), run the steps in order (ip commands, /proc/sys writes, the
// DHCP client, resolv.conf), capture the state again and compare it with the
// desired config (verify.ts). A failed step raises NetworkSetupError naming
// the step and the steps already done; a mismatch raises NetworkVerifyError.
// Rolling back is the caller's job (rollback.ts).
import { writeFile, rename, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { silentLogger, type Logger, PhaseTimer } from '../log.js';
import { abortReason } from './connectivity.js';
import type { DhcpClient, DhcpLease } from './dhcp.js';
import { NetworkCommandError, NetworkSetupError, NetworkVerifyError } from './errors.js';
import type { Ip } from './ip.js';
import type { NetConfigT } from './model.js';
import { planChanges, type Step } from './plan.js';
import { captureState } from './state.js';
import { topology } from './topology.js';
import { verifyConfig } from './verify.js';

export { planChanges, type Step, type DhcpView } from './plan.js';
export { verifyConfig, wantedAddrs } from './verify.js';

export interface ApplyDeps {
  ip: Ip;
  dhcp: DhcpClient;
  log?: Logger;
  dhcpTimeoutMs: number;
  /** Where nameservers go; default /etc/resolv.conf, or /etc/netns/NS/resolv.conf in a namespace. */
  resolvConf?: string;
  /** Aborted when the agent stops: apply runs no further step (and a DHCP wait ends), so the caller rolls back now. */
  signal?: AbortSignal;
}

export interface ApplyReport {
  steps: Step[];
  leases: Record<string, DhcpLease>;
  phasesMs: Record<string, number>;
}

export function resolvConfPath(ip: Ip, override?: string): string {
  return override ?? (ip.netns ? `/etc/netns/${ip.netns}/resolv.conf` : '/etc/resolv.conf');
}

/** Writes resolv.conf atomically. */
export async function writeResolvConf(path: string, nameservers: readonly string[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.hostvisor-tmp`;
  await writeFile(tmp, `# written by hostvisor (defaultRoute network nameservers)\n${nameservers.map((s) => `nameserver ${s}`).join('\n')}\n`);
  await rename(tmp, path);
}

/** The devices whose state a change from FROM to TO touches. */
export function devicesOf(...cfgs: NetConfigT[]): string[] {
  return [...new Set(cfgs.flatMap((c) => [...topology(c).devices.keys()]))].sort();
}

export async function dhcpView(deps: ApplyDeps, cfgs: NetConfigT[]): Promise<Map<string, { defaultRoute: boolean }>> {
  const view = new Map<string, { defaultRoute: boolean }>();
  for (const c of cfgs) {
    const t = topology(c);
    for (const n of Object.keys(c.networks)) {
      const r = await deps.dhcp.running(deps.ip, t.ipDev[n]!);
      if (r) view.set(t.ipDev[n]!, { defaultRoute: r.defaultRoute });
    }
  }
  return view;
}

/** Plans, runs and verifies FROM → TO. Throws NetworkSetupError (a step failed) or NetworkVerifyError. */
export async function applyConfig(from: NetConfigT, to: NetConfigT, deps: ApplyDeps): Promise<ApplyReport> {
  const log = deps.log ?? silentLogger;
  const timer = new PhaseTimer();
  const devices = devicesOf(from, to);
  const live = await captureState(deps.ip, devices);
  const running = await dhcpView(deps, [from, to]);
  const steps = planChanges(from, to, live, running);
  timer.mark('plan');
  const leases: Record<string, DhcpLease> = {};
  for (const [i, s] of steps.entries()) {
    const stopping = abortReason(deps.signal);
    if (stopping !== undefined) {
      throw new NetworkSetupError(`step ${i + 1}/${steps.length} (${describeStep(s)}) not run: ${stopping}`, {
        data: { failedStep: describeStep(s), stepsDone: steps.slice(0, i).map(describeStep) },
      });
    }
    try {
      await runStep(s, deps, leases);
    } catch (e) {
      log.warn('network step failed', { step: s, index: i, err: e });
      throw new NetworkSetupError(`step ${i + 1}/${steps.length} failed (${describeStep(s)}): ${(e as Error).message}`, {
        cause: e, data: { failedStep: describeStep(s), stepsDone: steps.slice(0, i).map(describeStep) },
      });
    }
  }
  timer.mark('apply');
  for (const [n, net] of Object.entries(to.networks)) {
    const dev = topology(to).ipDev[n]!;
    if (net.ipv4.bootproto === 'dhcp' && !leases[dev]) {
      const l = await deps.dhcp.lease(deps.ip, dev);
      if (l) leases[dev] = l;
    }
  }
  const after = await captureState(deps.ip, devices);
  const mismatches = verifyConfig(from, to, after, new Map(Object.entries(leases)));
  timer.mark('verify');
  log.info('network config applied', { steps: steps.length, verified: mismatches.length === 0, ...timer.fields() });
  if (mismatches.length) throw new NetworkVerifyError(mismatches);
  return { steps, leases, phasesMs: timer.phases };
}

/** What iproute2 says when the thing to delete is already gone. */
export const GONE_RE = /No such process|Cannot assign requested address|Cannot find device|No such device|does not exist/;

async function runStep(s: Step, deps: ApplyDeps, leases: Record<string, DhcpLease>): Promise<void> {
  switch (s.op) {
    case 'ip':
      try {
        await deps.ip.run(s.args);
      } catch (e) {
        if (!(s.ignoreMissing && e instanceof NetworkCommandError && GONE_RE.test(e.stderr))) throw e;
      }
      return;
    // Written from inside the namespace: /proc/sys/net is per network namespace.
    // A host without IPv6 has no such file: nothing to set.
    case 'sysctl': return deps.ip.exec(['/bin/sh', '-c', '[ -e "$2" ] || exit 0; echo "$1" > "$2"', 'sh', s.value, s.path]);
    case 'dhcp-stop': return deps.dhcp.stop(deps.ip, s.dev);
    case 'dhcp-start': {
      leases[s.dev] = await deps.dhcp.start(deps.ip, s.dev, { defaultRoute: s.defaultRoute, timeoutMs: deps.dhcpTimeoutMs, signal: deps.signal });
      return;
    }
    case 'resolv': return writeResolvConf(resolvConfPath(deps.ip, deps.resolvConf), s.nameservers);
  }
}

export function describeStep(s: Step): string {
  switch (s.op) {
    case 'ip': return `ip ${s.args.join(' ')}`;
    case 'sysctl': return `${s.path} = ${s.value}`;
    case 'dhcp-start': return `dhcp start on ${s.dev}${s.defaultRoute ? ' (default route)' : ''}`;
    case 'dhcp-stop': return `dhcp stop on ${s.dev}`;
    case 'resolv': return `resolv.conf: ${s.nameservers.join(' ')}`;
  }
}
