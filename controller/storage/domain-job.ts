// The storage-domain.create job: the domain is made on storage through one Up host of its
// cluster (StorageDomain.create with the record's id as the domain's UUID); the cluster's first
// domain is its pool master, and the pool's id is chosen and recorded with it. The agents have
// no "create pool" verb: a pool is its id, its master domain and its domains, and comes to be
// on each host with StoragePool.connect, which the pool connector makes. The job ends once a
// host sees the new domain through the pool.
//
// Resumed after a controller restart, each step checks what is already done: the domain's UUID
// is fixed (the record's id), so an agent answering 365 (it exists) means an earlier run made
// it; the pool id is chosen once and recorded before any host connects with it.
import { randomUUID } from 'node:crypto';
import type { JobContext } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { StorageDomain } from '../model/storage.js';
import type { Host } from '../model/hosts.js';
import { ERRORS } from '../../api/errors.js';
import { agentCode, answered, errorText } from './agent-answer.js';
import type { StorageDeps } from './storage-deps.js';
import { sleepOrAbort } from './sleep.js';

export function domainCreateJob(deps: StorageDeps) {
  return async (ctx: JobContext): Promise<void> => {
    const { store } = deps;
    const domain = await store.storageDomains.get(ctx.job.targetId);
    if (domain.status === 'active' || domain.status === 'inactive') {
      // Made by an earlier run; only the waiting was left.
      ctx.log('info', 'the storage domain exists already (an earlier run made it)', { domain: domain.id });
    } else {
      await ctx.step('StorageDomain.create', () => createOnStorage(deps, ctx, domain).catch(async (e: unknown) => {
        await store.storageDomains.update(domain.id, { status: 'failed' });
        throw e;
      }));
    }
    await ctx.progress(60);
    const cluster = await store.clusters.get(domain.clusterId);
    if (domain.master && cluster.poolId === null) {
      await ctx.step('choose the pool id', async () => {
        const poolId = ctx.memo<string>('poolId') ?? randomUUID();
        await ctx.remember('poolId', poolId);
        await store.clusters.setPool(cluster.id, poolId);
        await store.event({ kind: 'storage-pool.created', subjectKind: 'cluster', subjectId: cluster.id, correlationId: ctx.correlationId,
          message: `cluster ${cluster.name}: pool ${poolId} with master domain ${domain.name}`, details: { poolId, masterDomainId: domain.id } });
      });
    }
    // Created: from here its status is what the hosts see (the connector moves it to active).
    if (domain.status !== 'active') await store.storageDomains.update(domain.id, { status: 'inactive' });
    deps.connector.loop.kick();
    await ctx.progress(70);
    await ctx.step('a host sees it through the pool', () => waitUntilSeen(deps, ctx, domain));
  };
}

/** Answers that say the host could not do it now (recovering, stopping, no answer in time), not that it cannot. */
const NOT_NOW = new Set<number>([ERRORS.recovery.code, ERRORS.shuttingDown.code, ERRORS.requestTimeout.code]);

async function createOnStorage(deps: StorageDeps, ctx: JobContext, domain: StorageDomain): Promise<void> {
  const until = Date.now() + deps.settings.spmWaitMs;
  for (;;) {
    const host = await upHost(deps, ctx, domain.clusterId);
    ctx.log('info', 'creating the storage domain', { hostId: host.id, domain: domain.id, spec: domain.spec });
    try {
      await deps.runtime.links.call(host.id, 'StorageDomain.create', { storagedomainID: domain.id, spec: domain.spec, description: domain.name },
        { correlationId: ctx.correlationId, timeoutMs: deps.settings.agentCallTimeoutMs });
      return;
    } catch (e) {
      // The UUID is this record's: a domain that has it was made by an earlier attempt or run of this job.
      if (answered(e, 'storageDomainAlreadyExists')) {
        ctx.log('info', 'the storage domain exists already: an earlier attempt made it', { hostId: host.id, domain: domain.id });
        return;
      }
      const code = agentCode(e);
      if ((code !== undefined && !NOT_NOW.has(code)) || Date.now() > until) throw e;
      ctx.log('info', 'the host could not create the domain now: trying again', { hostId: host.id, error: errorText(e) });
      await sleepOrAbort(2_000, ctx.signal);
    }
  }
}

/** An Up host of the cluster whose agent is connected (waits for one, within spmWaitMs). */
async function upHost(deps: StorageDeps, ctx: JobContext, clusterId: string): Promise<Host> {
  const until = Date.now() + deps.settings.spmWaitMs;
  for (;;) {
    const hosts = await deps.store.hosts.list({ clusterId });
    const up = hosts.find((h) => deps.runtime.monitor.health(h.id)?.status === 'Up' && deps.runtime.links.get(h.id)?.state.phase === 'connected');
    if (up) return up;
    if (Date.now() > until) {
      throw new JobFailure('NoHostUp', `no host of the cluster is Up to create the storage domain on (waited ${deps.settings.spmWaitMs / 1000} s)`,
        { clusterId, hosts: hosts.map((h) => ({ id: h.id, status: deps.runtime.monitor.health(h.id)?.status ?? h.status })) });
    }
    await sleepOrAbort(1_000, ctx.signal);
  }
}

async function waitUntilSeen(deps: StorageDeps, ctx: JobContext, domain: StorageDomain): Promise<void> {
  const until = Date.now() + deps.settings.domainConnectWaitMs;
  for (;;) {
    const d = await deps.store.storageDomains.get(domain.id);
    if (d.status === 'active') return;
    if (Date.now() > until) {
      throw new JobFailure('DomainNotConnected',
        `storage domain ${d.name} exists, but no host saw it through the pool within ${deps.settings.domainConnectWaitMs / 1000} s; the controller keeps connecting the hosts`,
        { domainId: d.id, hosts: d.hosts });
    }
    await sleepOrAbort(500, ctx.signal);
  }
}

