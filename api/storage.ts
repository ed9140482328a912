// Result shapes (TypeBox) of Host.getStorageRepoStats and StoragePool.getInfo,
// used by api/methods/ and, as static types, by the pool, so the wire
// format and the code cannot drift apart. Field names are VDSM's; numbers
// are numbers (VDSM sends delay, lastCheck and the disk sizes as strings).
import { Type, type Static } from '@sinclair/typebox';
import { Uuid } from './types.js';

export const RepoStat = Type.Object({
  valid: Type.Boolean({ description: 'the last check could read the domain metadata (true before the first check, as in VDSM)' }),
  code: Type.Integer({ description: '0 when valid; else 379 the domain is not reachable (its metadata cannot be activated, or its VG is gone), 2001 the read failed or timed out, 371 what was read is not domain metadata' }),
  error: Type.Optional(Type.String({ description: 'why the domain is invalid (not in VDSM)' })),
  delay: Type.Number({ description: 's, the last O_DIRECT read of the metadata head (dd\'s own figure)' }),
  lastCheck: Type.Number({ description: 's since the last check finished (since the monitor started, before the first)' }),
  acquired: Type.Boolean({ description: "this host's id is live in the domain's sanlock lockspace" }),
  actual: Type.Boolean({ description: 'the monitor has finished at least one check' }),
  version: Type.Integer({ description: 'domain metadata version; -1 until read' }),
});
export type RepoStat = Static<typeof RepoStat>;

export const RepoStats = Type.Record(Uuid, RepoStat, { description: 'sdUUID → the monitor\'s view of the domain' });

export const PoolDomainInfo = Type.Object({
  status: Type.Union([Type.Literal('Active'), Type.Literal('Unknown'), Type.Literal('Inactive')], {
    description: 'Active: the monitor reads it; Unknown: not checked yet; Inactive: the last check failed (see alerts)',
  }),
  role: Type.Union([Type.Literal('Master'), Type.Literal('Regular')]),
  type: Type.Union([Type.Literal('file'), Type.Literal('block')]),
  version: Type.Integer({ description: 'domain metadata version; -1 until read' }),
  alerts: Type.Array(Type.Object({ code: Type.Integer(), message: Type.String() })),
  disktotal: Type.Optional(Type.Number({ description: 'bytes, from the last refresh' })),
  diskfree: Type.Optional(Type.Number({ description: 'bytes, from the last refresh' })),
});
export type PoolDomainInfo = Static<typeof PoolDomainInfo>;

export const PoolInfo = Type.Object({
  info: Type.Object({
    spUUID: Uuid,
    pool_status: Type.Literal('connected'),
    master_uuid: Uuid,
    master_ver: Type.Integer({ description: 'as given to StoragePool.connect' }),
    hostID: Type.Integer({ description: "this host's id in the pool" }),
    spmStatus: Type.Union([Type.Literal('Free'), Type.Literal('SPM'), Type.Literal('Contend'), Type.Literal('Unknown')], {
      description: "this host's role: SPM; Contend (its spmStart is running); Free (not SPM: spm_id names the lease holder, -1 when nobody holds it); "
        + 'Unknown (not SPM, and the lease could not be read within storage.monitorReadTimeoutMs, so whether another host holds it is not known; '
        + 'spm_id and lver are -1). Free is never reported for a lease that was not read',
    }),
    spm_id: Type.Integer({ description: 'host id of the SPM lease holder; -1 when nobody holds it, or when spmStatus is Unknown' }),
    lver: Type.Integer({ description: 'SPM lease version; -1 when nobody holds it, or when spmStatus is Unknown' }),
  }),
  dominfo: Type.Record(Uuid, PoolDomainInfo, {
    description: 'sdUUID → {status: Active (the monitor reads it) | Unknown (not checked yet) | Inactive (the last check failed, see alerts), role: Master | Regular, type: file | block, version (-1 until read), alerts: [{code, message}], disktotal, diskfree (bytes, from the last refresh)}',
  }),
});
export type PoolInfo = Static<typeof PoolInfo>;
