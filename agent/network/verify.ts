// Verification: does the host match a desired config? verifyConfig()
// compares a fresh snapshot with the devices, MTUs, ports, addresses and
// default routes the config implies, and lists every mismatch; an empty list
// means verified. apply.ts runs it after every apply.
import { bondModeOf } from './commands.js';
import type { DhcpLease } from './dhcp.js';
import type { NetConfigT } from './model.js';
import { stableJson } from './model.js';
import { isDefaultRoute, type LinkState, type RouteState, type Snapshot } from './state.js';
import { topology, VIRTUAL_KINDS, type DeviceSpec, type Topology } from './topology.js';

/** Addresses a device must carry: 'dhcp' leaves IPv4 to the client; keep6 leaves autoconf addresses alone. */
export function wantedAddrs(d: DeviceSpec, cfg: NetConfigT): { v4: string[] | 'dhcp'; v6: string[]; keep6: boolean } {
  const net = d.ipOf !== undefined ? cfg.networks[d.ipOf] : undefined;
  if (!net) return { v4: [], v6: [], keep6: false };
  const v4 = net.ipv4.bootproto === 'dhcp' ? 'dhcp' as const : net.ipv4.ipaddr ? [`${net.ipv4.ipaddr}/${net.ipv4.prefix}`] : [];
  return { v4, v6: net.ipv6.address ? [net.ipv6.address] : [], keep6: net.ipv6.autoconf };
}

/** Whether a live device can stay as the desired device (else it is deleted and recreated). */
export function sameIdentity(d: DeviceSpec, live: LinkState): boolean {
  if (d.kind === 'nic') return !VIRTUAL_KINDS.has(live.kind);
  if (live.kind !== d.kind) return false;
  if (d.kind === 'vlan') return live.vlan?.link === d.vlan!.link && live.vlan?.id === d.vlan!.id;
  if (d.kind === 'bond') return live.bondMode === undefined || live.bondMode === bondModeOf(d.bond!.options);
  return true;
}

/** How the host differs from the desired config (empty = verified). */
export function verifyConfig(from: NetConfigT, to: NetConfigT, live: Snapshot, leases: ReadonlyMap<string, DhcpLease> = new Map()): string[] {
  const F = topology(from);
  const T: Topology = topology(to);
  const bad: string[] = [];
  for (const d of T.devices.values()) {
    const l = live.links[d.name];
    if (!l) { bad.push(`${d.name}: missing`); continue; }
    if (!sameIdentity(d, l)) bad.push(`${d.name}: is a ${l.kind || 'nic'} device, want ${d.kind}`);
    if (l.mtu !== d.mtu) bad.push(`${d.name}: mtu ${l.mtu}, want ${d.mtu}`);
    if (l.master !== d.master) bad.push(`${d.name}: master ${l.master}, want ${d.master}`);
    if (!l.up && d.kind !== 'nic') bad.push(`${d.name}: down`);
    if (!l.up && d.kind === 'nic' && !T.devices.get(d.master ?? '')?.bond) bad.push(`${d.name}: down`);
    if (d.kind === 'bridge' && l.stp !== d.stp) bad.push(`${d.name}: stp ${l.stp}, want ${d.stp}`);
    const want = wantedAddrs(d, to);
    const have = live.addrs[d.name] ?? [];
    const v4 = have.filter((a) => !a.includes(':'));
    const v6 = have.filter((a) => a.includes(':'));
    if (want.v4 === 'dhcp') {
      const lease = leases.get(d.name);
      if (!v4.length) bad.push(`${d.name}: no DHCP address`);
      else if (lease && !v4.includes(`${lease.address}/${lease.prefix}`)) bad.push(`${d.name}: lease ${lease.address}/${lease.prefix} not applied`);
    } else if (stableJson([...v4].sort()) !== stableJson([...want.v4].sort())) {
      bad.push(`${d.name}: IPv4 ${JSON.stringify(v4)}, want ${JSON.stringify(want.v4)}`);
    }
    const missing6 = want.v6.filter((a) => !v6.includes(a));
    const extra6 = want.keep6 ? [] : v6.filter((a) => !want.v6.includes(a));
    if (missing6.length || extra6.length) bad.push(`${d.name}: IPv6 ${JSON.stringify(v6)}, want ${JSON.stringify(want.v6)}`);
  }
  for (const [n, d] of F.devices) {
    if (T.devices.has(n)) continue;
    if (VIRTUAL_KINDS.has(d.kind) && live.links[n]) bad.push(`${n}: still present`);
    if (d.kind === 'nic' && live.links[n]?.master) bad.push(`${n}: still a port of ${live.links[n]!.master}`);
  }
  const target = Object.entries(to.networks).find(([, n]) => n.defaultRoute);
  for (const family of [4, 6] as const) {
    const defaults = live.routes.filter((r) => isDefaultRoute(r) && r.family === family && r.protocol !== 'ra');
    const dev = target ? T.ipDev[target[0]]! : undefined;
    const gw = target ? (family === 4 ? target[1].ipv4.gateway : target[1].ipv6.gateway) : undefined;
    const viaDhcp = family === 4 && target?.[1].ipv4.bootproto === 'dhcp';
    const wantGw = gw ?? (viaDhcp && dev !== undefined ? leases.get(dev)?.router : undefined);
    const show = (rs: RouteState[]) => rs.map((r) => `via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`).join(', ');
    if (dev !== undefined && wantGw !== undefined) {
      if (!defaults.some((r) => r.gateway === wantGw && r.dev === dev)) bad.push(`default route (IPv${family}) via ${wantGw} dev ${dev}: missing`);
      const others = defaults.filter((r) => !(r.gateway === wantGw && r.dev === dev));
      if (others.length) bad.push(`default route (IPv${family}): unexpected ${show(others)}`);
    } else if (!viaDhcp) {
      const onManaged = defaults.filter((r) => r.dev !== undefined && (T.devices.has(r.dev) || F.devices.has(r.dev)));
      if (onManaged.length) bad.push(`default route (IPv${family}): unexpected ${show(onManaged)} (no defaultRoute network has a gateway)`);
    }
  }
  return bad;
}
