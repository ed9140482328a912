// The VM image part (issue 13), wired by one call in install-parts.ts: the vm.suspend job, the
// resume of a suspended VM by the vm.start job (the VM part's deps get `restore`), and the
// snapshot jobs (vm.snapshot, vm.snapshot.delete, vm.snapshot.restore).
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import type { StorageDeps } from '../storage/storage-deps.js';
import type { VmsPart } from '../vms/install.js';
import { startRestore } from './resume.js';
import { suspendJob } from './suspend-job.js';
import { snapshotCreateJob } from './snapshot-create-job.js';
import { snapshotDeleteJob } from './snapshot-delete-job.js';
import { snapshotRestoreJob } from './snapshot-restore-job.js';
import type { VmImageDeps } from './vm-image-deps.js';

export function installVmImages(runtime: ControllerRuntime, vms: VmsPart, storage: StorageDeps): VmImageDeps {
  const d: VmImageDeps = { vms: vms.deps, storage };
  vms.deps.restore = startRestore(d);
  runtime.executor.register('vm.suspend', suspendJob(d));
  runtime.executor.register('vm.snapshot', snapshotCreateJob(d));
  runtime.executor.register('vm.snapshot.delete', snapshotDeleteJob(d));
  runtime.executor.register('vm.snapshot.restore', snapshotRestoreJob(d));
  return d;
}
