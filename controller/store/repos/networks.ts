// Cluster networks: what each host should have; the per-host status is written as they are applied.
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { ANY_HOST, type Network } from '../../model/networks.js';
import { flag, insertUnique, isSet, json, parseJson } from '../codec.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { KeyedRepo } from './by-id.js';
import type { Database, NetworkRow } from '../tables.js';

function toNetwork(r: Selectable<NetworkRow>): Network {
  return {
    id: r.id, clusterId: r.cluster_id, name: r.name, vlan: r.vlan, mtu: r.mtu, bridged: isSet(r.bridged), required: isSet(r.required),
    nics: parseJson<Record<string, string>>(r.host_nics, {}), hosts: parseJson<Record<string, string>>(r.host_status, {}),
    createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export type NewNetwork = Pick<Network, 'clusterId' | 'name' | 'vlan' | 'mtu' | 'bridged' | 'required' | 'nics'>;

export class NetworksRepo extends KeyedRepo<Network> {
  constructor(db: Kysely<Database>, now: () => number) {
    super(db, now, 'networks', 'network', toNetwork, ['name']);
  }

  async create(n: NewNetwork): Promise<Network> {
    const t = this.now();
    const row: NetworkRow = {
      id: randomUUID(), cluster_id: n.clusterId, name: n.name, vlan: n.vlan, mtu: n.mtu, bridged: flag(n.bridged), required: flag(n.required),
      host_nics: json(n.nics), host_status: json(Object.fromEntries(Object.keys(n.nics).filter((h) => h !== ANY_HOST).map((h) => [h, 'pending']))), created_at: t, updated_at: t,
    };
    await insertUnique(() => this.db.insertInto('networks').values(row).execute(),
      () => new ConflictError(`the cluster has a network named ${n.name}`, { field: 'name' }));
    return toNetwork(row);
  }

  /**
   * Changes what hosts should have: nics are merged into the map (a host newly named starts
   * 'pending'; a host whose nic changed too, as it is to be set up again; the '*' entry has no
   * status of its own); required replaces.
   */
  async update(id: string, change: { nics?: Record<string, string>; required?: boolean }): Promise<Network> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx.selectFrom('networks').selectAll().where('id', '=', id).executeTakeFirst();
      if (!r) throw new NotFoundError('network', id);
      const nics = parseJson<Record<string, string>>(r.host_nics, {});
      const hosts = parseJson<Record<string, string>>(r.host_status, {});
      for (const [hostId, nic] of Object.entries(change.nics ?? {})) {
        if (nics[hostId] !== nic && hostId !== ANY_HOST) hosts[hostId] = 'pending';
        nics[hostId] = nic;
      }
      const set = { host_nics: json(nics), host_status: json(hosts), updated_at: this.now(), ...(change.required !== undefined && { required: flag(change.required) }) };
      await trx.updateTable('networks').set(set).where('id', '=', id).execute();
      return toNetwork({ ...r, ...set });
    });
  }

  async setHostStatus(id: string, hostId: string, status: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const r = await trx.selectFrom('networks').select('host_status').where('id', '=', id).executeTakeFirst();
      if (!r) throw new NotFoundError('network', id);
      const hosts = { ...parseJson<Record<string, string>>(r.host_status, {}), [hostId]: status };
      await trx.updateTable('networks').set({ host_status: json(hosts), updated_at: this.now() }).where('id', '=', id).execute();
    });
  }
}
