// A cluster network: applied to every host of the cluster through that host's nic.
import { Type, type Static } from '@sinclair/typebox';
import { EpochMs, Id } from './common.js';
import { PerHostStatus } from './storage.js';

// Linux interface names: at most 15 characters (IFNAMSIZ - 1).
export const NetName = Type.String({ minLength: 1, maxLength: 15, pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$' });
export const DEFAULT_MTU = 1500;
/** The nic map's entry for every host it does not name: hosts enrolled later get the network on that nic. */
export const ANY_HOST = '*';

export const Network = Type.Object({
  id: Id,
  clusterId: Id,
  name: NetName,
  vlan: Type.Union([Type.Integer({ minimum: 1, maximum: 4094 }), Type.Null()]),
  mtu: Type.Integer({ minimum: 68, maximum: 9216 }),
  bridged: Type.Boolean(),
  required: Type.Boolean({ description: 'a host without it is NonOperational' }),
  nics: Type.Record(Type.String(), NetName, { description: `host id -> the nic the network goes on; "${ANY_HOST}": the nic of every other host of the cluster` }),
  hosts: PerHostStatus,
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type Network = Static<typeof Network>;
