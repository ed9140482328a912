// Templates and clones (issue 13): their jobs, run on the storage part's SPM machinery.
import type { StorageDeps } from '../storage/storage-deps.js';
import { vmCloneJob } from './clone-job.js';
import { templateCreateJob, templateDeleteJob } from './template-jobs.js';

export function installTemplates(storage: StorageDeps): void {
  storage.runtime.executor.register('template.create', templateCreateJob(storage));
  storage.runtime.executor.register('template.delete', templateDeleteJob(storage));
  storage.runtime.executor.register('vm.clone', vmCloneJob(storage));
}
