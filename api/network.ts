// The network verbs' result shapes (TypeBox), used by api/methods/
// (Host.setupNetworks, Host.getNetworkCapabilities, and the network part of
// Host.getCapabilities) and, as static types, by caps.ts and index.ts, so the
// wire format and the code cannot drift apart. Field names follow VDSM's caps
// (ipv4addrs, gateway, ports, slaves…) where VDSM has them.
import { Type, type Static } from '@sinclair/typebox';

const Str = Type.String();
const Strs = Type.Array(Type.String());
const PhasesMs = Type.Record(Type.String(), Type.Number(), { description: 'ms per phase (validate, hooks, snapshot, apply, confirm, rollback, persist)' });

export const DeviceCaps = Type.Object({
  mtu: Type.Integer(),
  hwaddr: Str,
  up: Type.Boolean(),
  ipv4addrs: Type.Array(Str, { description: '"addr/prefix"' }),
  ipv6addrs: Type.Array(Str, { description: 'global ones, "addr/prefix"' }),
  addr: Type.String({ description: "first IPv4 address ('' if none)" }),
  netmask: Str,
  gateway: Type.String({ description: "gateway of a default route through this device ('' if none)" }),
  ipv6gateway: Str,
  dhcpv4: Type.Boolean({ description: 'a DHCP client of ours runs on it' }),
});

export const NetworkCaps = Type.Object({
  ...DeviceCaps.properties,
  iface: Type.String({ description: 'the device carrying the IP config: the bridge, or the nic/bond/VLAN of a bridgeless network' }),
  bridged: Type.Boolean(),
  southbound: Type.String({ description: 'the nic, bond or VLAN device under the network' }),
  ports: Strs,
  stp: Type.Boolean(),
  vlanid: Type.Optional(Type.Integer()),
  nic: Type.Optional(Str),
  bond: Type.Optional(Str),
  defaultRoute: Type.Boolean(),
  switch: Type.Literal('legacy'),
});

export const RollbackReport = Type.Object({
  verified: Type.Boolean({ description: 'a capture after the rollback equals the one taken before the change (links, addresses, routes)' }),
  diff: Type.Array(Str, { description: 'what still differs ("path: before → after"); empty when verified' }),
  steps: Strs,
  errors: Strs,
  impossible: Strs,
  attempts: Type.Integer(),
  probe: Type.Optional(Type.Boolean()),
  ms: Type.Number(),
});

const Changes = Type.Object({ added: Strs, changed: Strs, removed: Strs });

export const SetupOutcome = Type.Union([
  Type.Literal('applied'), Type.Literal('rolledBack'), Type.Literal('rollbackUnverified'), Type.Literal('refused'),
], { description: 'applied; rolledBack (and verified); rollbackUnverified (the host may differ from before: see rollback.diff); refused (nothing was changed)' });

export const LastSetup = Type.Object({
  seq: Type.Integer({ description: 'counts the setupNetworks calls that ran since the agent started' }),
  startedAt: Type.String({ description: 'ISO time' }),
  finishedAt: Type.String(),
  outcome: SetupOutcome,
  code: Type.Optional(Type.Integer({ description: 'the error code the call answered with' })),
  message: Type.Optional(Str),
  reason: Type.Optional(Type.Union([Type.Literal('applyFailed'), Type.Literal('connectivityLost'), Type.Literal('persistFailed')], {
    description: 'why the change was rolled back: the apply failed; no confirmation came in time (or the agent stopped first); or it was applied but recording it (running.json, and safe.json with commitOnSuccess) failed',
  })),
  confirmed: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  rollback: Type.Optional(RollbackReport),
  networks: Type.Optional(Changes),
  bondings: Type.Optional(Changes),
  phasesMs: PhasesMs,
});

export const NetworkCapabilities = Type.Object({
  nics: Type.Record(Type.String(), DeviceCaps),
  bridges: Type.Record(Type.String(), Type.Object({ ...DeviceCaps.properties, ports: Strs, stp: Type.Union([Type.Literal('on'), Type.Literal('off')]) })),
  vlans: Type.Record(Type.String(), Type.Object({ ...DeviceCaps.properties, iface: Str, vlanid: Type.Integer() })),
  bondings: Type.Record(Type.String(), Type.Object({ ...DeviceCaps.properties, slaves: Strs, opts: Type.Object({ mode: Type.Optional(Str) }) })),
  networks: Type.Record(Type.String(), NetworkCaps, { description: 'the managed networks (running config) present on the host, with their live state' }),
  netConfigDirty: Type.Boolean({ description: 'the running config differs from the one persisted by setSafeNetworkConfig' }),
  lastSetup: Type.Optional(LastSetup),
});

export const SetupNetworksResult = Type.Object({
  status: Type.Literal('applied'),
  confirmed: Type.Union([Type.Boolean(), Type.Null()], { description: 'the engine confirmed connectivity in time; null when connectivityCheck was off' }),
  networks: Changes,
  bondings: Changes,
  steps: Type.Array(Str, { description: 'the commands run, in order' }),
  leases: Type.Record(Type.String(), Type.Object({
    address: Str, prefix: Type.Integer(), router: Type.Optional(Str), leaseSec: Type.Optional(Type.Integer()), dns: Strs,
  }), { description: 'DHCP leases obtained, by device' }),
  committed: Type.Boolean({ description: 'commitOnSuccess: the config was also persisted as the safe one' }),
  netConfigDirty: Type.Boolean(),
  phasesMs: PhasesMs,
});

export type DeviceCapsT = Static<typeof DeviceCaps>;
export type NetworkCapsT = Static<typeof NetworkCaps>;
export type NetworkCapabilitiesT = Static<typeof NetworkCapabilities>;
export type LastSetupT = Static<typeof LastSetup>;
export type SetupNetworksResultT = Static<typeof SetupNetworksResult>;
export type RollbackReportT = Static<typeof RollbackReport>;
