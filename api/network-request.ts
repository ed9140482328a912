// The setupNetworks request (VDSM's attribute names), as an engine sends it.
// It is loose on purpose, like VDSM's: booleans may come as 'true'/'false',
// numbers as strings, and VDSM's flat IP attribute names (ipaddr, netmask,
// ipv6addr…) are accepted beside the nested ipv4/ipv6 objects. The schemas
// check types and refuse unknown attributes; the agent's canonicalize.ts
// checks meaning.
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

/** The engine's confirmation wait when a setupNetworks does not say (VDSM's 4 s), and the longest it may ask for (an hour). */
export const CONNECTIVITY_TIMEOUT_DEFAULT_SEC = 4;
export const CONNECTIVITY_TIMEOUT_MAX_SEC = 3600;

/**
 * How long a setupNetworks call may run before the agent answers 1007: the
 * ordinary request timeout plus the connectivity wait and two DHCP waits
 * (apply, rollback), so a slow but normal call is not cut short.
 */
export function setupNetworksTimeoutMs(params: unknown, requestTimeoutMs: number, dhcpTimeoutMs: number): number {
  const raw = (params as { options?: { connectivityTimeout?: unknown } } | undefined)?.options?.connectivityTimeout;
  const sec = Number(raw ?? CONNECTIVITY_TIMEOUT_DEFAULT_SEC);
  return requestTimeoutMs + (Number.isFinite(sec) ? Math.min(sec, CONNECTIVITY_TIMEOUT_MAX_SEC) * 1000 : 0) + 2 * dhcpTimeoutMs;
}
