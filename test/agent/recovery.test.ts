// Crash recovery on the real libvirtd: a hostvisord child process is killed
// with SIGKILL in the middle of concurrent operations, and a new agent
// rebuilds its view of the VMs from libvirt (domain XML metadata + state).
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { spawnAgent, testConfig, connectClient, StatusWatch, tinyGuest, MAIN_JS } from './harness.js';
import { ensureRunDir, guestDomainXml } from '../lab/guest.js';
import { Connection, enums } from '../../agent/libvirt/index.js';
import { CLIENT_ERRORS, HostvisorClientError, RpcCallError, type HostvisorClient } from '../../api/client/client.js';
import type { Config } from '../../agent/config/settings.js';

const SYSTEM_URI = 'qemu:///system';
const S = enums.DomainState;

/** Rejects after ms with a message saying what did not happen. */
function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); }),
  ]);
}

function openLibvirt(): Promise<Connection> {
  return within('open qemu:///system', Connection.open(SYSTEM_URI, { callTimeoutMs: 30_000 }), 35_000);
}

/** Destroys domains (by uuid, or by name for leftovers) straight through libvirt; never throws. */
async function destroyDirectly(conn: Connection, refs: { uuid?: string; name?: string }[]): Promise<string[]> {
  const destroyed: string[] = [];
  for (const r of refs) {
    try {
      const d = r.uuid ? await conn.lookupByUUID(r.uuid) : await conn.lookupByName(r.name!);
      await d.destroy().catch(() => {});
      await d.undefine().catch(() => {}); // persistent leftovers; transient ones are gone already
      destroyed.push(d.name);
    } catch { /* not there: fine */ }
  }
  return destroyed;
}

function exited(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return within('agent exit', new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))), ms);
}

async function killAgent(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await exited(child, 10_000).catch(() => {});
}

function parseLog(line: string): Record<string, unknown> {
  try { return JSON.parse(line) as Record<string, unknown>; } catch { return { raw: line }; }
}

/** Agents this process spawned that are still alive (spawnAgent does not hand out the child when it fails). */
function strayAgentPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== process.pid) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(MAIN_JS)) pids.push(Number(name));
    } catch { /* gone */ }
  }
  return pids;
}

function killStrayAgents(): void {
  for (const pid of strayAgentPids()) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
}

function stateName(s: number): string {
  return S[s] ?? String(s);
}

/** The agent status that libvirt's state implies for a running-or-paused domain. */
function expectedStatus(s: number): string {
  return s === S.PAUSED ? 'Paused' : s === S.RUNNING || s === S.BLOCKED ? 'Up' : `(libvirt ${stateName(s)})`;
}

interface Seen { at: number; source: 'event' | 'getVMList'; vmId: string; status: string }

/**
 * Starts a new agent and, while it starts up (before and during recovery),
 * connects as early as the RPC listener allows and records every status it
 * reports for our VMs, through events and by polling Host.getVMList.
 */
async function spawnWatching(config: Config, ours: Set<string>): Promise<{ child: ChildProcess; logs: string[]; seen: Seen[]; probeCodes: number[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  let ready = false;
  let stop = false;
  const probeId = randomUUID();
  const probeCodes: number[] = [];
  let client: HostvisorClient | undefined;
  const t0 = performance.now();
  const watcher = (async () => {
    while (!stop && !client) {
      try {
        client = await connectClient(config, { timeoutMs: 5_000 });
      } catch {
        await sleep(10);
      }
    }
    if (!client) return;
    client.onEvent((method, params) => {
      const m = method.match(/^\|virt\|VM_status\|(.+)$/);
      if (!m || !ours.has(m[1]!)) return;
      seen.push({ at: performance.now() - t0, source: 'event', vmId: m[1]!, status: String((params[m[1]!] as { status?: unknown } | undefined)?.status) });
    });
    while (!stop) {
      const wasReady = ready;
      try {
        const list = await client.call('Host.getVMList', {}, { timeoutMs: 5_000 });
        for (const v of list.vmList) if (ours.has(v.vmId)) seen.push({ at: performance.now() - t0, source: 'getVMList', vmId: v.vmId, status: v.status });
        // A mutating call (on a VM nobody has) while starting: refused with
        // recovery (99) until reconciled, then noVM (1); never served.
        if (!wasReady && probeCodes.length < 5) {
          const r = await client.call('VM.pause', { vmID: probeId }, { timeoutMs: 5_000 }).catch((e: unknown) => e);
          probeCodes.push(r instanceof RpcCallError ? r.code : -1);
        }
      } catch { /* the agent may not be serving yet */ }
      if (wasReady) break;
      await sleep(50);
    }
  })();
  let started;
  try {
    started = await spawnAgent(config);
  } catch (e) {
    stop = true;
    await client?.close().catch(() => {});
    throw e;
  } finally {
    ready = true;
  }
  await within('early watcher', watcher, 15_000).finally(() => { stop = true; });
  return {
    ...started, seen, probeCodes,
    close: async () => { stop = true; await client?.close().catch(() => {}); },
  };
}

t.test('kill -9 during 20 concurrent operations: all VMs recovered with their ids, none destroyed, interrupted operations completed or reported failed', async (t) => {
  const config = await testConfig();
  const names = [0, 1, 2, 3, 4].map((i) => `hv-it-rec-${i}`);
  const guests = names.map((n) => tinyGuest(n, { cmdline: ['lab.end=wait'] }));
  const ids = guests.map((g) => g.vmID);
  const ours = new Set(ids);
  const conn = await openLibvirt();
  let first: { child: ChildProcess; logs: string[] } | undefined;
  let second: Awaited<ReturnType<typeof spawnWatching>> | undefined;
  let client: HostvisorClient | undefined;
  let client2: HostvisorClient | undefined;
  t.teardown(async () => {
    await client?.close().catch(() => {});
    // The engine's way first, if the new agent is alive; libvirt directly for whatever is left.
    if (client2 && second?.child.exitCode === null) {
      await Promise.allSettled(ids.map((vmID) => client2!.call('VM.destroy', { vmID }, { timeoutMs: 30_000 })));
    }
    await client2?.close().catch(() => {});
    await second?.close();
    await killAgent(first?.child);
    await killAgent(second?.child);
    killStrayAgents();
    const left = await destroyDirectly(conn, ids.map((uuid) => ({ uuid })));
    if (left.length) t.comment(`teardown destroyed leftover domains through libvirt: ${left.join(', ')}`);
    await conn.close().catch(() => {});
  });
  // Leftovers of an earlier crashed run would clash on the names.
  const stale = await destroyDirectly(conn, names.map((name) => ({ name })));
  if (stale.length) t.comment(`destroyed stale domains from an earlier run: ${stale.join(', ')}`);

  first = await spawnAgent(config);
  client = await connectClient(config, { timeoutMs: 30_000 });
  const watch = new StatusWatch(client);
  const tBoot = performance.now();
  for (const g of guests) await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await within('5 VMs Up', Promise.all(ids.map((id) => watch.wait(id, 'Up', 90_000))), 95_000);
  t.comment(`5 VMs Up ${Math.round(performance.now() - tBoot)} ms after the first VM.create`);

  const domIdsBefore = new Map<string, number>();
  for (const id of ids) domIdsBefore.set(id, (await conn.lookupByUUID(id)).id);

  // 20 operations at once: per VM pause, cont, pause (in its queue, one after
  // the other) and one stats read; the agent dies while they run.
  type Op = { i: number; method: string; vm: number; outcome?: 'ok' | 'err'; result?: unknown; code?: number; message?: string; atMs?: number };
  const ops: Op[] = [];
  const calls: Promise<void>[] = [];
  let kill!: () => void;
  let killedAt = 0;
  let pendingAtKill = -1;
  const killNow = new Promise<void>((resolve) => { kill = resolve; });
  const fire = (method: 'VM.pause' | 'VM.cont' | 'VM.getStats' | 'Host.getAllVmStats', vm: number) => {
    const op: Op = { i: ops.length, method, vm };
    ops.push(op);
    const p = method === 'Host.getAllVmStats' ? client!.call(method, {}) : client!.call(method, { vmID: ids[vm]! });
    calls.push(p.then(
      (r) => { op.outcome = 'ok'; op.result = r; },
      (e: unknown) => { op.outcome = 'err'; op.code = e instanceof HostvisorClientError ? e.code : undefined; op.message = (e as Error).message; },
    ).finally(() => {
      op.atMs = killedAt ? Math.round(performance.now() - killedAt) : -Math.round(performance.now() - tFire);
      if (method === 'VM.pause' || method === 'VM.cont') kill(); // the first libvirt-backed answer: the rest are in flight
    }));
  };
  const tFire = performance.now();
  for (let vm = 0; vm < 5; vm++) fire('VM.pause', vm);
  for (let vm = 0; vm < 5; vm++) fire(vm % 2 ? 'VM.getStats' : 'Host.getAllVmStats', vm);
  for (let vm = 0; vm < 5; vm++) fire('VM.cont', vm);
  for (let vm = 0; vm < 5; vm++) fire('VM.pause', vm);
  t.equal(ops.length, 20, '20 operations sent at once');
  await within('first operation answer', killNow, 30_000);
  pendingAtKill = ops.filter((o) => !o.outcome).length;
  first.child.kill('SIGKILL');
  killedAt = performance.now();
  t.comment(`SIGKILL ${Math.round(killedAt - tFire)} ms after sending; ${pendingAtKill} of 20 operations still unanswered`);
  t.ok(pendingAtKill > 0, 'the agent was killed while operations were in flight');
  const death = await exited(first.child, 10_000);
  t.equal(death.signal, 'SIGKILL', 'the agent died of SIGKILL');

  await t.resolves(within('all 20 operations settled', Promise.all(calls), 15_000), 'every operation settled (none hangs) within 15 s of the kill');
  const unsettled = ops.filter((o) => !o.outcome);
  t.same(unsettled, [], 'no operation left unsettled');
  for (const o of ops) {
    if (o.outcome === 'ok') continue;
    // Failed because the connection was lost (ConnectionLostError from the client), or an error answer from the agent; never a client-side timeout.
    t.ok(o.code !== undefined && o.code !== 1007, `${o.method} on vm ${o.vm} reported failed (${o.code}: ${o.message})`);
  }
  const okCount = ops.filter((o) => o.outcome === 'ok').length;
  const lost = CLIENT_ERRORS.connectionLost.code;
  const closed = ops.filter((o) => o.outcome === 'err' && o.code === lost).length;
  const other = ops.filter((o) => o.outcome === 'err' && o.code !== lost);
  t.comment(`operations: ${okCount} completed, ${closed} failed with ConnectionLostError (1102), ${other.length} other errors ${JSON.stringify(other.map((o) => [o.method, o.vm, o.code, o.message]))}`);
  t.ok(Math.max(...ops.filter((o) => o.outcome === 'err').map((o) => o.atMs ?? 0), 0) < 5_000, 'failed operations were failed promptly after the kill');
  await client.close().catch(() => {});
  client = undefined;

  // libvirt itself: nothing was destroyed by the crash. The dead agent's last
  // calls may still be completing inside libvirtd: wait until the states hold
  // still for a second (bounded).
  const readStates = async () => {
    const m = new Map<string, number | undefined>();
    for (const id of ids) m.set(id, await conn.lookupByUUID(id).then((d) => d.state()).then((s) => s.state, () => undefined));
    return m;
  };
  let statesAfterKill = await readStates();
  const firstRead = [...statesAfterKill.values()].map((s) => (s === undefined ? 'missing' : stateName(s))).join(',');
  for (let stable = 0, n = 0; stable < 5 && n < 50; n++) {
    await sleep(200);
    const now = await readStates();
    stable = ids.every((id) => now.get(id) === statesAfterKill.get(id)) ? stable + 1 : 0;
    statesAfterKill = now;
  }
  const settledRead = [...statesAfterKill.values()].map((s) => (s === undefined ? 'missing' : stateName(s))).join(',');
  t.comment(`libvirt states ${Math.round(performance.now() - killedAt)} ms after the kill: ${settledRead}${firstRead !== settledRead ? ` (first read right after the kill: ${firstRead})` : ''}`);
  for (const [i, id] of ids.entries()) {
    const st = statesAfterKill.get(id);
    t.ok(st !== undefined, `${names[i]} still exists in libvirt after the kill`);
    if (st === undefined) continue;
    t.ok(st === S.RUNNING || st === S.PAUSED, `${names[i]} is running or paused in libvirt (${stateName(st)})`);
    t.equal((await conn.lookupByUUID(id)).id, domIdsBefore.get(id), `${names[i]} kept its runtime id (not restarted)`);
  }
  // A VM whose every state change was answered must be in the state of the last answer.
  for (let vm = 0; vm < 5; vm++) {
    const mine = ops.filter((o) => o.vm === vm && (o.method === 'VM.pause' || o.method === 'VM.cont'));
    if (mine.every((o) => o.outcome === 'ok')) {
      const last = mine[mine.length - 1]!.result as { status: string };
      t.equal(expectedStatus(statesAfterKill.get(ids[vm]!) ?? -1), last.status, `${names[vm]}: all its operations completed, libvirt is in the state of the last answer (${last.status})`);
    }
  }

  // A new agent recovers them.
  const tRec = performance.now();
  second = await spawnWatching(config, ours);
  t.comment(`new agent ready ${Math.round(performance.now() - tRec)} ms after spawn; ${second.probeCodes.length} polls before ready (VM.pause probe codes: ${[...new Set(second.probeCodes)].join(',')}), ${second.seen.length} statuses seen`);
  const records = second.logs.map(parseLog);
  const reconciled = records.find((r) => r.msg === 'VMs reconciled with libvirt');
  t.ok(reconciled && Number(reconciled.managed) >= 5, `the new agent logged the reconciliation (managed=${String(reconciled?.managed)})`);
  const readyLine = records.find((r) => r.msg === 'ready');
  t.ok(readyLine && (readyLine.phasesMs as Record<string, number>).recovery !== undefined, 'the ready line reports the recovery phase');

  client2 = await connectClient(config, { timeoutMs: 30_000 });
  const list = (await client2.call('Host.getVMList', {})).vmList;
  for (const [i, id] of ids.entries()) {
    const v = list.find((x) => x.vmId === id);
    t.ok(v, `${names[i]} is listed with its vmId`);
    if (!v) continue;
    const st = (await (await conn.lookupByUUID(id)).state()).state;
    t.equal(st, statesAfterKill.get(id), `${names[i]}: libvirt state did not change since the kill (${stateName(st)})`);
    t.match(v, { vmId: id, vmName: names[i], external: false, status: expectedStatus(st) }, `${names[i]} reported ${v.status}, as libvirt says ${stateName(st)}`);
    t.type(v.id, 'number', `${names[i]} has its runtime id (${v.id})`);
  }
  const seenBad = second.seen.filter((s) => s.status === 'Down');
  t.same(seenBad, [], `no VM was ever reported Down while the agent recovered (${second.seen.length} statuses seen: ${[...new Set(second.seen.map((s) => `${s.source}:${s.status}`))].join(', ')})`);
  t.same(second.probeCodes.filter((c) => c !== 99 && c !== 1), [], 'a VM operation sent while the agent started was refused: recovery (99) before reconciliation, noVM (1) after');

  // The new agent operates them.
  const agentLogs = second.logs;
  const call = async <T>(what: string, p: Promise<T>): Promise<T | undefined> => {
    try {
      return await p;
    } catch (e) {
      const err = e as RpcCallError;
      t.fail(`${what}: ${err.code}: ${err.message}`, { agentLog: agentLogs.slice(-8) });
      return undefined;
    }
  };
  const v0 = ids[0]!;
  if (list.find((x) => x.vmId === v0)?.status === 'Paused') t.same(await call('VM.cont', client2.call('VM.cont', { vmID: v0 })), { status: 'Up' }, 'cont of a VM paused by the dead agent');
  t.same(await call('VM.pause', client2.call('VM.pause', { vmID: v0 })), { status: 'Paused' }, 'the new agent pauses a recovered VM');
  t.equal((await (await conn.lookupByUUID(v0)).state()).state, S.PAUSED, 'libvirt has it paused');
  t.same(await call('VM.cont', client2.call('VM.cont', { vmID: v0 })), { status: 'Up' }, 'and continues it');
  t.equal((await (await conn.lookupByUUID(v0)).state()).state, S.RUNNING, 'libvirt has it running');

  // And destroys them.
  await Promise.all(ids.map((vmID) => call(`VM.destroy ${vmID}`, client2!.call('VM.destroy', { vmID }))));
  const remaining = (await conn.listAllDomains()).filter((d) => ours.has(d.uuid)).map((d) => d.name);
  t.same(remaining, [], 'VM.destroy through the new agent removed all 5 domains');
});

t.test('a domain without our metadata is reported external, and VM.destroy on it is refused with 1005 while it keeps running', async (t) => {
  const name = 'hv-it-rec-external';
  const conn = await openLibvirt();
  let agent: { child: ChildProcess } | undefined;
  let client: HostvisorClient | undefined;
  let uuid: string | undefined;
  t.teardown(async () => {
    await client?.close().catch(() => {});
    await killAgent(agent?.child);
    killStrayAgents();
    await destroyDirectly(conn, [uuid ? { uuid } : { name }]);
    await conn.close().catch(() => {});
  });
  await destroyDirectly(conn, [{ name }]);
  ensureRunDir();
  const dom = await conn.createXML(guestDomainXml({ name, cmdline: ['lab.end=wait'] }));
  uuid = dom.uuid;
  const domId = dom.id;

  const config = await testConfig();
  agent = await spawnAgent(config);
  client = await connectClient(config, { timeoutMs: 30_000 });
  const v = (await client.call('Host.getVMList', {})).vmList.find((x) => x.vmId === uuid);
  t.match(v, { vmId: uuid, vmName: name, external: true, status: 'Up', id: domId }, 'listed as external, Up, with its runtime id');
  const full = (await client.call('Host.getVMFullList', {})).vmList;
  t.notOk(full.some((x) => x.vmId === uuid), 'not in the managed VM list');

  const err = await client.call('VM.destroy', { vmID: uuid }).catch((e: unknown) => e);
  t.ok(err instanceof RpcCallError, 'VM.destroy is refused');
  t.equal((err as RpcCallError).code, 1005, 'with externalVM (1005)');
  const pauseErr = await client.call('VM.pause', { vmID: uuid }).catch((e: unknown) => e);
  t.equal((pauseErr as RpcCallError).code, 1005, 'VM.pause is refused with 1005 too');

  await sleep(500); // a wrongly issued destroy would have reached libvirt by now
  const d = await conn.lookupByUUID(uuid).catch(() => undefined);
  t.ok(d, 'the domain still exists');
  t.equal(d ? (await d.state()).state : -1, S.RUNNING, 'and is still running');
  t.equal(d?.id, domId, 'with the same runtime id (not restarted)');
  const again = (await client.call('Host.getVMList', {})).vmList.find((x) => x.vmId === uuid);
  t.equal(again?.status, 'Up', 'and the agent still reports it Up');
});
