// /vms: definitions (ours), runtime status (the agent's), and the start/stop/shutdown jobs.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Name } from '../../model/common.js';
import { Job } from '../../model/jobs.js';
import { Vm, VmSpec } from '../../model/vms.js';
import type { Vm as VmT, VmSpec as VmSpecT } from '../../model/vms.js';
import { ConflictError, NotFoundError } from '../../store/errors.js';
import { acceptJob, type ApiContext } from '../context.js';
import { ApiError, InvalidRequestError } from '../errors.js';
import { errors, IdParams, MUTATING_ERRORS, optionalBody } from '../schemas.js';
import { VmGuestInfo } from '../../model/guest-info.js';
import { startBlockOf } from './hibernation.js';
import { defineClone } from '../../templates/clone-request.js';
import { assertNoDiskJob } from '../../storage/disk-use.js';

const StartBlocked = Type.Object({ code: Type.String(), reason: Type.String() }, { description: "why a start cannot go on now (a suspend whose outcome is unknown); absent when nothing blocks it" });
const VmWithGuest = Type.Object({ ...Vm.properties, guest: Type.Optional(VmGuestInfo), startBlocked: Type.Optional(StartBlocked) });

const VmRequest = Type.Object({
  name: Name,
  spec: VmSpec,
  cluster: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'cluster id or name (default: default)' })),
  memoryReservationMiB: Type.Optional(Type.Integer({ minimum: 0, maximum: 4 * 1024 * 1024, description: 'default: spec.memoryMiB' })),
  cpuReservation: Type.Optional(Type.Integer({ minimum: 0, maximum: 512, description: 'default: spec.vcpus (1)' })),
  pinnedHost: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'host id or name: the VM runs only there' })),
  priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'higher starts first (default 0)' })),
}, { additionalProperties: false });

// A VM defined from a template: its spec is the template's, its disks new volumes made by a vm.clone job.
const CloneRequest = Type.Object({
  name: Name,
  template: Type.String({ minLength: 1, maxLength: 64, description: 'template id or name (ready)' }),
  clone: Type.Union([Type.Literal('thin'), Type.Literal('full')], { description: 'thin: each disk a COW volume over the template\'s SHARED volume; full: an independent copy' }),
  spec: Type.Optional(Type.Partial(Type.Omit(VmSpec, ['disks', 'name']), { additionalProperties: false, description: 'set over the template\'s spec (not its disks)' })),
  memoryReservationMiB: VmRequest.properties.memoryReservationMiB,
  cpuReservation: VmRequest.properties.cpuReservation,
  pinnedHost: VmRequest.properties.pinnedHost,
  priority: VmRequest.properties.priority,
}, { additionalProperties: false });

const StartRequest = Type.Object({ host: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'host id or name; default: the scheduler picks' })) }, { additionalProperties: false });
const ShutdownRequest = Type.Object({ timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 'then it is powered off' })) }, { additionalProperties: false });

export function vmRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;

  async function hostIn(clusterId: string, ref: string, field: string): Promise<string> {
    const h = (await store.hosts.list({ clusterId })).find((x) => x.id === ref || x.name === ref);
    if (!h) throw new NotFoundError('host in the VM\'s cluster', ref, field);
    return h.id;
  }

  /** Disks must exist in the VM's cluster, once each; networks must be the cluster's. */
  async function checkSpec(name: string, spec: VmSpecT, clusterId: string): Promise<void> {
    if (spec.name !== undefined && spec.name !== name) throw new InvalidRequestError('body.spec.name', `must equal the VM name "${name}" when given`);
    const targets = new Set<string>();
    const diskIds = new Set<string>();
    for (const [i, d] of (spec.disks ?? []).entries()) {
      if (targets.has(d.name)) throw new InvalidRequestError(`body.spec.disks[${i}].name`, `${d.name} is used twice`);
      if (diskIds.has(d.diskId)) throw new InvalidRequestError(`body.spec.disks[${i}].diskId`, 'the same disk is named twice');
      targets.add(d.name);
      diskIds.add(d.diskId);
      const disk = await store.disks.get(d.diskId, `body.spec.disks[${i}].diskId`);
      const domain = await store.storageDomains.get(disk.storageDomainId);
      if (domain.clusterId !== clusterId) throw new InvalidRequestError(`body.spec.disks[${i}].diskId`, 'the disk is on another cluster\'s storage');
    }
    const networks = new Set((await store.networks.list({ clusterId })).map((n) => n.name));
    for (const [i, n] of (spec.nics ?? []).entries()) {
      if (!networks.has(n.network)) throw new NotFoundError('network in the VM\'s cluster', n.network, `body.spec.nics[${i}].network`);
    }
  }

  async function refuseIfStarting(vm: VmT): Promise<void> {
    const active = await store.jobs.activeFor(vm.id, ['vm.start']);
    if (active) throw new ConflictError(`VM ${vm.name} has a start job under way`, { job: active.id });
  }

  return async (app) => {
    app.post('/vms', { schema: { summary: 'Define a VM (not started); from a template, its disks are made by a vm.clone job (202)', tags: ['vms'],
      body: Type.Union([VmRequest, CloneRequest]), response: { 201: Vm, 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
      async (req, reply) => {
        if ('template' in req.body) {
          const c = req.body;
          const { vm, params } = await defineClone(store, c, (clusterId) => (c.pinnedHost ? hostIn(clusterId, c.pinnedHost, 'body.pinnedHost') : Promise.resolve(null)));
          await store.event({ kind: 'vm.created', subjectKind: 'vm', subjectId: vm.id, correlationId: req.id, message: `VM ${vm.name} defined as a ${c.clone} clone of template ${c.template}` });
          return acceptJob(ctx, req, reply, { kind: 'vm.clone', targetKind: 'vm', targetId: vm.id, params: { ...params }, message: `make the disks of VM ${vm.name} (${c.clone} clone)` });
        }
        const b = req.body;
        const cluster = await store.clusters.get(b.cluster ?? 'default', 'body.cluster');
        await checkSpec(b.name, b.spec, cluster.id);
        const pinnedHostId = b.pinnedHost ? await hostIn(cluster.id, b.pinnedHost, 'body.pinnedHost') : null;
        const vm = await store.vms.create({
          name: b.name, clusterId: cluster.id, spec: b.spec, pinnedHostId, priority: b.priority ?? 0,
          memoryReservationMiB: b.memoryReservationMiB ?? b.spec.memoryMiB, cpuReservation: b.cpuReservation ?? b.spec.vcpus ?? 1,
        });
        await store.event({ kind: 'vm.created', subjectKind: 'vm', subjectId: vm.id, correlationId: req.id, message: `VM ${vm.name} defined in cluster ${cluster.name}` });
        reply.code(201);
        return vm;
      });

    app.get('/vms', { schema: { summary: 'List VMs', tags: ['vms'], response: { 200: Type.Array(Vm), ...errors() } } }, async () => store.vms.list());

    app.get('/vms/:id', { schema: { summary: "One VM: desired state, status as the agent reports it, its host, and while it runs what its guest agent reports (addresses, host name, OS)", tags: ['vms'], params: IdParams, response: { 200: VmWithGuest, ...errors(400, 404) } } },
      async (req) => {
        const vm = await store.vms.get(req.params.id);
        const guest = await ctx.guestInfo?.read(vm.id, req.id);
        const startBlocked = await startBlockOf(ctx, vm.id);
        return { ...vm, ...(guest && { guest }), ...(startBlocked && { startBlocked }) };
      });

    app.post('/vms/:id/start', { schema: { summary: 'Start a VM (placed by the scheduler unless a host is given); a job', tags: ['vms'], params: IdParams,
      body: optionalBody(StartRequest), response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409, 422) } } },
    async (req, reply) => {
      const vm = await store.vms.get(req.params.id);
      if (vm.status !== 'Down') throw new ConflictError(`VM ${vm.name} is ${vm.status}`, { status: vm.status });
      const blocked = await startBlockOf(ctx, vm.id);
      if (blocked) throw new ApiError(409, blocked.code, `VM ${vm.name} is not started: ${blocked.reason}`, { hibernation: 'saving' });
      await refuseIfStarting(vm);
      await assertNoDiskJob(store, vm); // before placement (a clear 409); again below, once desired is up, against a move accepted meanwhile
      const hostId = req.body?.host ? await hostIn(vm.clusterId, req.body.host, 'body.host') : null;
      if (vm.pinnedHostId && hostId && hostId !== vm.pinnedHostId) throw new ConflictError(`VM ${vm.name} is pinned to host ${vm.pinnedHostId}`, { field: 'body.host', pinnedHostId: vm.pinnedHostId });
      // Placed now (422 when no host fits), and reserved until the job ends.
      const placed = ctx.vmStarts ? await ctx.vmStarts.place(vm.id, hostId, req.id) : null;
      try {
        // With placement, the reservation already stops a second start; desired may still say up
        // after a start that failed, and the VM is Down: it may be started again.
        if (!(await store.vms.transitionDesired(vm.id, 'down', 'up')) && !placed) throw new ConflictError(`VM ${vm.name} is meant to be up already`, { desiredState: 'up' });
        await assertNoDiskJob(store, vm).catch(async (e: unknown) => { await store.vms.transitionDesired(vm.id, 'up', 'down'); throw e; });
        const job = await acceptJob(ctx, req, reply, { kind: 'vm.start', targetKind: 'vm', targetId: vm.id, params: { hostId, ...placed?.params }, message: `start VM ${vm.name}` });
        placed?.attach(job.id);
        return job;
      } catch (e) {
        placed?.cancel();
        throw e;
      }
    });

    for (const [verb, kind, summary] of [['stop', 'vm.stop', 'Power a VM off'], ['shutdown', 'vm.shutdown', 'Shut a VM down through the guest, then power it off']] as const) {
      app.post(`/vms/:id/${verb}`, { schema: { summary: `${summary}; a job`, tags: ['vms'], params: IdParams,
        body: optionalBody(verb === 'shutdown' ? ShutdownRequest : Type.Object({}, { additionalProperties: false })), response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
      async (req, reply) => {
        const vm = await store.vms.get(req.params.id);
        if (vm.status === 'Down' && vm.desiredState === 'down') throw new ConflictError(`VM ${vm.name} is Down`, { status: vm.status });
        await store.vms.transitionDesired(vm.id, 'up', 'down');
        const params = verb === 'shutdown' ? { timeoutSeconds: (req.body as { timeoutSeconds?: number } | undefined)?.timeoutSeconds ?? null } : {};
        return acceptJob(ctx, req, reply, { kind, targetKind: 'vm', targetId: vm.id, params, message: `${verb} VM ${vm.name}` });
      });
    }

    app.delete('/vms/:id', { schema: { summary: 'Remove a VM definition (refused unless it is Down); its disks stay', tags: ['vms'], params: IdParams, response: { 204: Type.Null(), ...errors(400, 404, 409) } } },
      async (req, reply) => {
        const suspended = await store.hibernations.find(req.params.id);
        if (suspended) throw new ConflictError('the VM is suspended: its saved state would be lost; start it first', { hibernation: suspended.state });
        const vm = await store.vms.delete(req.params.id);
        await store.event({ kind: 'vm.deleted', subjectKind: 'vm', subjectId: vm.id, correlationId: req.id, message: `VM ${vm.name} removed` });
        return reply.code(204).send(null);
      });
  };
}
