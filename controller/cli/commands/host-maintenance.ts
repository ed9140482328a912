// hostvisor-ctl hosts maintenance | activate | maintenance-cancel: the host maintenance routes.
// Maintenance answers a job (the SPM role handed over, the VMs migrated off), followed with a
// progress bar like `jobs wait`; a refusal lists every blocker the controller named.
import type { Command } from 'commander';
import type { Host } from '../../model/hosts.js';
import type { Job } from '../../model/jobs.js';
import { ApiCallError } from '../api-client.js';
import { afterAction, resolveRef, type CliEnv } from './cli-env.js';

interface Blocker { kind?: string; vmId?: string; vmName?: string; message?: string }

/** A 409 from the maintenance route, with each blocker on its own line. */
function withBlockers(e: unknown): unknown {
  if (!(e instanceof ApiCallError) || e.status !== 409) return e;
  const blockers = (e.details['blockers'] as Blocker[] | undefined) ?? [];
  if (blockers.length === 0) return e;
  const lines = blockers.map((b) => `  - ${b.message ?? [b.kind, b.vmName ?? b.vmId].filter(Boolean).join(' ')}`);
  return new ApiCallError(e.status, e.code, `${e.message}\n${lines.join('\n')}`, e.details, { cause: e });
}

export function registerHostMaintenance(hosts: Command, env: CliEnv): void {
  const hostId = (ref: string) => resolveRef(env.ctx().client, '/api/v1/hosts', 'host', ref);

  hosts.command('maintenance <host>')
    .description('put a host into maintenance: the SPM role moves first, then its VMs are migrated off; shows a progress bar until the job ends')
    .option('--reason <text>', 'why (kept in the events)')
    .option('--no-wait', 'answer with the job at once')
    .option('--timeout <seconds>', 'how long to wait', (v) => Number(v), 1800)
    .action(async (ref: string, o: { reason?: string; wait: boolean; timeout: number }) => {
      const id = await hostId(ref);
      let job: Job;
      try {
        job = await env.ctx().client.call<Job>('POST', `/api/v1/hosts/${id}/maintenance`, o.reason ? { reason: o.reason } : {});
      } catch (e) {
        throw withBlockers(e);
      }
      await afterAction(env, job, `maintenance of ${ref}`, o.wait, o.timeout);
    });

  for (const [verb, path, what] of [
    ['activate', 'activate', 'bring a host out of Maintenance (Up at its next good poll)'],
    ['maintenance-cancel', 'maintenance/cancel', 'give up a maintenance under way or failed (MaintenanceFailed): the host returns to Up'],
  ] as const) {
    hosts.command(`${verb} <host>`).description(what).option('--reason <text>', 'why (kept in the events)')
      .action(async (ref: string, o: { reason?: string }) => {
        const h = await env.ctx().client.call<Host>('POST', `/api/v1/hosts/${await hostId(ref)}/${path}`, o.reason ? { reason: o.reason } : {});
        env.print(h, () => `host ${h.name}: ${h.status}${h.reasons.length ? ` (${h.reasons.join('; ')})` : ''}\n`);
      });
  }
}
