// The bare side of bench/migration.ts: a domain handled with virsh alone inside
// the lab hosts (define, start, migrate, domjobinfo, cleanup), and the pieces
// both sides share (a lab host's side, a migration's figures, a bounded poll).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostvisorClient } from '../api/client/client.js';
import type { StatusWatch } from '../test/agent/harness.js';
import type { LabAgent } from '../test/agent/storage/lab-agents.js';
import type { LabExecResult, LabHost } from '../test/lab/multihost/lab.js';
import { checkAborted, log, median, pause } from './bench-util.js';

export type Method = 'ours' | 'bare';

/** A lab host and, for the agent's side, its agent, API client, status events and migration ends (VM_migration_status done/failed, when received). */
export interface Side { host: LabHost; agent?: LabAgent; client?: HostvisorClient; watch?: StatusWatch; migrationEnds?: Array<{ vmId: string; status: string; at: number }> }

export interface Migration {
  converged: boolean;
  /** ms from the request to the end as the method reports it; null when it did not converge. */
  totalMs: number | null;
  /** libvirt's downtime of the guest, ms. */
  downtimeMs: number | null;
  /** ours only: the agent's own totalMs (VM.migrate to its end). */
  agentTotalMs?: number | null;
  /** ours only: ms from the request to the source agent's VM_migration_status "done" (sent once libvirt's migrateToURI3 returned, as virsh exits). */
  doneEventMs?: number | null;
  /** ours only: the source agent's phases (slot, hooks, connect, migrationCreate, migrateToURI3), ms each. */
  agentPhasesMs?: Record<string, number> | null;
  error: string | null;
}

/** Polls f (every stepMs) until it returns a value; rejects after ms or on abort. */
export async function until<T>(what: string, ms: number, f: () => T | undefined | Promise<T | undefined>, stepMs = 50): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    checkAborted();
    const v = await f();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`${what}: no result within ${ms} ms`);
    await pause(stepMs);
  }
}

/** virsh on the host's own libvirtd (qemu:///system inside the host's mount namespace). */
function virsh(h: LabHost, args: string[], timeoutMs = 30_000): Promise<LabExecResult> {
  return h.exec(['virsh', '-c', 'qemu:///system', ...args], { timeoutMs });
}

async function virshOk(h: LabHost, args: string[], timeoutMs?: number): Promise<string> {
  const r = await virsh(h, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${h.name}: virsh ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Defines the domain persistently (so that its completed job stats stay readable on the source) and starts it. */
export async function bareDefineAndStart(h: LabHost, name: string, xml: string): Promise<void> {
  mkdirSync(h.guestsDir, { recursive: true });
  const file = join(h.guestsDir, `${name}.xml`);
  writeFileSync(file, xml);
  await virshOk(h, ['define', file]);
  await virshOk(h, ['start', name], 60_000);
}

/** Destroys and undefines the named domains on the host, whatever state they are in (errors ignored). */
export async function removeDomains(h: LabHost, names: string[]): Promise<void> {
  for (const n of names) {
    await virsh(h, ['destroy', n]).catch(() => undefined);
    await virsh(h, ['undefine', n]).catch(() => undefined);
  }
}

/** What spawning virsh in a lab host costs by itself (a no-op `virsh uri`, median of 3): part of every bare figure. */
export async function bareVirshStartupMs(h: LabHost): Promise<number | null> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await virshOk(h, ['uri']);
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** "Total downtime: 123 ms" from `virsh domjobinfo --completed`. */
export function parseDowntime(domjobinfo: string): number | null {
  const m = /^Total downtime:\s+(\d+)\s*ms/m.exec(domjobinfo);
  return m ? Number(m[1]) : null;
}

/**
 * `virsh migrate --live --p2p --persistent` run inside the source host, timed from
 * spawn to exit. Past timeoutS the job is aborted (virsh's own --timeout would
 * suspend the guest instead), and the migration counts as not converged.
 */
export async function bareMigrate(src: Side, dst: Side, name: string, o: { bandwidthMiBs: number; transport: string; timeoutS: number }): Promise<Migration> {
  const args = ['migrate', '--live', '--p2p', '--persistent', '--bandwidth', String(o.bandwidthMiBs), name, `qemu+${o.transport}://${dst.host.address}/system`];
  let aborted = false;
  const abort = setTimeout(() => {
    aborted = true;
    virsh(src.host, ['domjobabort', name]).catch((e: unknown) => log(`domjobabort ${name}: ${String(e)}`));
  }, o.timeoutS * 1000);
  const t0 = performance.now();
  let r: LabExecResult;
  try {
    r = await virsh(src.host, args, o.timeoutS * 1000 + 30_000);
  } finally {
    clearTimeout(abort);
  }
  const totalMs = performance.now() - t0;
  const info = await virsh(src.host, ['domjobinfo', '--completed', name]);
  const downtimeMs = info.code === 0 ? parseDowntime(info.stdout) : null;
  if (r.code === 0 && !aborted) return { converged: true, totalMs, downtimeMs, error: null };
  return { converged: false, totalMs: null, downtimeMs, error: aborted ? `aborted after ${o.timeoutS} s` : `virsh exited ${r.code ?? r.signal}: ${r.stderr.trim()}` };
}
