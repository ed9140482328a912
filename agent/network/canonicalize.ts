// Canonicalize and validate a whole setupNetworks request against the
// running config and the host's links, BEFORE anything is touched. A bad
// request changes nothing: the first problem found is an InvalidParamsError
// whose data.field names the attribute, e.g. `networks.ovirtmgmt.ipv4.netmask`.
//
// The result is the complete desired config: the running config with the
// request's networks and bonds replaced, added or removed (a network in the
// request is defined entirely by its attributes, as in VDSM).
import { isIP, isIPv4 } from 'node:net';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { InvalidParamsError } from '../../api/errors.js';
import {
  CONNECTIVITY_TIMEOUT_MAX_SEC, MANAGEMENT_NETWORKS, NETWORK_DEFAULTS, SetupNetworksParams, sortedConfig,
  type BondAttrsT, type NetConfigT, type NetworkAttrsT, type NetworkConfigT, type SetupOptionsCanonical,
} from './model.js';
import { canonicalBondOptions } from './commands.js';
import { inSubnet4, MAC_RE, netmaskToPrefix, normalizeIpv6, parseIpv6Cidr, subnetBounds4 } from './inet.js';
import { topology, vlanDeviceName } from './topology.js';

/** The host's links as canonicalize needs them (from Ip.links()). */
export interface HostLink {
  name: string;
  /** '' for a physical NIC, else iproute2's kind ('veth', 'bridge', 'bond', 'vlan'…). */
  kind: string;
  master?: string;
}

export interface CanonicalRequest {
  desired: NetConfigT;
  options: SetupOptionsCanonical;
  /** Names in the request, by what happens to them. */
  networks: { added: string[]; changed: string[]; removed: string[] };
  bondings: { added: string[]; changed: string[]; removed: string[] };
}

/** Link kinds that may serve as a network's nic or a bond slave. */
export const NIC_KINDS: ReadonlySet<string> = new Set(['', 'veth', 'dummy']);
export const IFNAMSIZ = 15;
export const MTU_MIN = 68;
export const MTU_MAX = 65535;

const NAME_RE = /^[A-Za-z0-9_-]+$/;
const BOND_RE = /^bond[A-Za-z0-9_]+$/;
const paramsCheck = TypeCompiler.Compile(SetupNetworksParams);

function bad(field: string, msg: string): never {
  throw new InvalidParamsError(`${field}: ${msg}`, { data: { field } });
}

const bool = (v: boolean | 'true' | 'false' | undefined, dflt: boolean): boolean => (v === undefined ? dflt : v === true || v === 'true');
const int = (v: number | string | undefined): number | undefined => (v === undefined ? undefined : Number(v));

export function canonicalize(raw: unknown, running: NetConfigT, links: readonly HostLink[]): CanonicalRequest {
  const req0 = (raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>;
  const req = { networks: {}, bondings: {}, ...req0 };
  if (!paramsCheck.Check(req)) {
    const e = paramsCheck.Errors(req).First();
    const field = e ? e.path.split('/').filter(Boolean).map((p, i) => (/^\d+$/.test(p) && i > 0 ? `[${p}]` : (i ? `.${p}` : p))).join('') || 'params' : 'params';
    bad(field, e?.message ?? 'invalid');
  }

  const options = canonicalOptions(req.options ?? {});
  const live = new Map(links.map((l) => [l.name, l]));
  const managed = topology(running).devices;
  const desired: NetConfigT = structuredClone(running);
  const out: CanonicalRequest = { desired, options, networks: { added: [], changed: [], removed: [] }, bondings: { added: [], changed: [], removed: [] } };

  /** A device that may be a nic or bond slave: exists, right kind, not a port of something we do not manage. */
  const checkNic = (field: string, nic: string) => {
    const l = live.get(nic);
    if (!l) bad(field, `no such nic "${nic}"`);
    if (!NIC_KINDS.has(l.kind)) bad(field, `"${nic}" is a ${l.kind} device, not a nic`);
    if (l.master && !managed.has(l.master)) bad(field, `nic "${nic}" is already a port of "${l.master}", which is not managed by Hostvisor`);
  };

  for (const [name, attrs] of Object.entries(req.bondings)) {
    const field = `bondings.${name}`;
    if (!BOND_RE.test(name) || name.length > IFNAMSIZ) bad(field, `a bond name is "bond" followed by letters, digits or _ (at most ${IFNAMSIZ} characters)`);
    const exists = Object.hasOwn(running.bondings, name);
    if (bool(attrs.remove, false)) {
      if (!exists) bad(`${field}.remove`, `bond "${name}" is not configured`);
      onlyRemove(field, attrs);
      delete desired.bondings[name];
      out.bondings.removed.push(name);
      continue;
    }
    if (!exists && live.has(name)) bad(field, `a device named "${name}" exists and is not managed by Hostvisor`);
    const nics = attrs.nics ?? [];
    if (nics.length === 0) bad(`${field}.nics`, 'a bond needs at least one nic');
    if (new Set(nics).size !== nics.length) bad(`${field}.nics`, 'a nic is listed twice');
    nics.forEach((n, i) => checkNic(`${field}.nics[${i}]`, n));
    let opts: string;
    try { opts = canonicalBondOptions(attrs.options); } catch (e) { bad(`${field}.options`, (e as Error).message); }
    if (attrs.hwaddr !== undefined && !MAC_RE.test(attrs.hwaddr)) bad(`${field}.hwaddr`, `"${attrs.hwaddr}" is not a MAC address`);
    desired.bondings[name] = { nics: [...nics].sort(), options: opts, ...(attrs.hwaddr ? { hwaddr: attrs.hwaddr.toLowerCase() } : {}) };
    (exists ? out.bondings.changed : out.bondings.added).push(name);
  }

  const reqDefault: string[] = [];
  for (const [name, attrs] of Object.entries(req.networks)) {
    const field = `networks.${name}`;
    const exists = Object.hasOwn(running.networks, name);
    if (!NAME_RE.test(name)) bad(field, 'a network name has only letters, digits, _ and -');
    if (bool(attrs.remove, false)) {
      if (!exists) bad(`${field}.remove`, `network "${name}" is not configured`);
      onlyRemove(field, attrs);
      delete desired.networks[name];
      out.networks.removed.push(name);
      continue;
    }
    const net = canonicalNetwork(name, attrs, field);
    if (net.bridged && name.length > IFNAMSIZ) bad(field, `a bridged network's name is its bridge's name: at most ${IFNAMSIZ} characters`);
    if (net.bridged && !managed.has(name) && live.has(name)) bad(field, `a device named "${name}" exists and is not managed by Hostvisor`);
    if (net.nic !== undefined) checkNic(`${field}.nic`, net.nic);
    if (net.bonding !== undefined && !Object.hasOwn(desired.bondings, net.bonding)) bad(`${field}.bonding`, `bond "${net.bonding}" is not configured and not in this request`);
    const base = net.nic ?? net.bonding;
    if (base !== undefined && net.vlan !== undefined && vlanDeviceName(base, net.vlan).length > IFNAMSIZ) {
      bad(`${field}.vlan`, `the VLAN device name "${vlanDeviceName(base, net.vlan)}" is longer than ${IFNAMSIZ} characters`);
    }
    if (net.defaultRoute) reqDefault.push(name);
    desired.networks[name] = net;
    (exists ? out.networks.changed : out.networks.added).push(name);
  }

  // One default route: setting it on a network moves it away from the others.
  if (reqDefault.length > 1) bad(`networks.${reqDefault[1]}.defaultRoute`, `only one network may have defaultRoute (also set on "${reqDefault[0]}")`);
  if (reqDefault.length === 1) {
    for (const [n, net] of Object.entries(desired.networks)) if (n !== reqDefault[0] && net.defaultRoute) net.defaultRoute = false;
  }

  crossCheck(desired, new Set(Object.keys(req.networks)), new Set(Object.keys(req.bondings)));
  out.desired = sortedConfig(desired);
  return out;
}

function onlyRemove(field: string, attrs: NetworkAttrsT | BondAttrsT): void {
  const extra = Object.keys(attrs).filter((k) => k !== 'remove');
  if (extra.length) bad(`${field}.${extra[0]}`, 'a removal takes no other attributes');
}

export function canonicalOptions(o: { connectivityCheck?: boolean | 'true' | 'false'; connectivityTimeout?: number | string; commitOnSuccess?: boolean | 'true' | 'false' }): SetupOptionsCanonical {
  const sec = o.connectivityTimeout === undefined ? NETWORK_DEFAULTS.connectivityTimeoutSec : Number(o.connectivityTimeout);
  if (!Number.isFinite(sec) || sec < 0 || sec > CONNECTIVITY_TIMEOUT_MAX_SEC) bad('options.connectivityTimeout', `must be 0..${CONNECTIVITY_TIMEOUT_MAX_SEC} seconds`);
  return {
    connectivityCheck: bool(o.connectivityCheck, NETWORK_DEFAULTS.connectivityCheck),
    connectivityTimeoutMs: Math.round(sec * 1000),
    commitOnSuccess: bool(o.commitOnSuccess, false),
  };
}

function canonicalNetwork(name: string, a: NetworkAttrsT, field: string): NetworkConfigT {
  if (a.nic !== undefined && a.bonding !== undefined) bad(`${field}.bonding`, 'a network has a nic or a bonding, not both');
  const vlan = int(a.vlan);
  if (vlan !== undefined && (!Number.isInteger(vlan) || vlan < 0 || vlan > 4094)) bad(`${field}.vlan`, 'a VLAN id is 0..4094');
  const bridged = bool(a.bridged, NETWORK_DEFAULTS.bridged);
  const stp = bool(a.stp, NETWORK_DEFAULTS.stp);
  if (stp && !bridged) bad(`${field}.stp`, 'STP needs a bridged network');
  if (!bridged && a.nic === undefined && a.bonding === undefined) bad(`${field}.nic`, 'a bridgeless network needs a nic or a bonding');
  const mtu = int(a.mtu) ?? NETWORK_DEFAULTS.mtu;
  if (!Number.isInteger(mtu) || mtu < MTU_MIN || mtu > MTU_MAX) bad(`${field}.mtu`, `MTU must be ${MTU_MIN}..${MTU_MAX}`);

  // IPv4, nested or VDSM's flat names (not both).
  const flat4 = (['bootproto', 'ipaddr', 'netmask', 'prefix', 'gateway'] as const).filter((k) => a[k] !== undefined);
  if (a.ipv4 && flat4.length) bad(`${field}.${flat4[0]}`, 'give IPv4 either as ipv4 {…} or as flat attributes, not both');
  const v4 = a.ipv4 ?? { bootproto: a.bootproto, ipaddr: a.ipaddr, netmask: a.netmask, prefix: a.prefix, gateway: a.gateway };
  const f4 = (k: string) => (a.ipv4 ? `${field}.ipv4.${k}` : `${field}.${k}`);
  const bootproto = v4.bootproto ?? 'none';
  const ipv4: NetworkConfigT['ipv4'] = { bootproto };
  if (v4.ipaddr !== undefined) {
    if (bootproto === 'dhcp') bad(f4('ipaddr'), 'a static address and bootproto dhcp exclude each other');
    if (!isIPv4(v4.ipaddr)) bad(f4('ipaddr'), `"${v4.ipaddr}" is not an IPv4 address`);
    let prefix: number | undefined;
    if (v4.netmask !== undefined) {
      prefix = netmaskToPrefix(v4.netmask);
      if (prefix === undefined || prefix === 0) bad(f4('netmask'), `"${v4.netmask}" is not a valid netmask`);
    }
    const p = int(v4.prefix);
    if (p !== undefined) {
      if (!Number.isInteger(p) || p < 1 || p > 32) bad(f4('prefix'), 'an IPv4 prefix is 1..32');
      if (prefix !== undefined && prefix !== p) bad(f4('prefix'), `prefix ${p} disagrees with netmask ${v4.netmask}`);
      prefix = p;
    }
    if (prefix === undefined) bad(f4('netmask'), 'an address needs a netmask or a prefix');
    const b = subnetBounds4(v4.ipaddr, prefix)!;
    if (prefix <= 30 && (v4.ipaddr === b.network || v4.ipaddr === b.broadcast)) bad(f4('ipaddr'), `${v4.ipaddr}/${prefix} is the subnet's network or broadcast address`);
    ipv4.ipaddr = v4.ipaddr;
    ipv4.prefix = prefix;
    if (v4.gateway !== undefined) {
      if (!isIPv4(v4.gateway)) bad(f4('gateway'), `"${v4.gateway}" is not an IPv4 address`);
      if (v4.gateway === v4.ipaddr) bad(f4('gateway'), 'the gateway is the address itself');
      if (!inSubnet4(v4.gateway, v4.ipaddr, prefix)) bad(f4('gateway'), `${v4.gateway} is not in ${b.network}/${prefix}`);
      ipv4.gateway = v4.gateway;
    }
  } else {
    if (v4.netmask !== undefined) bad(f4('ipaddr'), 'a netmask needs an address');
    if (v4.prefix !== undefined) bad(f4('ipaddr'), 'a prefix needs an address');
    if (v4.gateway !== undefined) bad(f4('gateway'), bootproto === 'dhcp' ? 'with dhcp the gateway comes from the lease' : 'a gateway needs an address');
  }

  // IPv6, nested or flat.
  const flat6 = (['ipv6addr', 'ipv6gateway', 'ipv6autoconf', 'dhcpv6'] as const).filter((k) => a[k] !== undefined);
  if (a.ipv6 && flat6.length) bad(`${field}.${flat6[0]}`, 'give IPv6 either as ipv6 {…} or as flat attributes, not both');
  const v6 = a.ipv6 ?? { address: a.ipv6addr, gateway: a.ipv6gateway, autoconf: a.ipv6autoconf, dhcpv6: a.dhcpv6 };
  const f6 = (k: string, flat: string) => (a.ipv6 ? `${field}.ipv6.${k}` : `${field}.${flat}`);
  const ipv6: NetworkConfigT['ipv6'] = { autoconf: bool(v6.autoconf, false), dhcpv6: bool(v6.dhcpv6, false) };
  if (ipv6.dhcpv6) bad(f6('dhcpv6', 'dhcpv6'), 'DHCPv6 is not supported; use a static address or autoconf');
  if (v6.address !== undefined) {
    const c = parseIpv6Cidr(v6.address);
    if (!c) bad(f6('address', 'ipv6addr'), `"${v6.address}" is not ADDRESS/PREFIX (IPv6)`);
    if (/^fe[89ab]/i.test(c.address)) bad(f6('address', 'ipv6addr'), 'a link-local address is configured by the kernel');
    ipv6.address = `${c.address}/${c.prefix}`;
  }
  if (v6.gateway !== undefined) {
    const g = normalizeIpv6(v6.gateway);
    if (!g) bad(f6('gateway', 'ipv6gateway'), `"${v6.gateway}" is not an IPv6 address`);
    if (ipv6.address === undefined && !ipv6.autoconf) bad(f6('gateway', 'ipv6gateway'), 'a gateway needs an address or autoconf');
    ipv6.gateway = g;
  }

  const defaultRoute = bool(a.defaultRoute, MANAGEMENT_NETWORKS.includes(name));
  if (defaultRoute && ipv4.ipaddr !== undefined && ipv4.gateway === undefined) bad(f4('gateway'), 'the defaultRoute network needs a gateway');
  const nameservers = a.nameservers ?? [];
  nameservers.forEach((s) => { if (!isIP(s)) bad(`${field}.nameservers`, `"${s}" is not an IP address`); });
  if (nameservers.length && !defaultRoute) bad(`${field}.nameservers`, 'only the defaultRoute network may set nameservers');
  if (nameservers.length > 3) bad(`${field}.nameservers`, 'at most 3 nameservers (the resolver uses no more)');

  const net: NetworkConfigT = { bridged, stp, mtu, ipv4, ipv6, defaultRoute, nameservers: [...nameservers] };
  if (a.nic !== undefined) net.nic = a.nic;
  if (a.bonding !== undefined) net.bonding = a.bonding;
  if (vlan !== undefined) net.vlan = vlan;
  return net;
}

/** Checks that need the whole desired config: shared devices, bonds in use, MTUs. */
function crossCheck(d: NetConfigT, reqNets: Set<string>, reqBonds: Set<string>): void {
  const netField = (n: string, k: string) => `networks.${n}.${k}`;
  // A bond that is removed must not be used by a remaining network.
  for (const [n, net] of Object.entries(d.networks)) {
    if (net.bonding !== undefined && !Object.hasOwn(d.bondings, net.bonding)) {
      bad(reqNets.has(n) ? netField(n, 'bonding') : `bondings.${net.bonding}.remove`, `bond "${net.bonding}" is used by network "${n}"`);
    }
  }
  // A nic is a slave of one bond at most, and then carries no network itself.
  const slaveOf = new Map<string, string>();
  for (const [b, bond] of Object.entries(d.bondings)) {
    for (const nic of bond.nics) {
      const other = slaveOf.get(nic);
      if (other !== undefined) bad(`bondings.${reqBonds.has(b) ? b : other}.nics`, `nic "${nic}" is a slave of both "${other}" and "${b}"`);
      slaveOf.set(nic, b);
    }
  }
  const byBase = new Map<string, string[]>();
  for (const [n, net] of Object.entries(d.networks)) {
    if (net.nic !== undefined && slaveOf.has(net.nic)) {
      const b = slaveOf.get(net.nic)!;
      bad(reqNets.has(n) ? netField(n, 'nic') : `bondings.${b}.nics`, `nic "${net.nic}" is a slave of bond "${b}" and used by network "${n}"`);
    }
    const base = net.nic ?? net.bonding;
    if (base !== undefined) byBase.set(base, [...(byBase.get(base) ?? []), n]);
    // A bridge name must not clash with a nic or bond name.
    if (net.bridged && (Object.hasOwn(d.bondings, n) || slaveOf.has(n) || [...Object.values(d.networks)].some((o) => o.nic === n))) {
      bad(`networks.${n}`, `the bridge "${n}" would clash with a nic or bond of the same name`);
    }
  }
  // Per base device: one untagged network, distinct VLAN ids, consistent MTUs.
  for (const [base, nets] of byBase) {
    const ordered = [...nets].sort((x, y) => Number(reqNets.has(x)) - Number(reqNets.has(y))); // report on a requested network
    const untagged = ordered.filter((n) => d.networks[n]!.vlan === undefined);
    if (untagged.length > 1) bad(netField(untagged[1]!, d.networks[untagged[1]!]!.nic ? 'nic' : 'bonding'), `"${base}" already carries the untagged network "${untagged[0]}"`);
    const ids = new Map<number, string>();
    for (const n of ordered) {
      const id = d.networks[n]!.vlan;
      if (id === undefined) continue;
      if (ids.has(id)) bad(netField(n, 'vlan'), `VLAN ${id} on "${base}" is already network "${ids.get(id)}"`);
      ids.set(id, n);
    }
    if (untagged.length === 1) {
      const u = untagged[0]!;
      for (const n of ordered) {
        if (n !== u && d.networks[n]!.mtu > d.networks[u]!.mtu) {
          bad(netField(reqNets.has(n) ? n : u, 'mtu'), `the MTU of VLAN network "${n}" (${d.networks[n]!.mtu}) exceeds that of the untagged network "${u}" (${d.networks[u]!.mtu}) on "${base}"`);
        }
      }
    }
  }
}
