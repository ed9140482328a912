// POST /vms/{id}/suspend (the vm.suspend job of controller/vm-images), GET /vms/{id}/hibernation and
// DELETE /vms/{id}/hibernation (vm.hibernation.discard):
// a suspended VM is Down, desired down, with its RAM state on a volume; POST /vms/{id}/start
// resumes it.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { VmHibernation } from '../../model/hibernation.js';
import { Job } from '../../model/jobs.js';
import { NotFoundError } from '../../store/errors.js';
import { acceptJob, type ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { errors, IdParams, MUTATING_ERRORS, optionalBody } from '../schemas.js';

/** 409: the VM does not run, so it has no state to save. */
export class VmNotRunningError extends ApiError {
  constructor(name: string, status: string) { super(409, 'VmNotRunning', `VM ${name} is ${status}: only an Up or Paused VM is suspended`, { status }); }
}

/** 409: another job of the VM is under way. */
export class VmBusyError extends ApiError {
  constructor(name: string, job: { id: string; kind: string }) { super(409, 'VmBusy', `VM ${name} has a ${job.kind} job under way`, { job: job.id, kind: job.kind }); }
}

/** 409: the VM runs, or a host's view is unknown: discarding its hibernation could lose its RAM or run it twice. */
export class HibernationDiscardUnsafeError extends ApiError {
  constructor(code: 'VmRunning' | 'HostsUnknown', message: string, details: Record<string, unknown>) { super(409, code, `${message}; force=true discards it anyway`, details); }
}

/** Why a VM's hibernation keeps it from starting (GET /vms/{id}), or undefined. */
export async function startBlockOf(ctx: ApiContext, vmId: string): Promise<{ code: string; reason: string } | undefined> {
  const h = await ctx.store.hibernations.find(vmId);
  if (h?.state !== 'saving') return undefined;
  const v = ctx.hibernations?.verdict(vmId);
  return { code: 'SuspendOutcomeUnknown', reason: v?.decision.reason ?? `the suspend (job ${h.jobId}) has not finished, or its outcome is not looked at yet` };
}

/** The jobs that change a VM's running state or its images: one at a time. */
export const VM_STATE_JOBS = ['vm.start', 'vm.stop', 'vm.shutdown', 'vm.migrate', 'vm.suspend', 'vm.snapshot', 'vm.snapshot.delete', 'vm.snapshot.restore'] as const;

export function hibernationRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;
  return async (app) => {
    app.post('/vms/:id/suspend', { schema: {
      summary: "Suspend (hibernate) a running VM: its RAM and device state goes to a new volume on the pool and the VM stops; the next POST /vms/{id}/start resumes it, on whatever host the scheduler picks, and deletes the volume. A save that fails leaves the VM running. A job",
      tags: ['vms'], params: IdParams, body: optionalBody(Type.Object({}, { additionalProperties: false })), response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const vm = await store.vms.get(req.params.id);
      if (vm.status !== 'Up' && vm.status !== 'Paused') throw new VmNotRunningError(vm.name, vm.status);
      const busy = await store.jobs.activeFor(vm.id, [...VM_STATE_JOBS]);
      if (busy) throw new VmBusyError(vm.name, busy);
      return acceptJob(ctx, req, reply, { kind: 'vm.suspend', targetKind: 'vm', targetId: vm.id, params: {}, message: `suspend VM ${vm.name}` });
    });

    app.delete('/vms/:id/hibernation', { schema: {
      summary: "Discard a VM's hibernation (an admin's way out of a suspend whose outcome is unknown, or of a saved state not wanted): the record goes and its state volume is deleted; the next start boots the VM afresh. "
        + "Refused (409 VmRunning, HostsUnknown) while the VM runs on a host or a host does not answer, unless force=true; 409 VmBusy while a job of the VM runs. A job",
      tags: ['vms'], params: IdParams, querystring: Type.Object({ force: Type.Optional(Type.Boolean({ default: false, description: 'discard even though the VM runs or a host is unknown' })) }, { additionalProperties: false }),
      response: { 202: Job, ...errors(400, 404, 409, 503) } } },
    async (req, reply) => {
      const vm = await store.vms.get(req.params.id);
      const h = await store.hibernations.find(vm.id);
      if (!h) throw new NotFoundError('hibernation of VM', vm.id);
      const busy = await store.jobs.activeFor(vm.id, [...VM_STATE_JOBS, 'vm.hibernation.discard']);
      if (busy) throw new VmBusyError(vm.name, busy);
      const force = req.query.force === true;
      if (!force) {
        if (!ctx.hibernations) throw new ApiError(503, 'Unavailable', 'the controller cannot look at the hosts now: whether the VM runs is not known; force=true discards it anyway');
        const b = await ctx.hibernations.discardBlockers(vm.id, req.id);
        if (b.runningOn.length > 0) throw new HibernationDiscardUnsafeError('VmRunning', `VM ${vm.name} runs on ${b.runningOn.map((x) => `${x.hostId} (${x.status})`).join(', ')}`, { runningOn: b.runningOn });
        const silent = Object.keys(b.unknown);
        if (silent.length > 0) throw new HibernationDiscardUnsafeError('HostsUnknown', `host(s) ${silent.join(', ')} did not answer: VM ${vm.name} may still run or be saved there`, { hosts: b.unknown });
      }
      const reason = force ? 'an admin discarded it with force=true' : 'an admin discarded it';
      return acceptJob(ctx, req, reply, { kind: 'vm.hibernation.discard', targetKind: 'vm', targetId: vm.id, params: { imageId: h.stateVolume.imageId, reason },
        message: `discard the hibernation (${h.state}) of VM ${vm.name}${force ? ' (forced)' : ''}` });
    });

    app.get('/vms/:id/hibernation', { schema: {
      summary: "A suspended VM's saved state: where it is, and whether the suspend is done (404 when the VM is not suspended)",
      tags: ['vms'], params: IdParams, response: { 200: VmHibernation, ...errors(400, 404) } } },
    async (req) => {
      const vm = await store.vms.get(req.params.id);
      const h = await store.hibernations.find(vm.id);
      if (!h) throw new NotFoundError('hibernation of VM', vm.id);
      return h;
    });
  };
}
