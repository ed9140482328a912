// hostvisor-ctl: the controller's command line. Tables for people, --json for scripts. It talks
// to the controller API with the admin certificate in /etc/pki/hostvisor/admin unless told.
//
// Exit codes: 0 done; 1 the controller refused or could not be reached, or a waited job failed;
// 2 usage; 3 `jobs wait` ran out of time (the job goes on).
import { Command, CommanderError, Option } from 'commander';
import type { Cluster } from '../model/clusters.js';
import type { Host } from '../model/hosts.js';
import type { Job } from '../model/jobs.js';
import { ApiCallError, ApiClient, DEFAULT_CREDS_DIR, DEFAULT_URL, loadCredentials } from './api-client.js';
import { waitForJob } from './job-wait.js';
import { ago, table } from './table.js';
import { resolveRef, type CliEnv, type GlobalOpts, type Io } from './commands/cli-env.js';
import { registerStorage } from './commands/storage.js';
import { registerConsole } from './commands/console.js';
import { registerVms } from './commands/vms.js';
import { registerEvents } from './commands/events.js';
import { registerHostMaintenance } from './commands/host-maintenance.js';
import { registerJobCancel } from './commands/disk-copy.js';


type HostView = Host & { spm: boolean; vmCount: number };

export async function main(argv: string[], io: Io = { out: process.stdout, err: process.stderr, env: process.env }): Promise<number> {
  let code = 0;
  const program = new Command('hostvisor-ctl')
    .description('Hostvisor controller command line')
    .addOption(new Option('--url <url>', 'controller API').default(io.env.HOSTVISOR_URL ?? DEFAULT_URL))
    .addOption(new Option('--creds <dir>', 'client credentials: cert.pem, key.pem, ca.pem').default(io.env.HOSTVISOR_CREDS ?? DEFAULT_CREDS_DIR))
    .option('--json', 'print JSON for scripts')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });

  const ctx = () => {
    const g = program.opts<GlobalOpts>();
    return { g, client: new ApiClient(new URL(g.url), loadCredentials(g.creds)) };
  };
  const print = (json: boolean | undefined, value: unknown, human: () => string) => io.out.write(json ? JSON.stringify(value, null, 2) + '\n' : human());

  const hosts = program.command('hosts').description('hosts and their enrollment');
  hosts.command('add <name>').description('create a one-time enrollment token for a host')
    .requiredOption('--address <address>', 'IP address or DNS name the controller reaches the host at')
    .option('--port <port>', 'agent port', (v) => Number(v))
    .option('--cluster <cluster>', 'cluster id or name', 'default')
    .option('--ttl <seconds>', 'token lifetime in seconds', (v) => Number(v))
    .action(async (name: string, o: { address: string; port?: number; cluster: string; ttl?: number }) => {
      const { g, client } = ctx();
      const r = await client.call<{ token: string; expiresAt: number; hostName: string }>('POST', '/api/v1/hosts',
        { name, address: o.address, cluster: o.cluster, ...(o.port !== undefined && { port: o.port }), ...(o.ttl !== undefined && { ttlSeconds: o.ttl }) });
      print(g.json, r, () => `token for ${r.hostName} (single use, expires ${new Date(r.expiresAt).toISOString()}):\n  ${r.token}\n`
        + `on the host, run:\n  hostvisor enroll --controller ${g.url} --token ${r.token}\n`);
    });
  hosts.command('list').description('list hosts').action(async () => {
    const { g, client } = ctx();
    const list = await client.call<HostView[]>('GET', '/api/v1/hosts');
    print(g.json, list, () => table(['NAME', 'STATUS', 'SPM', 'ADDRESS', 'VMS', 'PRIORITY', 'LAST CONTACT', 'REASONS'],
      list.map((h) => [h.name, h.status, h.spm ? 'SPM' : '', h.address, h.vmCount, h.spmPriority, ago(h.lastContact), h.reasons.join('; ')])));
  });

  hosts.command('get <host>').description('one host').action(async (ref: string) => {
    const { g, client } = ctx();
    const h = await client.call<HostView>('GET', `/api/v1/hosts/${await resolveRef(client, '/api/v1/hosts', 'host', ref)}`);
    print(g.json, h, () => table(['NAME', 'STATUS', 'SPM', 'ADDRESS', 'VMS', 'CPU', 'MEMORY USED', 'LAST CONTACT', 'REASONS'],
      [[h.name, h.status, h.spm ? 'SPM' : '', `${h.address}:${h.port}`, h.vmCount, h.stats ? `${h.stats.cpuUsedPercent}%` : null,
        h.stats ? `${h.stats.memUsedMiB}/${h.stats.memTotalMiB} MiB` : null, ago(h.lastContact), h.reasons.join('; ')]]));
  });
  hosts.command('set-priority <host> <priority>').description('SPM priority -1..10 (-1 = never SPM)').action(async (ref: string, p: string) => {
    const { g, client } = ctx();
    const h = await client.call<HostView>('PATCH', `/api/v1/hosts/${await resolveRef(client, '/api/v1/hosts', 'host', ref)}`, { spmPriority: Number(p) });
    print(g.json, h, () => `host ${h.name}: SPM priority ${h.spmPriority}\n`);
  });
  hosts.command('delete <host>').description('remove a host (refused while VMs run on it)').action(async (ref: string) => {
    const { g, client } = ctx();
    const id = await resolveRef(client, '/api/v1/hosts', 'host', ref);
    await client.call('DELETE', `/api/v1/hosts/${id}`);
    print(g.json, { id, deleted: true }, () => `host ${ref} removed\n`);
  });

  program.command('clusters').description('clusters').command('list').description('list clusters').action(async () => {
    const { g, client } = ctx();
    const list = await client.call<Cluster[]>('GET', '/api/v1/clusters');
    print(g.json, list, () => table(['NAME', 'POLICY', 'THRESHOLDS', 'ID'],
      list.map((c) => [c.name, c.policy, Object.entries(c.thresholds).map(([k, v]) => `${k}=${v}`).join(' '), c.id])));
  });

  const env: CliEnv = { io, ctx, print: (value, human) => print(program.opts<GlobalOpts>().json, value, human), setCode: (c) => { code = c; } };
  registerStorage(program, env);
  registerVms(program, env);
  registerConsole(program, env);
  registerEvents(program, env);
  registerHostMaintenance(hosts, env);

  const jobs = program.command('jobs').description('asynchronous actions');
  jobs.command('get <id>').description('show a job').action(async (id: string) => {
    const { g, client } = ctx();
    const j = await client.call<Job>('GET', `/api/v1/jobs/${encodeURIComponent(id)}`);
    print(g.json, j, () => table(['ID', 'KIND', 'STATE', 'PROGRESS', 'TARGET', 'CORRELATION'], [[j.id, j.kind, j.state, `${j.progress}%`, `${j.targetKind} ${j.targetId}`, j.correlationId]])
      + (j.steps.length ? '\n' + table(['STEP', 'STATE', 'HOST', 'DETAIL'], j.steps.map((s) => [s.name, s.state, s.hostId, s.detail])) : '')
      + (j.error ? `\nerror: ${j.error.code}: ${j.error.message}\n` : ''));
  });
  registerJobCancel(jobs, env);
  jobs.command('wait <id>').description('wait for a job to end, with a progress bar')
    .option('--timeout <seconds>', 'give up waiting after this long (the job goes on)', (v) => Number(v), 600)
    .action(async (id: string, o: { timeout: number }) => {
      const { g, client } = ctx();
      const r = await waitForJob(client, id, { timeoutMs: o.timeout * 1000, out: g.json ? { write: () => true } as unknown as Io['out'] : io.out });
      if (g.json) io.out.write(JSON.stringify(r.job, null, 2) + '\n');
      if (r.timedOut) { io.err.write(`hostvisor-ctl: job ${id} is still ${r.job.state} after ${o.timeout} s\n`); code = 3; }
      else if (r.job.state === 'failed') { io.err.write(`hostvisor-ctl: job ${id} failed: ${r.job.error?.code ?? ''}: ${r.job.error?.message ?? ''}\n`); code = 1; }
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof ApiCallError) {
      io.err.write(`hostvisor-ctl: ${e.code}${e.status ? ` (HTTP ${e.status})` : ''}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
