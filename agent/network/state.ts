// A comparable snapshot of the running network state that matters to the
// managed networks: the links involved (kind, MTU, master, admin state, VLAN
// id, STP, bond mode), their global addresses, the main-table routes on them,
// and every default route wherever it is. Two snapshots compare with diff();
// rollback verification is `diff(before, after).length === 0`.
//
// Left out on purpose, because they change by themselves: operstate/carrier,
// address lifetimes, IPv6 link-local addresses and their fe80::/64 routes,
// route flags such as "linkdown".
import { isUp, linkKind, type Ip, type IpRouteJson } from './ip.js';
import { isLinkLocal6 } from './inet.js';

export interface LinkState {
  kind: string;
  mtu: number;
  master: string | null;
  up: boolean;
  vlan?: { link: string; id: number };
  stp?: boolean;
  bondMode?: string;
}

export interface RouteState {
  family: 4 | 6;
  type: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol: string;
  scope: string;
  metric: number;
  prefsrc?: string;
}

export interface Snapshot {
  /** The device names this snapshot covers (present or not). */
  devices: string[];
  links: Record<string, LinkState>;
  /** device → sorted "addr/prefix" (global scope). */
  addrs: Record<string, string[]>;
  /** Sorted by routeKey. */
  routes: RouteState[];
}

export interface StateDiff {
  path: string;
  before: unknown;
  after: unknown;
}

export function linkStateOf(l: Parameters<typeof linkKind>[0]): LinkState {
  const kind = linkKind(l);
  const s: LinkState = { kind, mtu: l.mtu, master: l.master ?? null, up: isUp(l) };
  const data = l.linkinfo?.info_data ?? {};
  if (kind === 'vlan' && l.link !== undefined) s.vlan = { link: l.link, id: Number(data['id']) };
  if (kind === 'bridge') s.stp = Number(data['stp_state'] ?? 0) !== 0;
  if (kind === 'bond' && typeof data['mode'] === 'string') s.bondMode = data['mode'];
  return s;
}

export function routeStateOf(r: IpRouteJson): RouteState {
  const s: RouteState = {
    family: r.family ?? (r.dst.includes(':') ? 6 : 4),
    type: r.type ?? 'unicast',
    dst: r.dst,
    protocol: r.protocol ?? 'boot',
    scope: r.scope ?? 'global',
    metric: r.metric ?? 0,
  };
  if (r.gateway !== undefined) s.gateway = r.gateway;
  if (r.dev !== undefined) s.dev = r.dev;
  if (r.prefsrc !== undefined) s.prefsrc = r.prefsrc;
  return s;
}

export function routeKey(r: RouteState): string {
  return [`v${r.family}`, r.type, r.dst, r.gateway ? `via ${r.gateway}` : '', r.dev ? `dev ${r.dev}` : '', `proto ${r.protocol}`,
    `scope ${r.scope}`, `metric ${r.metric}`, r.prefsrc ? `src ${r.prefsrc}` : ''].filter(Boolean).join(' ');
}

export function isDefaultRoute(r: RouteState): boolean {
  return r.dst === 'default' || r.dst === '0.0.0.0/0' || r.dst === '::/0';
}

/** Captures the state of DEVICES (and every default route). */
export async function captureState(ip: Ip, devices: Iterable<string>): Promise<Snapshot> {
  const scope = [...new Set(devices)].sort();
  const want = new Set(scope);
  const [links, addrs, routes] = [await ip.links(), await ip.addrs(), await ip.routes()];
  const snap: Snapshot = { devices: scope, links: {}, addrs: {}, routes: [] };
  for (const l of links) if (want.has(l.ifname)) snap.links[l.ifname] = linkStateOf(l);
  for (const a of addrs) {
    if (!want.has(a.ifname)) continue;
    snap.addrs[a.ifname] = a.addr_info
      .filter((i) => (i.family === 'inet' || i.family === 'inet6') && i.scope !== 'link' && i.scope !== 'host' && !isLinkLocal6(i.local))
      .map((i) => `${i.local}/${i.prefixlen}`)
      .sort();
  }
  snap.routes = routes
    .map(routeStateOf)
    .filter((r) => (r.dev !== undefined && want.has(r.dev)) || isDefaultRoute(r))
    .filter((r) => !(r.family === 6 && /^fe80::\/64$/.test(r.dst)))
    .sort((x, y) => (routeKey(x) < routeKey(y) ? -1 : 1));
  return snap;
}

/** Restricts a snapshot to fewer devices (default routes stay). */
export function restrict(s: Snapshot, devices: Iterable<string>): Snapshot {
  const want = new Set(devices);
  return {
    devices: s.devices.filter((d) => want.has(d)),
    links: Object.fromEntries(Object.entries(s.links).filter(([k]) => want.has(k))),
    addrs: Object.fromEntries(Object.entries(s.addrs).filter(([k]) => want.has(k))),
    routes: s.routes.filter((r) => (r.dev !== undefined && want.has(r.dev)) || isDefaultRoute(r)),
  };
}

const FIELDS = ['kind', 'mtu', 'master', 'up', 'vlan', 'stp', 'bondMode'] as const;

/** What differs from A to B, over the devices both cover. Empty means equal. */
export function diff(a: Snapshot, b: Snapshot): StateDiff[] {
  const out: StateDiff[] = [];
  const names = [...new Set([...Object.keys(a.links), ...Object.keys(b.links)])].sort();
  for (const n of names) {
    const x = a.links[n];
    const y = b.links[n];
    if (!x || !y) {
      out.push({ path: `links.${n}`, before: x ? 'present' : 'absent', after: y ? 'present' : 'absent' });
      continue;
    }
    for (const f of FIELDS) {
      if (JSON.stringify(x[f]) !== JSON.stringify(y[f])) out.push({ path: `links.${n}.${f}`, before: x[f] ?? null, after: y[f] ?? null });
    }
  }
  const addrDevs = [...new Set([...Object.keys(a.addrs), ...Object.keys(b.addrs)])].sort();
  for (const d of addrDevs) {
    const x = new Set(a.addrs[d] ?? []);
    const y = new Set(b.addrs[d] ?? []);
    for (const ad of x) if (!y.has(ad)) out.push({ path: `addrs.${d}`, before: ad, after: null });
    for (const ad of y) if (!x.has(ad)) out.push({ path: `addrs.${d}`, before: null, after: ad });
  }
  const rx = new Set(a.routes.map(routeKey));
  const ry = new Set(b.routes.map(routeKey));
  for (const k of rx) if (!ry.has(k)) out.push({ path: 'routes', before: k, after: null });
  for (const k of ry) if (!rx.has(k)) out.push({ path: 'routes', before: null, after: k });
  return out;
}

export function formatDiff(d: readonly StateDiff[]): string[] {
  return d.map((x) => `${x.path}: ${JSON.stringify(x.before)} → ${JSON.stringify(x.after)}`);
}
