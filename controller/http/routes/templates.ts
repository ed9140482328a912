// /templates: made from a stopped VM's disks (each chain collapsed into a SHARED volume by the
// SPM, a job), listed, and deleted unless thin clones still stand on them (409 naming them).
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { randomUUID } from 'node:crypto';
import { Name } from '../../model/common.js';
import { Job } from '../../model/jobs.js';
import { Template, type TemplateVolume } from '../../model/templates.js';
import { ConflictError } from '../../store/errors.js';
import { TemplateInUseError, VmNotStoppedError } from '../../templates/errors.js';
import { acceptJob, type ApiContext } from '../context.js';
import { InvalidRequestError } from '../errors.js';
import { errors, IdParams, MUTATING_ERRORS } from '../schemas.js';

const TemplateRequest = Type.Object({
  vm: Type.String({ minLength: 1, maxLength: 64, description: 'the VM (id or name), stopped, whose disks the template is made of' }),
  name: Name,
}, { additionalProperties: false });

export function templateRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;
  return async (app) => {
    app.post('/templates', { schema: { summary: 'Make a template of a stopped VM\'s disks (each chain copied into a SHARED volume by the SPM); a job', tags: ['templates'],
      body: TemplateRequest, response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const vm = (await store.vms.list()).find((v) => v.id === req.body.vm || v.name === req.body.vm) ?? await store.vms.get(req.body.vm, 'body.vm');
      if (vm.status !== 'Down' || vm.desiredState !== 'down') throw new VmNotStoppedError(vm);
      const active = await store.jobs.activeFor(vm.id, ['vm.start']);
      if (active) throw new ConflictError(`VM ${vm.name} has a start job under way`, { job: active.id });
      const volumes: TemplateVolume[] = [];
      for (const [i, ref] of (vm.spec.disks ?? []).entries()) {
        const disk = await store.disks.get(ref.diskId, `vm.spec.disks[${i}].diskId`);
        if (disk.status !== 'ready') throw new ConflictError(`disk ${disk.name} of VM ${vm.name} is ${disk.status}, not ready`, { diskId: disk.id, status: disk.status });
        volumes.push({ name: ref.name, storageDomainId: disk.storageDomainId, imageId: randomUUID(), volumeId: randomUUID(), sizeBytes: disk.sizeBytes,
          source: { diskId: disk.id, imageId: disk.imageId, volumeId: disk.volumeId } });
      }
      if (volumes.length === 0) throw new InvalidRequestError('body.vm', `VM ${vm.name} has no disks to make a template of`);
      const tpl = await store.templates.create({ name: req.body.name, clusterId: vm.clusterId, sourceVmId: vm.id, spec: vm.spec, volumes });
      await store.event({ kind: 'template.created', subjectKind: 'template', subjectId: tpl.id, correlationId: req.id, message: `template ${tpl.name} of VM ${vm.name} requested` });
      return acceptJob(ctx, req, reply, { kind: 'template.create', targetKind: 'template', targetId: tpl.id, params: { vmId: vm.id }, message: `make template ${tpl.name} of VM ${vm.name}` });
    });

    app.get('/templates', { schema: { summary: 'List templates', tags: ['templates'], response: { 200: Type.Array(Template), ...errors() } } }, async () => store.templates.list());

    app.get('/templates/:id', { schema: { summary: 'One template: its status and SHARED volumes', tags: ['templates'], params: IdParams, response: { 200: Template, ...errors(400, 404) } } },
      async (req) => store.templates.get(req.params.id));

    app.delete('/templates/:id', { schema: { summary: 'Delete a template and its volumes (a job on the SPM); 409 naming the thin clones that still depend on it', tags: ['templates'],
      params: IdParams, response: { 202: Job, ...errors(400, 404, 409) } } },
    async (req, reply) => {
      const tpl = await store.templates.get(req.params.id);
      const dependents = await store.templates.dependents(tpl.id);
      if (dependents.length > 0) throw new TemplateInUseError(tpl.name, dependents);
      if (!(await store.templates.transition(tpl.id, ['ready', 'failed'], 'deleting'))) {
        throw new ConflictError(`template ${tpl.name} is ${tpl.status}`, { status: tpl.status });
      }
      return acceptJob(ctx, req, reply, { kind: 'template.delete', targetKind: 'template', targetId: tpl.id, params: {}, message: `delete template ${tpl.name}` });
    });
  };
}
