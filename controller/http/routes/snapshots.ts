// A VM's snapshots (controller/vm-images): take one (live, or of a stopped VM; with the RAM state
// on request), list them, delete one (a live merge), restore a stopped VM to one.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Id } from '../../model/common.js';
import { Job } from '../../model/jobs.js';
import { VmSnapshot } from '../../model/snapshots.js';
import type { Vm } from '../../model/vms.js';
import { NotFoundError } from '../../store/errors.js';
import { acceptJob, type ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { errors, IdParams, MUTATING_ERRORS, optionalBody } from '../schemas.js';
import { VM_STATE_JOBS, VmBusyError, VmNotRunningError } from './hibernation.js';

const SnapshotRequest = Type.Object({
  description: Type.String({ minLength: 1, maxLength: 200, description: 'what the snapshot is for' }),
  memory: Type.Optional(Type.Boolean({ default: false, description: "save the running VM's RAM state too: a restore resumes the guest where it was" })),
}, { additionalProperties: false });

const SnapshotParams = Type.Object({ id: Id, sid: Id });

const DeleteRequest = Type.Object({
  bandwidthMiBs: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 * 1024, description: "the merge's copy rate limit in MiB/s (spares the storage other VMs use); unlimited when absent" })),
}, { additionalProperties: false });

/** 409: the VM has no disks, so there is nothing to snapshot. */
export class VmHasNoDisksError extends ApiError {
  constructor(name: string) { super(409, 'VmHasNoDisks', `VM ${name} has no disks to snapshot`, {}); }
}
/** 409: the snapshot is being made, deleted or restored by a job. */
export class SnapshotBusyError extends ApiError {
  constructor(id: string, status: string) { super(409, 'SnapshotBusy', `snapshot ${id} is ${status}`, { status }); }
}
/** 409: a restore needs the VM stopped (and not suspended). */
export class VmNotStoppedError extends ApiError {
  constructor(vm: Vm, why: string) { super(409, 'VmNotStopped', `VM ${vm.name} ${why}: a snapshot is restored on a stopped VM`, { status: vm.status, desiredState: vm.desiredState }); }
}

export function snapshotRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;

  async function idle(vm: Vm): Promise<void> {
    const busy = await store.jobs.activeFor(vm.id, [...VM_STATE_JOBS]);
    if (busy) throw new VmBusyError(vm.name, busy);
  }

  async function snapshotOf(vm: Vm, sid: string) {
    const s = await store.snapshots.find(sid);
    if (!s || s.vmId !== vm.id) throw new NotFoundError(`snapshot of VM ${vm.name}`, sid, 'params.sid');
    return s;
  }

  return async (app) => {
    app.post('/vms/:id/snapshots', { schema: {
      summary: "Take a snapshot of a VM's disks: live (the guest's file systems frozen through its guest agent when it has one), or of a stopped VM; with memory, the running VM's RAM state too. A job",
      tags: ['vms'], params: IdParams, body: SnapshotRequest, response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const vm = await store.vms.get(req.params.id);
      if ((vm.spec.disks ?? []).length === 0) throw new VmHasNoDisksError(vm.name);
      const memory = req.body.memory ?? false;
      const stopped = vm.status === 'Down' && vm.desiredState === 'down';
      if (memory && !(vm.status === 'Up' || vm.status === 'Paused')) throw new VmNotRunningError(vm.name, vm.status);
      if (!stopped && vm.status !== 'Up' && vm.status !== 'Paused') throw new VmNotRunningError(vm.name, vm.status);
      await idle(vm);
      const snap = await store.snapshots.create({ vmId: vm.id, description: req.body.description, memory });
      try {
        const job = await acceptJob(ctx, req, reply, { kind: 'vm.snapshot', targetKind: 'vm', targetId: vm.id, params: { snapshotId: snap.id }, message: `snapshot VM ${vm.name}` });
        await store.snapshots.setJob(snap.id, job.id);
        return job;
      } catch (e) {
        await store.snapshots.delete(snap.id);
        throw e;
      }
    });

    app.get('/vms/:id/snapshots', { schema: { summary: "A VM's snapshots, oldest first", tags: ['vms'], params: IdParams, response: { 200: Type.Array(VmSnapshot), ...errors(400, 404) } } },
      async (req) => store.snapshots.list((await store.vms.get(req.params.id)).id));

    app.get('/vms/:id/snapshots/:sid', { schema: { summary: 'One snapshot', tags: ['vms'], params: SnapshotParams, response: { 200: VmSnapshot, ...errors(400, 404) } } },
      async (req) => snapshotOf(await store.vms.get(req.params.id), req.params.sid));

    app.delete('/vms/:id/snapshots/:sid', { schema: {
      summary: "Delete a snapshot: the volume above the snapshot's is committed into it, then deleted; by a live merge (VM.merge, followed to its end) for a running VM, by a cold merge (Volume.merge, an SPM task) for a stopped one. A job",
      tags: ['vms'], params: SnapshotParams, body: optionalBody(DeleteRequest), response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const vm = await store.vms.get(req.params.id);
      const s = await snapshotOf(vm, req.params.sid);
      const bandwidthMiBs = req.body?.bandwidthMiBs;
      if (s.status !== 'ready' && s.status !== 'deleting') throw new SnapshotBusyError(s.id, s.status);
      const stopped = vm.status === 'Down' && vm.desiredState === 'down';
      if (!stopped && vm.status !== 'Up' && vm.status !== 'Paused') throw new VmNotRunningError(vm.name, `${vm.status} (a merge needs it running, or stopped)`);
      await idle(vm);
      await store.snapshots.update(s.id, { status: 'deleting' });
      return acceptJob(ctx, req, reply, { kind: 'vm.snapshot.delete', targetKind: 'vm', targetId: vm.id, params: { snapshotId: s.id, from: s.status, ...(bandwidthMiBs !== undefined && { bandwidthMiBs }) }, message: `delete snapshot "${s.description}" of VM ${vm.name}` });
    });

    app.post('/vms/:id/snapshots/:sid/restore', { schema: {
      summary: "Return a stopped VM's disks to a snapshot (a new leaf on the snapshot's volume; the newer volumes and snapshots are deleted); with a memory snapshot the next start resumes its RAM state. A job",
      tags: ['vms'], params: SnapshotParams, body: optionalBody(Type.Object({}, { additionalProperties: false })), response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const vm = await store.vms.get(req.params.id);
      const s = await snapshotOf(vm, req.params.sid);
      if (s.status !== 'ready' && s.status !== 'restoring') throw new SnapshotBusyError(s.id, s.status);
      if (vm.status !== 'Down' || vm.desiredState !== 'down') throw new VmNotStoppedError(vm, `is ${vm.status} (desired ${vm.desiredState})`);
      const hib = await store.hibernations.find(vm.id);
      if (hib && hib.snapshotId === null) throw new VmNotStoppedError(vm, 'is suspended (its saved RAM state would not match the disks)');
      await idle(vm);
      return acceptJob(ctx, req, reply, { kind: 'vm.snapshot.restore', targetKind: 'vm', targetId: vm.id, params: { snapshotId: s.id }, message: `restore VM ${vm.name} to snapshot "${s.description}"` });
    });
  };
}
