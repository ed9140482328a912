// hostvisor-ctl disks copy|move: a disk copied or moved to another storage domain of its pool,
// waiting with a progress bar (qemu-img's, through the job) unless --no-wait; and
// hostvisor-ctl jobs cancel: stops a cancellable job (a copy or move is rolled back).
import type { Command } from 'commander';
import type { Job } from '../../model/jobs.js';
import { afterAction, resolveRef, type CliEnv } from './cli-env.js';

export function registerDiskCopy(disks: Command, env: CliEnv): void {
  const domainId = (ref: string, cluster: string) =>
    resolveRef(env.ctx().client, `/api/v1/clusters/${encodeURIComponent(cluster)}/storage-domains`, 'storage domain', ref);
  const diskId = (ref: string) => resolveRef(env.ctx().client, '/api/v1/disks', 'disk', ref);

  disks.command('copy <disk>').description('copy a disk to a storage domain of its pool (a new disk); shows a progress bar until the job ends')
    .requiredOption('--domain <domain>', 'the target storage domain (id or name)')
    .option('--name <name>', "the new disk's name (default: <disk>-copy)")
    .option('--cluster <cluster>', "the domain's cluster, to find it by name", 'default')
    .option('--bandwidth <MiB/s>', 'limit the copy to this rate (spares shared storage)', (v) => Number(v))
    .option('--no-wait', 'answer with the job at once')
    .option('--timeout <seconds>', 'how long to wait (the job goes on)', (v) => Number(v), 3600)
    .action(async (ref: string, o: { domain: string; name?: string; cluster: string; bandwidth?: number; wait: boolean; timeout: number }) => {
      const [id, storageDomainId] = [await diskId(ref), await domainId(o.domain, o.cluster)];
      const job = await env.ctx().client.call<Job>('POST', `/api/v1/disks/${id}/copy`,
        { storageDomainId, ...(o.name !== undefined && { name: o.name }), ...(o.bandwidth !== undefined && { bandwidthMiBs: o.bandwidth }) });
      await afterAction(env, job, `copy of disk ${ref} (new disk ${job.targetId})`, o.wait, o.timeout);
    });

  disks.command('move <disk>').description('move a disk to another storage domain of its pool (not while a VM runs on it); shows a progress bar until the job ends')
    .requiredOption('--domain <domain>', 'the target storage domain (id or name)')
    .option('--cluster <cluster>', "the domain's cluster, to find it by name", 'default')
    .option('--bandwidth <MiB/s>', 'limit the copy to this rate (spares shared storage)', (v) => Number(v))
    .option('--no-wait', 'answer with the job at once')
    .option('--timeout <seconds>', 'how long to wait (the job goes on)', (v) => Number(v), 3600)
    .action(async (ref: string, o: { domain: string; cluster: string; bandwidth?: number; wait: boolean; timeout: number }) => {
      const [id, storageDomainId] = [await diskId(ref), await domainId(o.domain, o.cluster)];
      const job = await env.ctx().client.call<Job>('POST', `/api/v1/disks/${id}/move`, { storageDomainId, ...(o.bandwidth !== undefined && { bandwidthMiBs: o.bandwidth }) });
      await afterAction(env, job, `move of disk ${ref}`, o.wait, o.timeout);
    });
}

export function registerJobCancel(jobs: Command, env: CliEnv): void {
  jobs.command('cancel <id>').description('cancel a job that can roll back (disk copy, disk move); follow it with jobs wait')
    .action(async (id: string) => {
      const job = await env.ctx().client.call<Job>('POST', `/api/v1/jobs/${encodeURIComponent(id)}/cancel`);
      env.print(job, () => `cancel of job ${job.id} (${job.kind}) requested; follow it with: hostvisor-ctl jobs wait ${job.id}\n`);
    });
}
