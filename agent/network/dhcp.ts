// DHCPv4 for networks with bootproto dhcp, through busybox's udhcpc.
//
// Debian's choices: isc-dhcp-client (dhclient) is deprecated upstream,
// dhcpcd-base is not installed by default, and busybox (busybox-static) is on
// every host we target and brings udhcpc. udhcpc runs a script of ours on each
// lease event; the script applies the lease with `ip` (address with the lease
// lifetime, so a dead client's address expires instead of lingering; the
// default route only for the defaultRoute network) and records it in a lease
// file we read back.
//
// The client stays running (foreground mode, detached from the agent, in its
// own session) so it renews the lease; its pid file lets a restarted agent, or
// the next setupNetworks, find and stop it. Starting waits for the first lease
// at most `timeoutMs`; a client that gets none is stopped and start() throws.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../log.js';
import { abortReason } from './connectivity.js';
import { DhcpError } from './errors.js';
import { resolveTool } from './exec.js';
import { startDetached } from '../process.js';
import type { Ip } from './ip.js';

export interface DhcpLease {
  dev: string;
  address: string;
  prefix: number;
  router?: string;
  leaseSec?: number;
  dns: string[];
}

export interface DhcpStartOptions {
  defaultRoute: boolean;
  timeoutMs: number;
  /** Stops waiting for the lease (the client is stopped, start() throws): the agent is stopping. */
  signal?: AbortSignal;
}

export interface DhcpClient {
  start(ip: Ip, dev: string, opts: DhcpStartOptions): Promise<DhcpLease>;
  stop(ip: Ip, dev: string): Promise<void>;
  /** The running client's settings, or undefined if none runs for DEV. */
  running(ip: Ip, dev: string): Promise<{ pid: number; defaultRoute: boolean } | undefined>;
  lease(ip: Ip, dev: string): Promise<DhcpLease | undefined>;
}

export const LEASE_SCRIPT = `#!/bin/sh
# Hostvisor's udhcpc lease script: applies the lease with ip, records it.
PATH=/usr/sbin:/sbin:/usr/bin:/bin
[ -n "$interface" ] || exit 1
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface" scope global
    rm -f "$HV_LEASE_FILE"
    ;;
  bound|renew)
    [ "$1" = bound ] && ip -4 addr flush dev "$interface" scope global
    ip -4 addr replace "$ip/\${mask:-24}" broadcast + dev "$interface" valid_lft "\${lease:-forever}" preferred_lft "\${lease:-forever}" || exit 1
    if [ "$HV_DEFAULT_ROUTE" = 1 ] && [ -n "$router" ]; then
      set -- $router
      ip -4 route replace default via "$1" dev "$interface"
    fi
    printf 'address=%s\\nprefix=%s\\nrouter=%s\\nlease=%s\\ndns=%s\\n' "$ip" "\${mask:-24}" "$router" "$lease" "$dns" > "$HV_LEASE_FILE.tmp" &&
      mv -f "$HV_LEASE_FILE.tmp" "$HV_LEASE_FILE"
    ;;
esac
exit 0
`;

export interface UdhcpcOptions {
  /** Pid, lease, log and script files. */
  runDir: string;
  /** The busybox binary (udhcpc is its applet). */
  busybox?: string;
  /** Seconds between DISCOVERs (udhcpc -T; 3 is udhcpc's default, and leaves servers that ping-check an address time to answer). */
  discoverIntervalSec?: number;
  log?: Logger;
}

export class UdhcpcClient implements DhcpClient {
  private readonly runDir: string;
  private readonly busybox: string;
  private readonly intervalSec: number;
  private readonly log: Logger;

  constructor(opts: UdhcpcOptions) {
    this.runDir = opts.runDir;
    this.busybox = opts.busybox ?? 'busybox';
    this.intervalSec = opts.discoverIntervalSec ?? 3;
    this.log = opts.log ?? silentLogger;
  }

  private base(ip: Ip, dev: string): string {
    return join(this.runDir, `${ip.netns ?? 'host'}.${dev}`);
  }

  async start(ip: Ip, dev: string, opts: DhcpStartOptions): Promise<DhcpLease> {
    await this.stop(ip, dev);
    await mkdir(this.runDir, { recursive: true, mode: 0o700 });
    const script = join(this.runDir, 'udhcpc-lease.sh');
    await writeFile(script, LEASE_SCRIPT, { mode: 0o755 });
    const b = this.base(ip, dev);
    await writeFile(`${b}.conf`, JSON.stringify({ defaultRoute: opts.defaultRoute }));
    const argv = ip.execArgv([resolveTool(this.busybox), 'udhcpc', '-f', '-i', dev, '-s', script, '-p', `${b}.pid`,
      '-t', '3', '-T', String(this.intervalSec), '-A', String(this.intervalSec)]);
    const child = startDetached(argv, {
      logFile: `${b}.log`,
      env: { HV_LEASE_FILE: `${b}.lease`, HV_DEFAULT_ROUTE: opts.defaultRoute ? '1' : '0' },
    });
    let exited: number | null | undefined;
    void child.exited.then((code) => { exited = code; });
    if (child.pid !== undefined) await writeFile(`${b}.pid`, `${child.pid}\n`); // udhcpc rewrites it with the same pid
    this.log.info('dhcp client started', { dev, netns: ip.netns, pid: child.pid });
    const deadline = Date.now() + opts.timeoutMs;
    while (Date.now() < deadline && !opts.signal?.aborted) {
      const lease = await this.lease(ip, dev);
      if (lease) return lease;
      if (exited !== undefined) break;
      await sleep(100);
    }
    const exitedEarly = exited; // read before stop(), whose SIGTERM makes the client exit too
    const tail = (await readFile(`${b}.log`, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
    await this.stop(ip, dev);
    const abandoned = exitedEarly === undefined ? abortReason(opts.signal) : undefined;
    throw new DhcpError(exitedEarly !== undefined
      ? `DHCP client on ${dev} exited (${exitedEarly}) without a lease: ${tail}`
      : abandoned !== undefined ? `no DHCP lease on ${dev}: stopped waiting (${abandoned})`
        : `no DHCP lease on ${dev} within ${opts.timeoutMs} ms: ${tail}`, { data: { dev } });
  }

  async running(ip: Ip, dev: string): Promise<{ pid: number; defaultRoute: boolean } | undefined> {
    const b = this.base(ip, dev);
    const pid = Number((await readFile(`${b}.pid`, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    // Only a udhcpc on this interface is ours; a recycled pid is not.
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const i = cmdline.indexOf('-i');
    if (!cmdline.includes('udhcpc') || i < 0 || cmdline[i + 1] !== dev || !cmdline.includes(`${b}.pid`)) return undefined;
    const conf = JSON.parse(await readFile(`${b}.conf`, 'utf8').catch(() => '{}')) as { defaultRoute?: boolean };
    return { pid, defaultRoute: conf.defaultRoute === true };
  }

  async stop(ip: Ip, dev: string): Promise<void> {
    const b = this.base(ip, dev);
    const r = await this.running(ip, dev);
    if (r) {
      try { process.kill(r.pid, 'SIGTERM'); } catch { /* gone */ }
      for (let i = 0; i < 30 && (await this.running(ip, dev)); i++) await sleep(50);
      if (await this.running(ip, dev)) {
        try { process.kill(r.pid, 'SIGKILL'); } catch { /* gone */ }
      }
      this.log.info('dhcp client stopped', { dev, netns: ip.netns, pid: r.pid });
    }
    await Promise.all(['pid', 'lease', 'lease.tmp', 'conf'].map((s) => rm(`${b}.${s}`, { force: true })));
  }

  async lease(ip: Ip, dev: string): Promise<DhcpLease | undefined> {
    const text = await readFile(`${this.base(ip, dev)}.lease`, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    const kv = Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    if (!kv['address']) return undefined;
    const lease: DhcpLease = { dev, address: kv['address'], prefix: Number(kv['prefix'] ?? 24), dns: (kv['dns'] ?? '').split(/\s+/).filter(Boolean) };
    const router = (kv['router'] ?? '').split(/\s+/)[0];
    if (router) lease.router = router;
    if (kv['lease']) lease.leaseSec = Number(kv['lease']);
    return lease;
  }
}
