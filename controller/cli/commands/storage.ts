// hostvisor-ctl storage … and disks …: storage domains of a cluster, and disks on them.
import type { Disk, StorageDomain } from '../../model/storage.js';
import type { Job } from '../../model/jobs.js';
import { table } from '../table.js';
import { afterAction, parseSize, resolveRef, type RegisterCommands } from './cli-env.js';
import { registerDiskCopy } from './disk-copy.js';

function gib(b: number | null): string {
  return b === null ? '-' : `${(b / 1024 ** 3).toFixed(1)} GiB`;
}

export const registerStorage: RegisterCommands = (program, env) => {
  const storage = program.command('storage').description('storage domains (the first of a cluster is its pool master)');
  storage.command('add <name>').description('add a storage domain to a cluster')
    .option('--file <dir>', 'a file domain: a directory on this host or a shared mount')
    .option('--block <device...>', 'a block domain: an LVM VG on these shared LUNs')
    .option('--cluster <cluster>', 'cluster id or name', 'default')
    .option('--wait', 'wait for the job to end')
    .action(async (name: string, o: { file?: string; block?: string[]; cluster: string; wait?: boolean }) => {
      const { client } = env.ctx();
      if (!o.file === !o.block) { env.io.err.write('hostvisor-ctl: give exactly one of --file DIR or --block DEVICE...\n'); env.setCode(2); return; }
      const spec = o.file ? { type: 'file', root: o.file } : { type: 'block', devices: o.block };
      const job = await client.call<Job>('POST', `/api/v1/clusters/${encodeURIComponent(o.cluster)}/storage-domains`, { name, spec });
      await afterAction(env, job, `storage domain ${name}`, o.wait);
    });
  storage.command('list').description("a cluster's storage domains").option('--cluster <cluster>', 'cluster id or name', 'default')
    .action(async (o: { cluster: string }) => {
      const { client } = env.ctx();
      const list = await client.call<StorageDomain[]>('GET', `/api/v1/clusters/${encodeURIComponent(o.cluster)}/storage-domains`);
      env.print(list, () => table(['NAME', 'TYPE', 'MASTER', 'STATUS', 'SIZE', 'FREE', 'ID'],
        list.map((d) => [d.name, d.spec.type, d.master ? 'master' : '', d.status, gib(d.sizeBytes), gib(d.freeBytes), d.id])));
    });
  storage.command('get <domain>').description('one storage domain, with its status per host').option('--cluster <cluster>', 'cluster id or name', 'default')
    .action(async (ref: string, o: { cluster: string }) => {
      const { client } = env.ctx();
      const id = await resolveRef(client, `/api/v1/clusters/${encodeURIComponent(o.cluster)}/storage-domains`, 'storage domain', ref);
      const d = await client.call<StorageDomain>('GET', `/api/v1/storage-domains/${id}`);
      env.print(d, () => table(['NAME', 'TYPE', 'MASTER', 'STATUS', 'SIZE', 'FREE'], [[d.name, d.spec.type, d.master ? 'master' : '', d.status, gib(d.sizeBytes), gib(d.freeBytes)]])
        + (Object.keys(d.hosts).length ? '\n' + table(['HOST', 'STATUS'], Object.entries(d.hosts)) : ''));
    });

  const disks = program.command('disks').description('disks: one volume each on a storage domain');
  disks.command('create <name>').description('create a disk')
    .requiredOption('--size <size>', 'virtual size, e.g. 1G')
    .requiredOption('--domain <domain>', 'storage domain id or name')
    .option('--cluster <cluster>', "the domain's cluster, to find it by name", 'default')
    .option('--preallocated', 'allocate it all now (default: thin)')
    .option('--wait', 'wait for the job to end')
    .action(async (name: string, o: { size: string; domain: string; cluster: string; preallocated?: boolean; wait?: boolean }) => {
      const { client } = env.ctx();
      const storageDomainId = await resolveRef(client, `/api/v1/clusters/${encodeURIComponent(o.cluster)}/storage-domains`, 'storage domain', o.domain);
      const job = await client.call<Job>('POST', '/api/v1/disks', { name, storageDomainId, sizeBytes: parseSize(o.size), provisioning: o.preallocated ? 'preallocated' : 'thin' });
      await afterAction(env, job, `disk ${name} (${job.targetId})`, o.wait);
    });
  disks.command('list').description('list disks').action(async () => {
    const { client } = env.ctx();
    const list = await client.call<Disk[]>('GET', '/api/v1/disks');
    env.print(list, () => table(['NAME', 'STATUS', 'SIZE', 'PROVISIONING', 'VM', 'ID'], list.map((d) => [d.name, d.status, gib(d.sizeBytes), d.provisioning, d.vmId, d.id])));
  });
  disks.command('get <disk>').description('one disk').action(async (ref: string) => {
    const { client } = env.ctx();
    const d = await client.call<Disk>('GET', `/api/v1/disks/${await resolveRef(client, '/api/v1/disks', 'disk', ref)}`);
    env.print(d, () => table(['NAME', 'STATUS', 'SIZE', 'PROVISIONING', 'DOMAIN', 'IMAGE', 'VOLUME'], [[d.name, d.status, gib(d.sizeBytes), d.provisioning, d.storageDomainId, d.imageId, d.volumeId]]));
  });
  registerDiskCopy(disks, env);
  disks.command('delete <disk>').description('delete a disk and its volume').option('--wait', 'wait for the job to end')
    .action(async (ref: string, o: { wait?: boolean }) => {
      const { client } = env.ctx();
      const id = await resolveRef(client, '/api/v1/disks', 'disk', ref);
      const job = await client.call<Job>('DELETE', `/api/v1/disks/${id}`);
      await afterAction(env, job, `delete disk ${ref}`, o.wait);
    });
};
