// The pool a cluster should have, from the store: its id, its master domain and every created
// domain with its spec (what StoragePool.connect takes); and how a host's view of one domain
// reads in the domain's record. Pure.
import type { Cluster } from '../model/clusters.js';
import type { DomainSpec, StorageDomain } from '../model/storage.js';
import type { HostPoolView } from './pool-state.js';

export interface PoolPlan {
  clusterId: string;
  poolId: string;
  masterId: string;
  /** every created domain of the cluster, by id */
  domains: Record<string, DomainSpec>;
}

/** Created on storage: the job made it (its status then follows what the hosts see). */
export function domainCreated(d: StorageDomain): boolean {
  return d.status === 'active' || d.status === 'inactive';
}

/** null until the cluster has a pool id and its master domain was created. */
export function poolOf(c: Cluster, domains: readonly StorageDomain[]): PoolPlan | null {
  const created = domains.filter(domainCreated);
  const master = created.find((d) => d.master);
  if (c.poolId === null || master === undefined) return null;
  return { clusterId: c.id, poolId: c.poolId, masterId: master.id, domains: Object.fromEntries(created.map((d) => [d.id, d.spec])) };
}

/** The status of domain `sdId` on one host, as GET /storage-domains/{id} shows it. */
export function hostDomainStatus(view: HostPoolView | undefined, sdId: string): string {
  if (view === undefined) return 'unknown: not observed yet';
  switch (view.state) {
    case 'unknown': return `unknown: ${view.error ?? 'no answer'}`;
    case 'connecting': return 'connecting';
    case 'disconnected': return `not connected: ${view.error ?? 'no reason known'}`;
    case 'connected': {
      const d = view.domains[sdId];
      if (d === undefined) return 'not attached: the host is connected to the pool without this domain';
      if (d.valid) return d.acquired ? 'active' : 'active (host id not yet acquired)';
      return `unreachable: ${d.code}${d.error ? ` ${d.error}` : ''}`;
    }
  }
}
