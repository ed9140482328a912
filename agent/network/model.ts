// The canonical network config the rest of agent/network works with. The
// *request* (SetupNetworksParams, what an engine sends) is a wire shape and
// lives in the API package (api/network-request.ts); it is re-exported here.
// - the *config* (NetConfig): the canonical, defaults-filled form. It is what
//   the running and safe configs persist (persist.ts), what topology.ts turns
//   into devices, and what getNetworkCapabilities reports as "networks".
import { Type, type Static } from '@sinclair/typebox';

export {
  Ipv4Attrs, Ipv6Attrs, NetworkAttrs, BondAttrs, SetupOptions, SetupNetworksParams,
  type Ipv4AttrsT, type Ipv6AttrsT, type NetworkAttrsT, type BondAttrsT, type SetupOptionsT, type SetupNetworksRequest,
  CONNECTIVITY_TIMEOUT_MAX_SEC, setupNetworksTimeoutMs,
} from '../../api/network-request.js';
import { CONNECTIVITY_TIMEOUT_DEFAULT_SEC } from '../../api/network-request.js';

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
  connectivityTimeoutSec: CONNECTIVITY_TIMEOUT_DEFAULT_SEC,
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
