// The setupNetworks request model, with VDSM's attribute names, and the
// canonical network config the rest of agent/network works with.
//
// Two shapes:
// - the *request* (SetupNetworksParams): what an engine sends. It is loose on
//   purpose, like VDSM's: booleans may come as 'true'/'false', numbers as
//   strings, and VDSM's flat IP attribute names (ipaddr, netmask, ipv6addr…)
//   are accepted beside the nested ipv4/ipv6 objects. The TypeBox schemas
//   check types and refuse unknown attributes; canonicalize.ts checks meaning.
// - the *config* (NetConfig): the canonical, defaults-filled form. It is what
//   the running and safe configs persist (persist.ts), what topology.ts turns
//   into devices, and what getNetworkCapabilities reports as "networks".
import { Type, type Static } from '@sinclair/typebox';

/** A boolean as VDSM's engines send it. */
const Bool = Type.Union([Type.Boolean(), Type.Literal('true'), Type.Literal('false')]);
/** An integer, possibly as a decimal string. */
const Int = Type.Union([Type.Integer(), Type.String({ pattern: '^[0-9]{1,10}$' })]);
const Str = Type.String({ maxLength: 256 });

export const Ipv4Attrs = Type.Object({
  bootproto: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('dhcp')])),
  ipaddr: Type.Optional(Str),
  netmask: Type.Optional(Str),
  prefix: Type.Optional(Int),
  gateway: Type.Optional(Str),
}, { additionalProperties: false });

export const Ipv6Attrs = Type.Object({
  address: Type.Optional(Str),
  gateway: Type.Optional(Str),
  autoconf: Type.Optional(Bool),
  dhcpv6: Type.Optional(Bool),
}, { additionalProperties: false, description: 'address is "ADDR/PREFIX"' });

export const NetworkAttrs = Type.Object({
  remove: Type.Optional(Bool),
  nic: Type.Optional(Str),
  bonding: Type.Optional(Str),
  vlan: Type.Optional(Int),
  bridged: Type.Optional(Bool),
  stp: Type.Optional(Bool),
  mtu: Type.Optional(Int),
  ipv4: Type.Optional(Ipv4Attrs),
  ipv6: Type.Optional(Ipv6Attrs),
  defaultRoute: Type.Optional(Bool),
  nameservers: Type.Optional(Type.Array(Str, { maxItems: 16 })),
  switch: Type.Optional(Type.Literal('legacy', { description: 'only the legacy (Linux bridge) switch is supported' })),
  // VDSM's flat names, folded into ipv4/ipv6 by canonicalize.
  bootproto: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('dhcp')])),
  ipaddr: Type.Optional(Str),
  netmask: Type.Optional(Str),
  prefix: Type.Optional(Int),
  gateway: Type.Optional(Str),
  ipv6addr: Type.Optional(Str),
  ipv6gateway: Type.Optional(Str),
  ipv6autoconf: Type.Optional(Bool),
  dhcpv6: Type.Optional(Bool),
}, { additionalProperties: false });

export const BondAttrs = Type.Object({
  remove: Type.Optional(Bool),
  nics: Type.Optional(Type.Array(Str, { maxItems: 64 })),
  options: Type.Optional(Type.String({ maxLength: 1024, description: 'kernel bonding options, e.g. "mode=4 miimon=100"' })),
  hwaddr: Type.Optional(Str),
  switch: Type.Optional(Type.Literal('legacy')),
}, { additionalProperties: false });

export const SetupOptions = Type.Object({
  connectivityCheck: Type.Optional(Type.Union([Type.Boolean(), Type.Literal('true'), Type.Literal('false')], { description: 'wait for the engine to confirm, roll back if it does not (default true)' })),
  connectivityTimeout: Type.Optional(Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?$' })], { description: 'seconds (default 4)' })),
  commitOnSuccess: Type.Optional(Type.Union([Type.Boolean(), Type.Literal('true'), Type.Literal('false')], { description: 'also persist the result as the safe config (default false)' })),
}, { additionalProperties: false });

export const SetupNetworksParams = Type.Object({
  networks: Type.Record(Type.String(), NetworkAttrs, { description: 'network name → its complete attributes (replacing the running ones), or {remove: true}; networks not named are left alone' }),
  bondings: Type.Record(Type.String(), BondAttrs, { description: 'bond name (bond…) → its attributes, or {remove: true}' }),
  options: Type.Optional(SetupOptions),
});

export type Ipv4AttrsT = Static<typeof Ipv4Attrs>;
export type Ipv6AttrsT = Static<typeof Ipv6Attrs>;
export type NetworkAttrsT = Static<typeof NetworkAttrs>;
export type BondAttrsT = Static<typeof BondAttrs>;
export type SetupOptionsT = Static<typeof SetupOptions>;
export type SetupNetworksRequest = Static<typeof SetupNetworksParams>;

// ---- canonical config ----

export const Ipv4Config = Type.Object({
  bootproto: Type.Union([Type.Literal('none'), Type.Literal('dhcp')]),
  ipaddr: Type.Optional(Type.String()),
  prefix: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
  gateway: Type.Optional(Type.String()),
});

export const Ipv6Config = Type.Object({
  /** Normalized "addr/prefix" (RFC 5952 text, as iproute2 prints it). */
  address: Type.Optional(Type.String()),
  gateway: Type.Optional(Type.String()),
  autoconf: Type.Boolean(),
  dhcpv6: Type.Boolean(),
});

export const NetworkConfig = Type.Object({
  nic: Type.Optional(Type.String()),
  bonding: Type.Optional(Type.String()),
  vlan: Type.Optional(Type.Integer({ minimum: 0, maximum: 4094 })),
  bridged: Type.Boolean(),
  stp: Type.Boolean(),
  mtu: Type.Integer(),
  ipv4: Ipv4Config,
  ipv6: Ipv6Config,
  defaultRoute: Type.Boolean(),
  nameservers: Type.Array(Type.String()),
});

export const BondConfig = Type.Object({
  nics: Type.Array(Type.String()),
  /** Canonical option string: mode first (by name), then the rest sorted, e.g. "mode=802.3ad miimon=100". */
  options: Type.String(),
  hwaddr: Type.Optional(Type.String()),
});

export const NetConfig = Type.Object({
  networks: Type.Record(Type.String(), NetworkConfig),
  bondings: Type.Record(Type.String(), BondConfig),
});

export type Ipv4ConfigT = Static<typeof Ipv4Config>;
export type Ipv6ConfigT = Static<typeof Ipv6Config>;
export type NetworkConfigT = Static<typeof NetworkConfig>;
export type BondConfigT = Static<typeof BondConfig>;
export type NetConfigT = Static<typeof NetConfig>;

export interface SetupOptionsCanonical {
  connectivityCheck: boolean;
  /** Milliseconds. */
  connectivityTimeoutMs: number;
  commitOnSuccess: boolean;
}

/** Defaults that come from VDSM (§5 of the reference): mtu 1500, bridged, no STP, a 4 s connectivity timeout. */
export const NETWORK_DEFAULTS = {
  mtu: 1500,
  bridged: true,
  stp: false,
  connectivityCheck: true,
  connectivityTimeoutSec: 4,
  bondMode: 'balance-rr',
} as const;

/** The networks that get defaultRoute when the request does not say (VDSM's legacy management names). */
export const MANAGEMENT_NETWORKS: readonly string[] = ['ovirtmgmt', 'rhevm'];

export const emptyConfig = (): NetConfigT => ({ networks: {}, bondings: {} });

/** A deep copy with keys in a stable order, so configs compare and persist byte-for-byte. */
export function sortedConfig(c: NetConfigT): NetConfigT {
  const out: NetConfigT = { networks: {}, bondings: {} };
  for (const k of Object.keys(c.networks).sort()) out.networks[k] = structuredClone(c.networks[k]!);
  for (const k of Object.keys(c.bondings).sort()) out.bondings[k] = structuredClone(c.bondings[k]!);
  return out;
}

/** Deep equality of two configs (key order does not matter). */
export function sameConfig(a: NetConfigT, b: NetConfigT): boolean {
  return stableJson(a) === stableJson(b);
}

export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) => {
    if (val && typeof val === 'object' && !Array.isArray(val)) {
      return Object.fromEntries(Object.entries(val as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
    }
    return val;
  });
}
