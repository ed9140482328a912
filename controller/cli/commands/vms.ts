// hostvisor-ctl vms …: define a VM from a spec file, start, suspend, discard a hibernation, stop, shut down, delete, list, show.
import { readFileSync } from 'node:fs';
import type { Host } from '../../model/hosts.js';
import type { Job } from '../../model/jobs.js';
import type { Vm } from '../../model/vms.js';
import { ApiCallError } from '../api-client.js';
import { table } from '../table.js';
import { afterAction, resolveRef, type RegisterCommands } from './cli-env.js';

export const registerVms: RegisterCommands = (program, env) => {
  const vms = program.command('vms').description('virtual machines');
  const vmId = (ref: string) => resolveRef(env.ctx().client, '/api/v1/vms', 'VM', ref);

  vms.command('create [name]').description("define a VM from the agent's VM spec (examples/tiny-guest.json); not started")
    .requiredOption('--spec <file>', 'a JSON VM spec; disks name disk ids, NICs name cluster networks')
    .option('--disk <target=disk...>', 'add a disk: vda=DISK (disk id or name)')
    .option('--cluster <cluster>', 'cluster id or name', 'default')
    .option('--pin <host>', 'run only on this host')
    .option('--memory-reservation <MiB>', 'memory the scheduler reserves (default: the spec memory)', (v) => Number(v))
    .action(async (nameArg: string | undefined, o: { spec: string; disk?: string[]; cluster: string; pin?: string; memoryReservation?: number }) => {
      const { client } = env.ctx();
      let spec: Record<string, unknown>;
      try { spec = JSON.parse(readFileSync(o.spec, 'utf8')) as Record<string, unknown>; }
      catch (e) { throw new ApiCallError(0, 'InvalidArgument', `--spec ${o.spec}: ${(e as Error).message}`); }
      const name = nameArg ?? (typeof spec.name === 'string' ? spec.name : undefined);
      if (!name) throw new ApiCallError(0, 'InvalidArgument', 'give the VM a name (argument, or "name" in the spec)');
      spec.name = name;
      const disks = (spec.disks as unknown[] | undefined) ?? [];
      for (const d of o.disk ?? []) {
        const [target, ref] = d.split('=');
        if (!target || !ref) throw new ApiCallError(0, 'InvalidArgument', `--disk ${d}: expected TARGET=DISK, e.g. vda=mydisk`);
        disks.push({ name: target, diskId: await resolveRef(client, '/api/v1/disks', 'disk', ref) });
      }
      if (disks.length) spec.disks = disks;
      const vm = await client.call<Vm>('POST', '/api/v1/vms', { name, spec, cluster: o.cluster,
        ...(o.pin && { pinnedHost: o.pin }), ...(o.memoryReservation !== undefined && { memoryReservationMiB: o.memoryReservation }) });
      env.print(vm, () => `VM ${vm.name} defined (${vm.id}); start it with: hostvisor-ctl vms start ${vm.name}\n`);
    });

  vms.command('list').description('list VMs').action(async () => {
    const { client } = env.ctx();
    const [list, hostList] = await Promise.all([client.call<Vm[]>('GET', '/api/v1/vms'), client.call<Host[]>('GET', '/api/v1/hosts')]);
    const hostName = new Map(hostList.map((h) => [h.id, h.name]));
    env.print(list, () => table(['NAME', 'STATUS', 'DESIRED', 'HOST', 'MEMORY', 'VCPUS', 'ID'],
      list.map((v) => [v.name, v.status, v.desiredState, v.hostId ? hostName.get(v.hostId) ?? v.hostId : null, `${v.spec.memoryMiB} MiB`, v.spec.vcpus ?? 1, v.id])));
  });

  vms.command('get <vm>').description('one VM').action(async (ref: string) => {
    const { client } = env.ctx();
    const v = await client.call<Vm>('GET', `/api/v1/vms/${await vmId(ref)}`);
    env.print(v, () => table(['NAME', 'STATUS', 'DESIRED', 'HOST', 'MEMORY', 'VCPUS', 'DISKS', 'ID'],
      [[v.name, v.status, v.desiredState, v.hostId, `${v.spec.memoryMiB} MiB`, v.spec.vcpus ?? 1, (v.spec.disks ?? []).map((d) => `${d.name}=${d.diskId}`).join(' '), v.id]]));
  });

  vms.command('start <vm>').description('start a VM (the scheduler places it unless --host)')
    .option('--host <host>', 'host id or name').option('--wait', 'wait for the job to end')
    .action(async (ref: string, o: { host?: string; wait?: boolean }) => {
      const job = await env.ctx().client.call<Job>('POST', `/api/v1/vms/${await vmId(ref)}/start`, o.host ? { host: o.host } : {});
      await afterAction(env, job, `start ${ref}`, o.wait);
    });
  vms.command('migrate <vm>').description('live-migrate a running VM (the scheduler picks the host unless --host); shows a progress bar until it ends')
    .option('--host <host>', 'destination host id or name').option('--no-wait', 'answer with the job at once')
    .option('--timeout <seconds>', 'how long to wait', (v) => Number(v), 900)
    .action(async (ref: string, o: { host?: string; wait: boolean; timeout: number }) => {
      const job = await env.ctx().client.call<Job>('POST', `/api/v1/vms/${await vmId(ref)}/migrate`, o.host ? { host: o.host } : {});
      await afterAction(env, job, `migrate ${ref}`, o.wait, o.timeout);
    });

  vms.command('suspend <vm>').description('suspend (hibernate) a running VM: its RAM state goes to a volume; the next start resumes it')
    .option('--wait', 'wait for the job to end')
    .action(async (ref: string, o: { wait?: boolean }) => {
      const job = await env.ctx().client.call<Job>('POST', `/api/v1/vms/${await vmId(ref)}/suspend`, {});
      await afterAction(env, job, `suspend ${ref}`, o.wait);
    });
  vms.command('discard-hibernation <vm>').description("discard a VM's hibernation (a suspend whose outcome is unknown, or a saved state not wanted): its state volume is deleted and the next start boots the VM afresh")
    .option('--force', 'even though the VM runs on a host or a host does not answer').option('--wait', 'wait for the job to end')
    .action(async (ref: string, o: { force?: boolean; wait?: boolean }) => {
      const job = await env.ctx().client.call<Job>('DELETE', `/api/v1/vms/${await vmId(ref)}/hibernation${o.force ? '?force=true' : ''}`);
      await afterAction(env, job, `discard-hibernation ${ref}`, o.wait);
    });
  vms.command('stop <vm>').description('power a VM off').option('--wait', 'wait for the job to end')
    .action(async (ref: string, o: { wait?: boolean }) => {
      const job = await env.ctx().client.call<Job>('POST', `/api/v1/vms/${await vmId(ref)}/stop`, {});
      await afterAction(env, job, `stop ${ref}`, o.wait);
    });
  vms.command('shutdown <vm>').description('ask the guest to shut down, then power it off after the timeout')
    .option('--timeout <seconds>', 'then it is powered off', (v) => Number(v)).option('--wait', 'wait for the job to end')
    .action(async (ref: string, o: { timeout?: number; wait?: boolean }) => {
      const job = await env.ctx().client.call<Job>('POST', `/api/v1/vms/${await vmId(ref)}/shutdown`, o.timeout ? { timeoutSeconds: o.timeout } : {});
      await afterAction(env, job, `shutdown ${ref}`, o.wait);
    });
  vms.command('delete <vm>').description('remove a VM definition (it must be Down)').action(async (ref: string) => {
    const id = await vmId(ref);
    await env.ctx().client.call('DELETE', `/api/v1/vms/${id}`);
    env.print({ id, deleted: true }, () => `VM ${ref} deleted\n`);
  });
};
