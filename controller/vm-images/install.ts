// The VM image part (issue 13), wired by one call in install-parts.ts: the vm.suspend job, the
// resume of a suspended VM by the vm.start job (the VM part's deps get `restore`), and the
// snapshot jobs (vm.snapshot, vm.snapshot.delete, vm.snapshot.restore); the reconcile of suspends
// whose outcome is unknown and the discard of a hibernation (vm.hibernation.discard).
import type { ApiContext } from '../http/context.js';
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import type { StorageDeps } from '../storage/storage-deps.js';
import type { VmsPart } from '../vms/install.js';
import { startRestore } from './resume.js';
import { suspendJob } from './suspend-job.js';
import { hibernationDiscardJob } from './hibernation-discard-job.js';
import { HibernationReconciler } from './hibernation-reconciler.js';
import { snapshotCreateJob } from './snapshot-create-job.js';
import { snapshotDeleteJob } from './snapshot-delete-job.js';
import { snapshotRestoreJob } from './snapshot-restore-job.js';
import type { VmImageDeps } from './vm-image-deps.js';

export function installVmImages(runtime: ControllerRuntime, vms: VmsPart, storage: StorageDeps, api?: ApiContext): VmImageDeps & { hibernations: HibernationReconciler } {
  const d: VmImageDeps = { vms: vms.deps, storage };
  vms.deps.restore = startRestore(d);
  runtime.executor.register('vm.suspend', suspendJob(d));
  runtime.executor.register('vm.snapshot', snapshotCreateJob(d));
  runtime.executor.register('vm.snapshot.delete', snapshotDeleteJob(d));
  runtime.executor.register('vm.snapshot.restore', snapshotRestoreJob(d));
  runtime.executor.register('vm.hibernation.discard', hibernationDiscardJob(d));
  const hibernations = new HibernationReconciler(d, { submit: (job) => runtime.executor.submit(job), log: vms.deps.log });
  runtime.addLoop(hibernations);
  if (api) api.hibernations = hibernations;
  return { ...d, hibernations };
}
