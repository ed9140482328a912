// The cold merge (VDSM's SDM.merge, storage/merge.py): a volume of a stopped
// VM's image committed into its parent with `qemu-img commit`, as an SPM task.
import { Type } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { Uuid } from '../types.js';
import { TaskID, TaskIdParam } from '../tasks.js';

export const COLD_MERGE_METHODS = {
  'Volume.merge': method({
    summary: "SPM only, a task (VDSM's SDM.merge, the cold merge): commits topVolUUID of an image no VM runs on into its parent baseVolUUID "
      + '(`qemu-img commit`). A block COW base is first extended to what `qemu-img measure` says it needs to hold the top (rounded up to the thin-provisioning chunk). '
      + 'As after VM.merge, the base keeps its id (the leaf when the top was the leaf; else the top\'s child is rebased onto it) and the top is marked ILLEGAL, '
      + 'out of the chain: the caller deletes it (Volume.delete). The base is ILLEGAL while it is written. Refused at once, before anything is touched: '
      + 'a SHARED (template) base or top (219), an image a VM runs on here (203), a base that is not the top\'s parent (1000). '
      + 'A failure, Task.stop or agent restart before the commit ended leaves the chain as it was (merge again); after it, the chain is finished. '
      + "Answers at once with {taskID}; Task.getStatus shows qemu-img's progress; Task.getInfo().result is the base's info.",
    params: Type.Object({
      storagepoolID: Type.Optional(Uuid), ...TaskIdParam,
      storagedomainID: Uuid, imageID: Uuid,
      baseVolUUID: Type.String({ pattern: Uuid.pattern, description: 'the volume the top is committed into: its parent' }),
      topVolUUID: Type.String({ pattern: Uuid.pattern, description: 'the volume merged away (marked ILLEGAL; then Volume.delete)' }),
    }),
    result: TaskID,
    errors: ['unavailable', 'storageDomainDoesNotExist', 'addTaskError', 'taskPersistError', 'invalidParams', 'volumeIsBusy', 'sharedVolumeNonWritable', 'volumeDoesNotExist', 'prepareIllegalVolume', 'imageIsNotLegalChain', 'imageDoesNotExist'],
    since: '0.7', mutating: true,
  }),
} as const satisfies Record<string, MethodDef>;
