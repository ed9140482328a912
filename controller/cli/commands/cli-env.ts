// What every command module of hostvisor-ctl gets: the client, the printer, the exit code, and
// the helpers that turn a name into an id and wait for a job.
import type { Command } from 'commander';
import type { Job } from '../../model/jobs.js';
import { ApiCallError, type ApiClient } from '../api-client.js';
import { waitForJob } from '../job-wait.js';

export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

export interface GlobalOpts { url: string; creds: string; json?: boolean }

export interface CliEnv {
  io: Io;
  ctx(): { g: GlobalOpts; client: ApiClient };
  print(value: unknown, human: () => string): void;
  setCode(code: number): void;
}

export type RegisterCommands = (program: Command, env: CliEnv) => void;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An id as given, or the id of the one item of `path` with that name. */
export async function resolveRef(client: ApiClient, path: string, kind: string, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const items = await client.call<{ id: string; name: string }[]>('GET', path);
  const hits = items.filter((i) => i.name === ref);
  if (hits.length === 1) return hits[0]!.id;
  throw new ApiCallError(0, hits.length ? 'Ambiguous' : 'NotFound', hits.length ? `${hits.length} ${kind}s are named ${ref}: give the id` : `no ${kind} named ${ref}`);
}

/** "1G", "512M", "10737418240": bytes. */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?$/i.exec(v.trim());
  if (!m) throw new ApiCallError(0, 'InvalidArgument', `${v} is not a size (e.g. 1G, 512M)`);
  const unit = (m[2] ?? 'B').toUpperCase()[0]!;
  const mult = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[unit] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

/** After an action: with --wait, follows the job (progress bar) and sets the exit code. */
export async function afterAction(env: CliEnv, job: Job, what: string, wait: boolean | undefined, timeoutS = 600): Promise<void> {
  const { g, client } = env.ctx();
  if (!wait) {
    env.print(job, () => `${what}: job ${job.id} (${job.state}); follow it with: hostvisor-ctl jobs wait ${job.id}\n`);
    return;
  }
  const r = await waitForJob(client, job.id, { timeoutMs: timeoutS * 1000, out: g.json ? { write: () => true } as unknown as Io['out'] : env.io.out });
  if (g.json) env.io.out.write(JSON.stringify(r.job, null, 2) + '\n');
  if (r.timedOut) { env.io.err.write(`hostvisor-ctl: job ${job.id} is still ${r.job.state} after ${timeoutS} s\n`); env.setCode(3); }
  else if (r.job.state === 'failed') { env.io.err.write(`hostvisor-ctl: ${what} failed: ${r.job.error?.code ?? ''}: ${r.job.error?.message ?? ''}\n`); env.setCode(1); }
  else if (!g.json) env.io.out.write(`${what}: done\n`);
}
