// Whether a disk may be copied or moved now: not while a VM that may be running uses it (live
// storage migration is not in the product, and a copy of a disk being written is not a
// consistent one), not while another job works on its image. A caller's mistake: 409.
import type { Job } from '../model/jobs.js';
import type { Disk } from '../model/storage.js';
import type { Store } from '../store/store.js';
import { ConflictError } from '../store/errors.js';

/** The disk's VM is not stopped (Up, Paused, Unknown, ... or about to be started). */
export class DiskInUseError extends ConflictError {
  constructor(disk: Pick<Disk, 'id' | 'name'>, vm: { id: string; name: string; status: string; desiredState: string }, action: 'moved' | 'copied') {
    super(`disk ${disk.name} is used by VM ${vm.name}, which is ${vm.status} (meant to be ${vm.desiredState}): a disk under a running VM is not ${action}; `
      + (action === 'moved' ? 'live storage migration is not supported, stop the VM first' : 'the copy would not be consistent, stop the VM first'),
    { reason: 'DiskInUse', diskId: disk.id, vmId: vm.id, vmName: vm.name, vmStatus: vm.status, desiredState: vm.desiredState });
  }
}

/** The VM using the disk when it may be running; undefined when none does or it is stopped and meant to stay so. */
export async function runningUser(store: Store, disk: Pick<Disk, 'vmId'>): Promise<{ id: string; name: string; status: string; desiredState: string } | undefined> {
  if (disk.vmId === null) return undefined;
  const vm = await store.vms.find(disk.vmId);
  if (vm === undefined) return undefined;
  return vm.status === 'Down' && vm.desiredState === 'down' ? undefined : vm;
}

/** 409 unless the disk is ready, unused by a running VM and free of other disk jobs (as copy source or moved disk). */
export async function assertDiskFree(store: Store, disk: Disk, action: 'moved' | 'copied'): Promise<void> {
  if (disk.status !== 'ready') throw new ConflictError(`disk ${disk.name} is ${disk.status}, not ready`, { reason: 'DiskNotReady', diskId: disk.id, status: disk.status });
  const vm = await runningUser(store, disk);
  if (vm) throw new DiskInUseError(disk, vm, action);
  const busy = await store.jobs.activeFor(disk.id, ['disk.move', 'disk.delete'])
    ?? (disk.vmId === null ? undefined : await store.jobs.activeFor(disk.vmId, ['vm.start', 'vm.snapshot', 'vm.snapshot.delete', 'vm.snapshot.restore', 'vm.suspend']));
  const job = busy ?? await copyFrom(store, disk.id);
  if (job && (action === 'moved' || job.kind !== 'disk.copy')) {
    throw new ConflictError(`disk ${disk.name} has a ${job.kind} job under way`, { reason: 'DiskBusy', diskId: disk.id, job: job.id, kind: job.kind });
  }
}

/**
 * 409 while one of the VM's disks is being moved (or is the source of a copy): the move deletes
 * the source under a VM started on another host than the SPM (the agent re-checks only on the
 * SPM host), and a copy of a disk being written is not consistent. Called after the start set
 * the VM's desired state to up, so a move accepted later sees the VM as running and refuses.
 */
export async function assertNoDiskJob(store: Store, vm: { id: string; name: string }): Promise<void> {
  const disks = (await store.disks.list()).filter((d) => d.vmId === vm.id);
  for (const disk of disks) {
    const job = await store.jobs.activeFor(disk.id, ['disk.move']) ?? await copyFrom(store, disk.id);
    if (job) {
      throw new ConflictError(`VM ${vm.name} is not started: its disk ${disk.name} has a ${job.kind} job under way (${job.id}); wait for it to end or cancel it`,
        { reason: 'DiskBusy', diskId: disk.id, vmId: vm.id, job: job.id, kind: job.kind });
    }
  }
}

/** A disk.copy job under way (pending or running) whose source is the disk. */
async function copyFrom(store: Store, diskId: string): Promise<Job | undefined> {
  return (await store.jobs.list({ state: 'running' })).concat(await store.jobs.list({ state: 'pending' }))
    .find((j) => j.kind === 'disk.copy' && j.params['sourceDiskId'] === diskId);
}
