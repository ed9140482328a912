// Compute the changes from one config to another: planChanges() is pure,
// (from config, to config, live snapshot) → ordered steps. It reconciles
// against the live state rather than diffing configs, so the same code applies
// a request, re-applies a config at boot after the links are gone, and
// converges after a half-done apply. Order: stop DHCP clients that go; delete
// bridges, then VLANs, then bonds that go; release ports; create bonds and
// enslave; base MTUs; create VLANs and bridges; enslave ports; MTUs above;
// links up; addresses; default routes; DHCP; resolv.conf.
import { cmd } from './commands.js';
import type { NetConfigT, NetworkConfigT } from './model.js';
import { NETWORK_DEFAULTS, stableJson } from './model.js';
import { isDefaultRoute, type RouteState, type Snapshot } from './state.js';
import { topology, VIRTUAL_KINDS, type DeviceSpec } from './topology.js';
import { sameIdentity, wantedAddrs } from './verify.js';

export type Step =
  | { op: 'ip'; args: string[]; why: string; /** "already gone" is not an error (an address or route the kernel removed itself). */ ignoreMissing?: boolean }
  | { op: 'sysctl'; path: string; value: string; why: string }
  | { op: 'dhcp-start'; dev: string; network: string; defaultRoute: boolean; why: string }
  | { op: 'dhcp-stop'; dev: string; why: string }
  | { op: 'resolv'; nameservers: string[]; why: string };

/** Which DHCP clients run now: device → its defaultRoute setting. */
export type DhcpView = ReadonlyMap<string, { defaultRoute: boolean }>;

const ORDER: Record<string, number> = { nic: 0, bond: 1, vlan: 2, bridge: 3 };
const byKind = (a: DeviceSpec, b: DeviceSpec) => (ORDER[a.kind]! - ORDER[b.kind]!) || (a.name < b.name ? -1 : 1);

function sameNet(a: NetworkConfigT | undefined, b: NetworkConfigT | undefined): boolean {
  return a !== undefined && b !== undefined && stableJson(a) === stableJson(b);
}

export function planChanges(from: NetConfigT, to: NetConfigT, live: Snapshot, dhcp: DhcpView = new Map()): Step[] {
  const F = topology(from);
  const T = topology(to);
  const steps: Step[] = [];
  const ip = (args: string[], why: string, ignoreMissing = false) => steps.push({ op: 'ip', args, why, ...(ignoreMissing ? { ignoreMissing } : {}) });
  // What we expect the host to look like after each step.
  const links = structuredClone(live.links);
  const addrs = structuredClone(live.addrs);
  const touched = new Set<string>(); // devices whose addresses change
  const flush = (dev: string, why: string) => {
    if ((addrs[dev] ?? []).length) {
      ip(cmd.addrFlush(dev), why);
      addrs[dev] = [];
      touched.add(dev);
    }
  };
  const managed = (dev: string) => F.devices.has(dev) || T.devices.has(dev);

  const doomed = Object.entries(links)
    .filter(([n, l]) => VIRTUAL_KINDS.has(l.kind) && managed(n))
    .filter(([n, l]) => !T.devices.has(n) || !sameIdentity(T.devices.get(n)!, l))
    .sort(([a, x], [b, y]) => (ORDER[y.kind]! - ORDER[x.kind]!) || (a < b ? -1 : 1))
    .map(([n]) => n);

  // 1. DHCP clients that go, or must restart with other settings or on a recreated device.
  const keepDhcp = new Set<string>();
  for (const [n, net] of Object.entries(to.networks)) {
    const dev = T.ipDev[n]!;
    const run = dhcp.get(dev);
    if (net.ipv4.bootproto === 'dhcp' && run && run.defaultRoute === net.defaultRoute && links[dev] && !doomed.includes(dev)) keepDhcp.add(dev);
  }
  for (const dev of dhcp.keys()) if (!keepDhcp.has(dev)) steps.push({ op: 'dhcp-stop', dev, why: 'its network went or changed' });

  // 2. Delete virtual devices that go or cannot be kept: bridges, VLANs, then bonds.
  for (const n of doomed) {
    ip(cmd.linkDel(n), T.devices.has(n) ? 'must be recreated' : 'no longer needed');
    delete links[n];
    delete addrs[n];
    for (const l of Object.values(links)) if (l.master === n) l.master = null;
  }

  // 3. Release ports whose master changes; reset the nics we no longer use.
  for (const [n, l] of Object.entries(links)) {
    const want = T.devices.get(n)?.master ?? null;
    if (l.master !== null && l.master !== want && managed(n)) {
      ip(cmd.noMaster(n), `leaves ${l.master}`);
      l.master = null;
    }
  }
  for (const [n, d] of F.devices) {
    const l = links[n];
    if (d.kind !== 'nic' || T.devices.has(n) || !l) continue;
    flush(n, 'a released nic keeps no address');
    if (l.mtu !== NETWORK_DEFAULTS.mtu) ip(cmd.mtu(n, NETWORK_DEFAULTS.mtu), 'a released nic gets the default MTU');
  }

  const devs = [...T.devices.values()].sort(byKind);
  const created = new Set<string>();
  // 4. Bonds and their slaves.
  for (const d of devs.filter((x) => x.kind === 'bond')) {
    if (!links[d.name]) {
      ip(cmd.bondAdd(d.name, d.bond!.options, d.bond!.hwaddr), 'new bond');
      links[d.name] = { kind: 'bond', mtu: NETWORK_DEFAULTS.mtu, master: null, up: false };
      created.add(d.name);
    } else if (F.devices.get(d.name)?.bond?.options !== d.bond!.options) {
      ip(cmd.bondSet(d.name, d.bond!.options), 'bond options changed');
    }
    for (const s of d.bond!.slaves) {
      const l = links[s];
      if (l?.master === d.name) continue;
      if (l?.up) ip(cmd.down(s), 'a slave must be down to join a bond');
      flush(s, 'a bond slave keeps no address');
      ip(cmd.master(s, d.name), `joins ${d.name}`);
      if (l) { l.master = d.name; l.up = false; }
    }
  }
  // 5. MTU of nics (not bond slaves: they follow their bond) and bonds, before anything stacks on them.
  for (const d of devs.filter((x) => (x.kind === 'nic' && !T.devices.get(x.master ?? '')?.bond) || x.kind === 'bond')) {
    if (links[d.name] && links[d.name]!.mtu !== d.mtu) ip(cmd.mtu(d.name, d.mtu), 'MTU');
  }
  // 6. VLAN devices and bridges.
  for (const d of devs.filter((x) => x.kind === 'vlan' && !links[x.name])) {
    ip(cmd.vlanAdd(d.vlan!.link, d.vlan!.id, d.name), 'new VLAN device');
    created.add(d.name);
  }
  for (const d of devs.filter((x) => x.kind === 'bridge')) {
    if (!links[d.name]) {
      ip(cmd.bridgeAdd(d.name, d.stp ?? false), 'new bridge');
      created.add(d.name);
    } else if (links[d.name]!.stp !== d.stp) {
      ip(cmd.bridgeStp(d.name, d.stp ?? false), 'STP changed');
    }
  }
  // 7. Bridge ports.
  for (const d of devs) {
    if (d.master === null || T.devices.get(d.master)?.kind !== 'bridge') continue;
    if (!created.has(d.name) && links[d.name]?.master === d.master) continue;
    if (!created.has(d.name)) flush(d.name, 'a bridge port keeps no address');
    ip(cmd.master(d.name, d.master), `joins bridge ${d.master}`);
  }
  // 8. MTUs above the base (after the ports, so a bridge keeps the MTU we set).
  for (const d of devs.filter((x) => x.kind === 'vlan' || x.kind === 'bridge')) {
    if (created.has(d.name) || links[d.name]?.mtu !== d.mtu) ip(cmd.mtu(d.name, d.mtu), 'MTU');
  }
  // 9. Links up, lower devices first.
  for (const d of devs) if (created.has(d.name) || !links[d.name]?.up) ip(cmd.up(d.name), 'up');

  // 10. Addresses.
  for (const d of devs) {
    const want = wantedAddrs(d, to);
    const have = created.has(d.name) ? [] : (addrs[d.name] ?? []);
    const v4have = have.filter((a) => !a.includes(':'));
    const v6have = have.filter((a) => a.includes(':'));
    const del = (a: string, why: string) => { ip(cmd.addrDel(a, d.name), why, true); touched.add(d.name); };
    const add = (a: string, why: string) => { ip(cmd.addrAdd(a, d.name), why); touched.add(d.name); };
    if (want.v4 !== 'dhcp') {
      for (const a of v4have) if (!want.v4.includes(a)) del(a, 'not in the config');
      for (const a of want.v4) if (!v4have.includes(a)) add(a, 'static IPv4');
    } else if (!keepDhcp.has(d.name)) {
      for (const a of v4have) del(a, 'the DHCP client sets the address');
    }
    if (!want.keep6) for (const a of v6have) if (!want.v6.includes(a)) del(a, 'not in the config');
    for (const a of want.v6) if (!v6have.includes(a)) add(a, 'static IPv6');
    const net = d.ipOf !== undefined ? to.networks[d.ipOf] : undefined;
    if (net && (created.has(d.name) || !sameNet(from.networks[d.ipOf!], net))) {
      const v = net.ipv6.autoconf ? '1' : '0';
      for (const k of ['accept_ra', 'autoconf']) steps.push({ op: 'sysctl', path: `/proc/sys/net/ipv6/conf/${d.name}/${k}`, value: v, why: 'ipv6 autoconf' });
    }
  }

  // 11. Default routes. With a defaultRoute network, its gateway is the only
  // default route of that family (VDSM moves it there); without one, managed
  // devices carry no default route.
  const target = Object.entries(to.networks).find(([, n]) => n.defaultRoute);
  for (const family of [4, 6] as const) {
    // Router-advertised IPv6 defaults belong to autoconf and come and go by themselves.
    const defaults = live.routes.filter((r) => isDefaultRoute(r) && r.family === family && r.protocol !== 'ra' && (r.dev === undefined || links[r.dev]));
    const dev = target ? T.ipDev[target[0]]! : undefined;
    const gw = target ? (family === 4 ? target[1].ipv4.gateway : target[1].ipv6.gateway) : undefined;
    const viaDhcp = family === 4 && target?.[1].ipv4.bootproto === 'dhcp';
    if (dev !== undefined && gw !== undefined) {
      const mine = (r: RouteState) => r.gateway === gw && r.dev === dev;
      for (const r of defaults) if (!mine(r)) ip(cmd.route('del', r), 'only the defaultRoute network has the default route', true);
      if (!defaults.some(mine) || touched.has(dev) || created.has(dev)) ip(cmd.defaultRoute(family, gw, dev), 'defaultRoute network');
    } else if (dev !== undefined && viaDhcp) {
      for (const r of defaults) if (r.dev !== dev) ip(cmd.route('del', r), 'the DHCP lease gives the default route', true);
    } else {
      for (const r of defaults) if (r.dev !== undefined && managed(r.dev)) ip(cmd.route('del', r), 'no defaultRoute network here', true);
    }
  }

  // 12. DHCP clients, 13. resolv.conf.
  for (const [n, net] of Object.entries(to.networks)) {
    const dev = T.ipDev[n]!;
    if (net.ipv4.bootproto === 'dhcp' && !keepDhcp.has(dev)) steps.push({ op: 'dhcp-start', dev, network: n, defaultRoute: net.defaultRoute, why: 'bootproto dhcp' });
  }
  const fromTarget = Object.entries(from.networks).find(([, n]) => n.defaultRoute);
  const ns = target?.[1].nameservers ?? [];
  if (ns.length && stableJson(ns) !== stableJson(fromTarget?.[1].nameservers ?? [])) {
    steps.push({ op: 'resolv', nameservers: ns, why: 'nameservers of the defaultRoute network' });
  }
  return steps;
}
