// Copies, templates and moves of disks between storage domains (VDSM's
// copyImage and moveImage), as SPM tasks whose progress comes from
// `qemu-img convert -p`.
import { Type } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { Uuid } from '../types.js';
import { TaskID, TaskIdParam } from '../tasks.js';

const OptUuid = (description: string) => Type.Optional(Type.String({ pattern: Uuid.pattern, description }));
const Format = Type.Union([Type.Literal('COW'), Type.Literal('RAW')]);
const Allocation = Type.Union([Type.Literal('SPARSE'), Type.Literal('PREALLOCATED')]);
const SPM_TASK_ERRORS = ['unavailable', 'storageDomainDoesNotExist', 'addTaskError', 'taskPersistError', 'invalidParams'] as const;
const Bandwidth = Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'MiB/s the copy may read and write (qemu-img convert -r), so a big copy leaves room on shared storage; no limit when absent' }));
const POLL = ' Answers at once with {taskID}; Task.getStatus and Task.getInfo report progress 0..100 (also sent as |storage|task_status|<taskID>), Task.getInfo().result is the new volume\'s info. ';

export const IMAGE_METHODS = {
  'Volume.copy': method({
    summary: 'SPM only, a task (VDSM\'s copyImage). Collapses the chain that ends at the source volume, with qemu-img convert, into one new volume '
      + '(in a new image, in this or another domain of the pool, file or block). volType SHARED makes a template volume: read only from then on, '
      + 'a base for thin clones (Volume.create with srcImgUUID), never prepared as a writable leaf (219); LEAF makes an independent copy (a full clone). '
      + 'A failed or stopped copy (Task.stop) kills qemu-img and removes the new volume.' + POLL
      + 'The task may end with 201, 212, 227, 397, 1008, 1002 (qemu-img took longer than storage.copyTimeoutMs), 411 (stopped), 1011 (interrupted by a restart).',
    params: Type.Object({
      storagepoolID: Type.Optional(Uuid), ...TaskIdParam,
      storagedomainID: Uuid, imageID: Uuid, volumeID: Type.String({ pattern: Uuid.pattern, description: 'the source: the volume whose chain (it and its parents) is copied' }),
      dstSdUUID: OptUuid('the destination domain (default: the source domain)'),
      dstImgUUID: Uuid, dstVolUUID: Uuid,
      volType: Type.Union([Type.Literal('SHARED'), Type.Literal('LEAF')], { description: 'SHARED: a template volume; LEAF: an ordinary, writable copy' }),
      volFormat: Format, preallocate: Allocation,
      description: Type.Optional(Type.String({ maxLength: 210 })),
      bandwidth: Bandwidth,
    }),
    result: TaskID, errors: SPM_TASK_ERRORS, since: '0.7', mutating: true,
  }),
  'Image.move': method({
    summary: 'SPM only, a task (VDSM\'s moveImage, with the chain collapsed). Copies the image\'s chain, as Volume.copy, into one volume with the same '
      + 'image and leaf ids on the destination domain, then deletes the source image. Refused at once with 203 when a VM running on this host uses the image '
      + '(live storage migration is not supported). A stop or failure during the copy removes the copy and leaves the source whole.' + POLL
      + 'The task may end with the errors of Volume.copy and of Image.delete.',
    params: Type.Object({
      storagepoolID: Type.Optional(Uuid), ...TaskIdParam,
      storagedomainID: Uuid, imageID: Uuid, dstSdUUID: Uuid,
      volFormat: Type.Optional(Format), preallocate: Type.Optional(Allocation),
      bandwidth: Bandwidth,
    }),
    result: TaskID, errors: [...SPM_TASK_ERRORS, 'volumeIsBusy'], since: '0.7', mutating: true,
  }),
} as const satisfies Record<string, MethodDef>;

/** The body of |storage|task_status|<taskID>: sent as a copying task's progress grows (whole percents) and when any task ends. */
export const TaskStatusEventBody = Type.Object({
  verb: Type.String(), state: Type.String(), taskState: Type.String(), taskResult: Type.String(),
  code: Type.Integer(), message: Type.String(), progress: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
});
