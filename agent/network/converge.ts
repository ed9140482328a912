// Converge the live state to a snapshot (state.ts): the heart of rollback.
// Two pure planners, run one after the other because the kernel derives
// routes from addresses: first links and addresses, then (after a fresh
// capture) the routes that still differ.
//
// Only what a snapshot can describe is restored: bridges (with STP), VLAN
// devices and bonds (mode only) are recreated; a missing nic cannot be, and is
// reported. Devices that appeared are deleted only if they are bridges, VLANs
// or bonds; a nic is never deleted.
import type { Step } from './plan.js';
import { cmd } from './commands.js';
import type { LinkState, Snapshot } from './state.js';
import { isDefaultRoute, routeKey } from './state.js';
import { VIRTUAL_KINDS } from './topology.js';

const CREATE_ORDER: Record<string, number> = { bond: 0, vlan: 1, bridge: 2 };
const MTU_ORDER = (l: LinkState) => (l.kind === 'bond' ? 0 : l.kind === 'vlan' ? 2 : l.kind === 'bridge' ? 3 : 1);

export interface ConvergePlan {
  steps: Step[];
  /** Differences no command can fix (a nic that vanished, an unknown device kind). */
  impossible: string[];
}

export function planLinksAndAddrs(want: Snapshot, live: Snapshot): ConvergePlan {
  const steps: Step[] = [];
  const impossible: string[] = [];
  const ip = (args: string[], why: string, ignoreMissing = false) => steps.push({ op: 'ip', args, why: `rollback: ${why}`, ...(ignoreMissing ? { ignoreMissing } : {}) });
  const cur: Record<string, LinkState> = structuredClone(live.links);
  const created = new Set<string>();

  // Devices that appeared: delete bridges, then VLANs, then bonds.
  const extra = Object.entries(cur).filter(([n]) => !want.links[n]).sort(([, a], [, b]) => (CREATE_ORDER[b.kind] ?? -1) - (CREATE_ORDER[a.kind] ?? -1));
  for (const [n, l] of extra) {
    if (!VIRTUAL_KINDS.has(l.kind)) { impossible.push(`${n}: a ${l.kind || 'nic'} that was not there before; left alone`); continue; }
    ip(cmd.linkDel(n), 'was not there before');
    delete cur[n];
    for (const o of Object.values(cur)) if (o.master === n) o.master = null;
  }
  // Devices that went, or changed identity: recreate bonds, VLANs, bridges.
  const missing = Object.entries(want.links)
    .filter(([n, l]) => !cur[n] || cur[n]!.kind !== l.kind || JSON.stringify(cur[n]!.vlan) !== JSON.stringify(l.vlan) || (l.bondMode !== undefined && cur[n]!.bondMode !== l.bondMode))
    .sort(([, a], [, b]) => (CREATE_ORDER[a.kind] ?? 9) - (CREATE_ORDER[b.kind] ?? 9));
  for (const [n, l] of missing) {
    if (!VIRTUAL_KINDS.has(l.kind)) { impossible.push(`${n}: a ${l.kind || 'nic'} that is gone cannot be recreated`); continue; }
    if (cur[n]) { ip(cmd.linkDel(n), 'changed identity'); for (const o of Object.values(cur)) if (o.master === n) o.master = null; }
    if (l.kind === 'bond') ip(cmd.bondAdd(n, `mode=${l.bondMode ?? 'balance-rr'}`), 'was there before');
    else if (l.kind === 'vlan') ip(cmd.vlanAdd(l.vlan!.link, l.vlan!.id, n), 'was there before');
    else ip(cmd.bridgeAdd(n, l.stp ?? false), 'was there before');
    cur[n] = { kind: l.kind, mtu: -1, master: null, up: false, ...(l.stp !== undefined ? { stp: l.stp } : {}) };
    created.add(n);
  }
  const names = Object.keys(want.links).filter((n) => cur[n]).sort();
  // Release ports whose master differs.
  for (const n of names) {
    const c = cur[n]!;
    if (c.master !== null && c.master !== want.links[n]!.master) { ip(cmd.noMaster(n), `was not a port of ${c.master}`); c.master = null; }
  }
  const setMtus = (filter: (l: LinkState) => boolean) => {
    for (const n of [...names].sort((a, b) => MTU_ORDER(want.links[a]!) - MTU_ORDER(want.links[b]!))) {
      const w = want.links[n]!;
      if (!filter(w) || cur[n]!.mtu === w.mtu) continue;
      if (w.master !== null && want.links[w.master]?.kind === 'bond') continue; // slaves follow their bond
      ip(cmd.mtu(n, w.mtu), `MTU was ${w.mtu}`);
      cur[n]!.mtu = w.mtu;
    }
  };
  setMtus((l) => l.kind !== 'bridge');
  // Ports back in their bridges and bonds.
  for (const n of names) {
    const w = want.links[n]!;
    if (w.master === null || cur[n]!.master === w.master) continue;
    if (want.links[w.master]?.kind === 'bond') { ip(cmd.down(n), 'a slave must be down to join a bond'); cur[n]!.up = false; }
    ip(cmd.master(n, w.master), `was a port of ${w.master}`);
    cur[n]!.master = w.master;
  }
  setMtus((l) => l.kind === 'bridge');
  for (const n of names) {
    const w = want.links[n]!;
    if (w.kind === 'bridge' && w.stp !== undefined && cur[n]!.stp !== w.stp) ip(cmd.bridgeStp(n, w.stp), 'STP');
  }
  // Admin state, lower devices first when bringing up.
  for (const n of [...names].sort((a, b) => MTU_ORDER(want.links[a]!) - MTU_ORDER(want.links[b]!))) {
    const w = want.links[n]!;
    if (w.up && (!cur[n]!.up || created.has(n))) ip(cmd.up(n), 'was up');
    if (!w.up && cur[n]!.up) ip(cmd.down(n), 'was down');
  }
  // Addresses.
  for (const dev of want.devices) {
    if (!want.links[dev] || !cur[dev]) continue;
    const have = created.has(dev) ? [] : (live.addrs[dev] ?? []);
    const w = want.addrs[dev] ?? [];
    for (const a of have) if (!w.includes(a)) ip(cmd.addrDel(a, dev), 'address was not there', true);
    for (const a of w) if (!have.includes(a)) ip(cmd.addrAdd(a, dev), 'address was there');
  }
  return { steps, impossible };
}

export function planRoutes(want: Snapshot, live: Snapshot): Step[] {
  const steps: Step[] = [];
  const have = new Map(live.routes.map((r) => [routeKey(r), r]));
  const need = new Map(want.routes.map((r) => [routeKey(r), r]));
  for (const [k, r] of have) if (!need.has(k)) steps.push({ op: 'ip', args: cmd.route('del', r), why: 'rollback: route was not there', ignoreMissing: true });
  const add = [...need].filter(([k]) => !have.has(k)).map(([, r]) => r).sort((a, b) => Number(isDefaultRoute(a)) - Number(isDefaultRoute(b)));
  for (const r of add) steps.push({ op: 'ip', args: cmd.route('add', r), why: 'rollback: route was there' });
  return steps;
}
