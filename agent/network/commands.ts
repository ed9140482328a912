// The `ip` command lines that change the host (without the `ip -n NS`
// prefix, which Ip adds). Kept pure and separate so every command, including
// VLAN and bond creation that this lab's kernel cannot run, is unit-tested.
import { NETWORK_DEFAULTS } from './model.js';
import type { RouteState } from './state.js';

/** Bond modes by number, as VDSM's engines may send them ("mode=4"). */
const BOND_MODES = ['balance-rr', 'active-backup', 'balance-xor', 'broadcast', '802.3ad', 'balance-tlb', 'balance-alb'] as const;
const LACP_RATES = ['slow', 'fast'];
const XMIT_HASH = ['layer2', 'layer3+4', 'layer2+3', 'encap2+3', 'encap3+4', 'vlan+srcmac'];
const ARP_VALIDATE = ['none', 'active', 'backup', 'all', 'filter', 'filter_active', 'filter_backup'];
const FAIL_OVER_MAC = ['none', 'active', 'follow'];
const PRIMARY_RESELECT = ['always', 'better', 'failure'];
const AD_SELECT = ['stable', 'bandwidth', 'count'];

/** Enumerated options: the names `ip link … type bond` takes, indexed by the sysfs number. */
const ENUMS: Record<string, readonly string[]> = {
  mode: BOND_MODES, lacp_rate: LACP_RATES, xmit_hash_policy: XMIT_HASH, arp_validate: ARP_VALIDATE,
  fail_over_mac: FAIL_OVER_MAC, primary_reselect: PRIMARY_RESELECT, ad_select: AD_SELECT,
};

/** Options with numeric values (sysfs and `ip link` agree on these names). */
const NUMERIC = new Set([
  'miimon', 'updelay', 'downdelay', 'peer_notify_delay', 'use_carrier', 'arp_interval', 'resend_igmp',
  'num_grat_arp', 'num_unsol_na', 'all_slaves_active', 'min_links', 'lp_interval', 'packets_per_slave',
  'tlb_dynamic_lb', 'ad_actor_sys_prio', 'ad_user_port_key',
]);
/** Options with free-form values (interface names, addresses). */
const FREE = new Set(['primary', 'arp_ip_target', 'ad_actor_system', 'active_slave', 'arp_all_targets']);

export const BOND_OPTION_KEYS: ReadonlySet<string> = new Set([...Object.keys(ENUMS), ...NUMERIC, ...FREE]);

/**
 * Parses and canonicalizes a bonding option string ("mode=4 miimon=100"):
 * mode first, by name (default balance-rr), then the others sorted.
 * Throws Error with a readable message on a bad option.
 */
export function canonicalBondOptions(s: string | undefined): string {
  const opts = new Map<string, string>();
  for (const tok of (s ?? '').trim().split(/\s+/).filter(Boolean)) {
    const m = /^([a-z_0-9]+)=(\S+)$/.exec(tok);
    if (!m) throw new Error(`"${tok}" is not KEY=VALUE`);
    const key = m[1]!;
    let val = m[2]!;
    if (!BOND_OPTION_KEYS.has(key)) throw new Error(`unknown bonding option "${key}"`);
    if (opts.has(key)) throw new Error(`bonding option "${key}" given twice`);
    const names = ENUMS[key];
    if (names) {
      if (/^\d+$/.test(val)) {
        const byNum = names[Number(val)];
        if (byNum === undefined) throw new Error(`${key}=${val} is out of range`);
        val = byNum;
      }
      if (!names.includes(val)) throw new Error(`${key}=${val} is not one of ${names.join(', ')}`);
    } else if (NUMERIC.has(key)) {
      if (!/^\d{1,9}$/.test(val)) throw new Error(`${key}=${val} is not a number`);
    } else if (!/^[A-Za-z0-9.,:_+-]{1,256}$/.test(val)) {
      throw new Error(`${key}=${val} has characters that are not allowed`);
    }
    opts.set(key, val);
  }
  const mode = opts.get('mode') ?? NETWORK_DEFAULTS.bondMode;
  opts.delete('mode');
  return [`mode=${mode}`, ...[...opts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`)].join(' ');
}

/** A canonical option string as `ip link … type bond` arguments. */
export function bondOptionArgs(options: string): string[] {
  const out: string[] = [];
  for (const tok of options.split(/\s+/).filter(Boolean)) {
    const i = tok.indexOf('=');
    out.push(tok.slice(0, i), tok.slice(i + 1));
  }
  return out;
}

export function bondModeOf(options: string): string {
  return /(?:^|\s)mode=(\S+)/.exec(options)?.[1] ?? NETWORK_DEFAULTS.bondMode;
}

export const cmd = {
  linkDel: (dev: string) => ['link', 'del', 'dev', dev],
  bridgeAdd: (name: string, stp: boolean) => ['link', 'add', 'name', name, 'type', 'bridge', 'stp_state', stp ? '1' : '0'],
  bridgeStp: (name: string, stp: boolean) => ['link', 'set', 'dev', name, 'type', 'bridge', 'stp_state', stp ? '1' : '0'],
  vlanAdd: (base: string, id: number, name: string) => ['link', 'add', 'link', base, 'name', name, 'type', 'vlan', 'id', String(id)],
  bondAdd: (name: string, options: string, hwaddr?: string) =>
    ['link', 'add', 'name', name, ...(hwaddr ? ['address', hwaddr] : []), 'type', 'bond', ...bondOptionArgs(options)],
  /** Options that may change on a live bond (not mode, which needs the bond recreated). */
  bondSet: (name: string, options: string) =>
    ['link', 'set', 'dev', name, 'type', 'bond', ...bondOptionArgs(options.replace(/(^|\s)mode=\S+/, '').trim())],
  mtu: (dev: string, mtu: number) => ['link', 'set', 'dev', dev, 'mtu', String(mtu)],
  master: (dev: string, master: string) => ['link', 'set', 'dev', dev, 'master', master],
  noMaster: (dev: string) => ['link', 'set', 'dev', dev, 'nomaster'],
  up: (dev: string) => ['link', 'set', 'dev', dev, 'up'],
  down: (dev: string) => ['link', 'set', 'dev', dev, 'down'],
  /** CIDR "a.b.c.d/p" or "x::y/p"; IPv4 gets its broadcast computed. */
  addrAdd: (cidr: string, dev: string) => ['addr', 'add', cidr, ...(cidr.includes(':') ? [] : ['broadcast', '+']), 'dev', dev],
  addrDel: (cidr: string, dev: string) => ['addr', 'del', cidr, 'dev', dev],
  addrFlush: (dev: string) => ['addr', 'flush', 'dev', dev, 'scope', 'global'],
  defaultRoute: (family: 4 | 6, gateway: string, dev: string) => [`-${family}`, 'route', 'replace', 'default', 'via', gateway, 'dev', dev],
  /** `ip route add|del|replace` for exactly this route (as captured by state.ts). */
  route: (verb: 'add' | 'del' | 'replace', r: RouteState) => [
    `-${r.family}`, 'route', verb,
    ...(r.type !== 'unicast' ? [r.type] : []), r.dst,
    ...(r.gateway ? ['via', r.gateway] : []),
    ...(r.dev ? ['dev', r.dev] : []),
    'proto', r.protocol, 'scope', r.scope, 'metric', String(r.metric),
    ...(r.prefsrc ? ['src', r.prefsrc] : []),
  ],
};
