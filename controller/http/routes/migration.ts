// POST /vms/{id}/migrate and host maintenance (/hosts/{id}/maintenance, .../activate,
// .../maintenance/cancel): the routes of controller/migration.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Host } from '../../model/hosts.js';
import { Job } from '../../model/jobs.js';
import { ConflictError, NotFoundError } from '../../store/errors.js';
import { acceptJob, type ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { errors, IdParams, MUTATING_ERRORS, optionalBody } from '../schemas.js';

const MigrateRequest = Type.Object({
  host: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'destination host id or name; default: the scheduler picks one (the filters of a start, minus the current host)' })),
  reason: Type.Optional(Type.String({ maxLength: 200, description: 'why, for the audit log' })),
}, { additionalProperties: false });

const Why = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 200, description: 'why, for the audit log' })) }, { additionalProperties: false });

class NotInstalledError extends ApiError {
  constructor(what: string) { super(409, 'NotSupported', `${what} is not available in this controller`, {}); }
}

export function migrationRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;
  return async (app) => {
    app.post('/vms/:id/migrate', { schema: { summary: 'Live-migrate a running VM to another host (the scheduler picks it unless given); a job with progress', tags: ['vms'],
      params: IdParams, body: optionalBody(MigrateRequest), response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409, 422) } } },
    async (req, reply) => {
      if (!ctx.vmMigrations) throw new NotInstalledError('live migration');
      const vm = await store.vms.get(req.params.id);
      let hostId: string | null = null;
      if (req.body?.host) {
        const h = (await store.hosts.list({ clusterId: vm.clusterId })).find((x) => x.id === req.body!.host || x.name === req.body!.host);
        if (!h) throw new NotFoundError('host in the VM\'s cluster', req.body.host, 'body.host');
        hostId = h.id;
      }
      const placed = await ctx.vmMigrations.place(vm.id, hostId, req.id);
      try {
        const job = await acceptJob(ctx, req, reply, { kind: 'vm.migrate', targetKind: 'vm', targetId: vm.id,
          params: { ...placed.params, ...(req.body?.reason && { reason: req.body.reason }) }, message: `migrate VM ${vm.name}` });
        placed.attach(job.id);
        return job;
      } catch (e) {
        placed.cancel();
        throw e;
      }
    });

    app.post('/hosts/:id/maintenance', { schema: { summary: 'Put a host into maintenance: 409 naming every blocker (pinned VMs, an SPM with running tasks, a VM no other host has room for); else PreparingForMaintenance, the SPM role moved first, the VMs migrated off, then Maintenance with the storage pool disconnected; a job',
      tags: ['hosts'], params: IdParams, body: optionalBody(Why), response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      if (!ctx.hostMaintenance) throw new NotInstalledError('host maintenance');
      const host = await store.hosts.get(req.params.id);
      const active = await store.jobs.activeFor(host.id, ['host.maintenance']);
      if (active) throw new ConflictError(`host ${host.name} has a maintenance job under way`, { job: active.id });
      await ctx.hostMaintenance.prepare(host.id, `admin: maintenance${req.body?.reason ? `: ${req.body.reason}` : ''}`);
      return acceptJob(ctx, req, reply, { kind: 'host.maintenance', targetKind: 'host', targetId: host.id, params: { reason: req.body?.reason ?? null }, message: `maintenance of host ${host.name}` });
    });

    for (const [path, verb, summary] of [
      ['/hosts/:id/activate', 'activate', 'Bring a host out of Maintenance (Initializing, then Up at the next good poll)'],
      ['/hosts/:id/maintenance/cancel', 'cancel', 'Give up a maintenance under way or failed (PreparingForMaintenance, MaintenanceFailed): the host returns to Up'],
    ] as const) {
      app.post(path, { schema: { summary, tags: ['hosts'], params: IdParams, body: optionalBody(Why), response: { 200: Host, ...errors(...MUTATING_ERRORS, 404, 409) } } },
        async (req) => {
          if (!ctx.hostMaintenance) throw new NotInstalledError('host maintenance');
          const host = await store.hosts.get(req.params.id);
          const why = `admin: ${verb}${req.body?.reason ? `: ${req.body.reason}` : ''}`;
          const h = verb === 'activate' ? await ctx.hostMaintenance.activate(host.id, why) : await ctx.hostMaintenance.cancel(host.id, why);
          await store.event({ kind: `host.${verb}`, subjectKind: 'host', subjectId: host.id, correlationId: req.id, message: `host ${host.name}: ${why}` });
          return { ...host, status: h.status, reasons: h.reasons.map((r) => r.message) };
        });
    }
  };
}
