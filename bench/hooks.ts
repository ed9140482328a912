// Benchmark: what before_vm_start hooks add to a VM start, and what the hook runner costs alone.
//
//   npx tsc -p tsconfig.json && npm run bench:hooks
//   (= node --expose-gc dist/bench/hooks.js; run as root, after test/lab/setup.sh)
//
// 1. Runner alone (no VM, no agent): agent/hooks/runner.ts HookRunner.run('before_vm_start')
//    in this process on the domain XML the agent builds for the tiny guest, with 0, 1 and 10
//    trivial hooks, each hook either `#!/bin/sh\nexit 0` (sh) or a python hook that imports
//    `hooking` and reads and writes the domxml (py). Rounds interleave the cells; each cell is
//    a minimum count of runs and a time window, bounded.
// 2. Through the agent: hostvisord as a child process (harness spawnAgent, stats intervals
//    15 s), one API client. Configurations: no hooks (the baseline), 1 and 10 sh hooks, 1 and
//    10 py hooks, all in <hooks.dir>/before_vm_start/. Per round, every configuration starts one
//    guest (order rotated each round): install its hooks, wait until Host.getCapabilities lists
//    exactly them, VM.create -> the |virt|VM_status|<vmId> Up event, VM.destroy; one guest at
//    a time. before_vm_start runs inside VM.create before it answers, so the VM.create reply time
//    shows the hook cost with less noise than Up.
// 3. Destroys its guests (hv-bench-hooks-*, finally), stops the agent, prints tables and ends
//    with ONE line of JSON (nothing is printed after it).
//
// Env knobs (bounded): BENCH_GUESTS (6, guests per configuration, 1..10), BENCH_SETTLE_MS (300),
// BENCH_START_TIMEOUT_MS (30000 per start), BENCH_RUNNER_ROUNDS (3), BENCH_RUNNER_WINDOW_MS (1000),
// BENCH_RUNNER_MIN_RUNS (5). Only loopback and the local libvirt socket are used.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadavg, tmpdir } from 'node:os';
import { native } from '../agent/libvirt/index.js';
import { HookRunner } from '../agent/hooks/runner.js';
import { silentLogger } from '../agent/log.js';
import { specToDomainXml } from '../agent/vm/domain-xml.js';
import { emptyMetadata } from '../agent/vm/metadata.js';
import type { HostvisorClient } from '../api/client/client.js';
import { connectClient, REPO, StatusWatch, tinyGuest } from '../test/agent/harness.js';
import {
  type BenchAgent, checkAborted, deadline, dumpAgent, envInt, fmt, log, openWithRetry,
  pause, printTable, round, startAgentChild, stopAgentChild, summarize, whenClosed, runBench, destroyLeftGuests,
} from './bench-util.js';

const GUESTS = envInt('BENCH_GUESTS', 6, 1, 10);
const SETTLE_MS = envInt('BENCH_SETTLE_MS', 300, 0, 5_000);
const START_TIMEOUT_MS = envInt('BENCH_START_TIMEOUT_MS', 30_000, 5_000, 120_000);
const RUNNER_ROUNDS = envInt('BENCH_RUNNER_ROUNDS', 3, 1, 10);
const RUNNER_WINDOW_MS = envInt('BENCH_RUNNER_WINDOW_MS', 1_000, 100, 10_000);
const RUNNER_MIN_RUNS = envInt('BENCH_RUNNER_MIN_RUNS', 5, 1, 100);
const RUNNER_CELL_CAP_MS = 10_000; // a cell never runs longer than this per round
const RUNNER_MAX_RUNS = 5_000;
const INVENTORY_TIMEOUT_MS = 10_000;
const PREFIX = 'hv-bench-hooks-'; // only these domains are ours (other benches' hv-bench-* are left alone)
const CMDLINE = ['lab.end=wait'];
const POINT = 'before_vm_start';

type Kind = 'sh' | 'py';
interface Cfg { key: string; label: string; kind: Kind; n: number }
const CONFIGS: Cfg[] = [
  { key: '0', label: 'no hooks', kind: 'sh', n: 0 },
  { key: '1', label: '1 sh hook', kind: 'sh', n: 1 },
  { key: '10', label: '10 sh hooks', kind: 'sh', n: 10 },
  { key: 'py_1', label: '1 python hook', kind: 'py', n: 1 },
  { key: 'py_10', label: '10 python hooks', kind: 'py', n: 10 },
];

const BODY: Record<Kind, string> = {
  sh: '#!/bin/sh\nexit 0\n',
  py: '#!/usr/bin/python3\nimport hooking\nhooking.write_domxml(hooking.read_domxml())\n',
};

const hookName = (i: number): string => `${String(10 + i).padStart(2, '0')}_bench`;

/** Makes <root>/before_vm_start hold exactly n hooks of a kind (root-owned, 0755). */
function installHooks(root: string, kind: Kind, n: number): string[] {
  const dir = join(root, POINT);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) rmSync(join(dir, f), { force: true });
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const file = join(dir, hookName(i));
    writeFileSync(file, BODY[kind], { mode: 0o755 });
    chmodSync(file, 0o755);
    names.push(hookName(i));
  }
  return names;
}

function tinyXml(): { xml: string; vmId: string } {
  const g = tinyGuest(`${PREFIX}runner`, { cmdline: CMDLINE });
  const meta = emptyMetadata();
  meta.startTime = Date.now();
  meta.launchPaused = false;
  return { xml: specToDomainXml(g.vmID, g.spec, 'qemu', meta), vmId: g.vmID };
}

// ---------- 1. the runner alone ----------

interface RunnerCell { key: string; kind: Kind; n: number; ms: number[] }

async function benchRunner(): Promise<RunnerCell[]> {
  const cells: RunnerCell[] = CONFIGS.map((c) => ({ key: c.key, kind: c.kind, n: c.n, ms: [] }));
  const base = mkdtempSync(join(tmpdir(), 'hv-bench-hooks-runner-'));
  try {
    const runDir = join(base, 'run');
    // One hook tree per cell, so no cell sees another's files.
    const runners = cells.map((c) => {
      const dir = join(base, `tree-${c.key}`);
      mkdirSync(dir, { mode: 0o755 });
      installHooks(dir, c.kind, c.n);
      return new HookRunner({ dir, timeoutMs: 30_000, outputCapBytes: 64 * 1024, pythonPath: join(REPO, 'hooks', 'lib'), runDir, log: silentLogger });
    });
    const { xml, vmId } = tinyXml();
    const once = async (i: number): Promise<number> => {
      const t0 = performance.now();
      const r = await runners[i]!.run(POINT, { data: xml, vmId, customProperties: {}, launchFlags: 0 });
      const ms = performance.now() - t0;
      if (r.failed || r.runs.length !== cells[i]!.n) throw new Error(`runner ${cells[i]!.key}: failed=${r.failed}, ${r.runs.length} runs: ${JSON.stringify(r.runs.map((x) => [x.rc, x.refused, x.stderr]))}`);
      if (cells[i]!.kind === 'py' && cells[i]!.n > 0 && !r.data.includes(vmId)) throw new Error('python hooks lost the domain XML');
      return ms;
    };
    for (let i = 0; i < cells.length; i++) await once(i); // warm-up: page cache, python bytecode
    for (let round = 0; round < RUNNER_ROUNDS; round++) {
      for (let k = 0; k < cells.length; k++) {
        const i = (k + round) % cells.length;
        const cell = cells[i]!;
        const t0 = performance.now();
        let n = 0;
        for (;;) {
          checkAborted();
          const el = performance.now() - t0;
          if ((n >= RUNNER_MIN_RUNS && el >= RUNNER_WINDOW_MS) || n >= RUNNER_MAX_RUNS || el >= RUNNER_CELL_CAP_MS) break;
          cell.ms.push(await once(i));
          n++;
        }
      }
      log(`runner round ${round}: ${cells.map((c) => `${c.key} ${fmt(summarize(c.ms, 2).median, 2)} ms`).join(', ')}`);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  return cells;
}

// ---------- 2. through the agent ----------

interface VmRun { cfg: string; name: string; replyMs: number; upMs: number }

async function destroyOurGuests(): Promise<number> {
  const c = await openWithRetry(30_000);
  try {
    const doms = (await c.listAllDomains()).filter((d) => d.name.startsWith(PREFIX));
    await Promise.all(doms.map(async (d) => {
      if (d.id >= 0) await d.destroy().catch((e: unknown) => log(`destroy ${d.name}: ${String(e)}`));
      await d.undefine().catch(() => {});
    }));
    return doms.length;
  } finally {
    await c.close().catch(() => {});
  }
}

/** Polls Host.getCapabilities until the agent's inventory lists exactly `names` at before_vm_start. */
async function waitInventory(client: HostvisorClient, names: string[]): Promise<void> {
  const want = [...names].sort().join(',');
  const until = performance.now() + INVENTORY_TIMEOUT_MS;
  for (;;) {
    const caps = await client.call('Host.getCapabilities', {});
    const have = Object.keys(caps.hooks[POINT] ?? {}).sort().join(',');
    if (have === want) return;
    if (performance.now() > until) throw new Error(`the agent's hook inventory did not become [${want}] within ${INVENTORY_TIMEOUT_MS} ms (has [${have}])`);
    await pause(25);
  }
}

async function startOne(client: HostvisorClient, watch: StatusWatch, closed: Promise<never>, cfg: string, name: string): Promise<VmRun> {
  const g = tinyGuest(name, { cmdline: CMDLINE });
  await rm(g.serial, { force: true });
  const t0 = performance.now();
  let created = false;
  try {
    const r = await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
    created = true;
    const tReply = performance.now();
    if (r.status !== 'WaitForLaunch') throw new Error(`${name}: VM.create answered ${JSON.stringify(r)}`);
    await Promise.race([watch.wait(g.vmID, 'Up', START_TIMEOUT_MS, t0), closed]);
    const up = watch.events.find((e) => e.vmId === g.vmID && e.body.status === 'Up' && e.at >= t0)?.at as number;
    return { cfg, name, replyMs: tReply - t0, upMs: up - t0 };
  } finally {
    if (created) {
      await client.call('VM.destroy', { vmID: g.vmID }, { timeoutMs: 45_000 }).catch((e: unknown) => log(`VM.destroy ${name}: ${String(e)}`));
    }
    await rm(g.serial, { force: true });
  }
}

async function main(): Promise<number> {
  const runStart = performance.now();
  const load1Start = loadavg()[0] ?? 0;

  log(`runner: ${RUNNER_ROUNDS} rounds, each cell >= ${RUNNER_MIN_RUNS} runs and >= ${RUNNER_WINDOW_MS} ms`);
  const runner = await benchRunner();
  const runnerMs = (key: string): number | null => summarize(runner.find((c) => c.key === key)?.ms ?? [], 2).median;

  const leftovers = await destroyOurGuests();
  if (leftovers > 0) log(`removed ${leftovers} leftover ${PREFIX}* domain(s)`);
  let agent: BenchAgent | undefined;
  let client: HostvisorClient | undefined;
  const runs: VmRun[] = [];
  let warm: VmRun;
  let others = 0;
  try {
    agent = await startAgentChild({ 'stats.vmIntervalMs': 15_000, 'stats.hostIntervalMs': 15_000, 'virt.domainType': 'qemu' });
    const a = agent;
    log(`agent pid ${a.pid} ready on port ${a.config['rpc.port']}, hooks.dir ${a.config['hooks.dir']}`);
    client = await connectClient(a.config);
    const c = client;
    const watch = new StatusWatch(c);
    const closed = whenClosed(c);
    const conn = await openWithRetry(15_000);
    others = (await conn.listAllDomains().finally(() => conn.close().catch(() => {}))).filter((d) => d.id >= 0 && !d.name.startsWith(PREFIX)).length;
    if (others > 0) log(`note: ${others} other running domain(s) on this host`);
    const hooksDir = a.config['hooks.dir'];

    const use = async (cfg: Cfg): Promise<void> => { await waitInventory(c, installHooks(hooksDir, cfg.kind, cfg.n)); };
    await use(CONFIGS[0]!);
    warm = await startOne(c, watch, closed, 'warm', `${PREFIX}warm`);
    log(`warm-up (no hooks, not counted): Up after ${round(warm.upMs)} ms`);
    for (let i = 0; i < GUESTS; i++) {
      for (let k = 0; k < CONFIGS.length; k++) {
        const cfg = CONFIGS[(k + i) % CONFIGS.length]!;
        checkAborted();
        await use(cfg);
        await pause(SETTLE_MS);
        runs.push(await startOne(c, watch, closed, cfg.key, `${PREFIX}${cfg.key.replace('_', '')}-${i}`));
      }
      log(`round ${i}: ${runs.slice(-CONFIGS.length).map((r) => `${r.cfg} reply ${round(r.replyMs)} / Up ${round(r.upMs)} ms`).join(', ')}`);
    }
    await use(CONFIGS[0]!);
  } catch (e) {
    dumpAgent(agent);
    throw e;
  } finally {
    await destroyLeftGuests(destroyOurGuests, `${PREFIX}*`);
    if (client) await deadline(client.close(), 5_000, 'client close').catch(() => {});
    if (agent) {
      await stopAgentChild(agent);
      for (const d of [agent.config['hooks.dir'], agent.config['hooks.runDir']]) rmSync(d, { recursive: true, force: true });
    }
  }

  // ---------- report ----------
  const of = (key: string): VmRun[] => runs.filter((r) => r.cfg === key);
  const up = (key: string) => summarize(of(key).map((r) => r.upMs));
  const reply = (key: string) => summarize(of(key).map((r) => r.replyMs), 2);
  const base = up('0').median;
  const baseReply = reply('0').median;
  const added = (v: number | null, b: number | null, d = 1): number | null => (v === null || b === null ? null : round(v - b, d));

  const rows: string[][] = [['configuration', 'guests', 'VM.create reply ms (median)', 'added reply ms', 'Up ms (median)', 'Up p90', 'Up min..max', 'added Up ms (medians)']];
  for (const cfg of CONFIGS) {
    const u = up(cfg.key);
    const r = reply(cfg.key);
    rows.push([cfg.label, String(u.n), fmt(r.median, 2), cfg.n ? fmt(added(r.median, baseReply, 2), 2) : 'baseline', fmt(u.median), fmt(u.p90),
      `${fmt(u.min)}..${fmt(u.max)}`, cfg.n ? fmt(added(u.median, base)) : 'baseline']);
  }
  printTable(rows);
  console.log('');
  const rrows: string[][] = [['runner (no VM)', 'runs', 'median ms', 'p90 ms', 'per hook ms']];
  for (const c of runner) {
    const s = summarize(c.ms, 2);
    rrows.push([c.n === 0 ? 'no hooks' : `${c.n} ${c.kind === 'py' ? 'python' : 'sh'} hook${c.n > 1 ? 's' : ''}`, String(s.n), fmt(s.median, 2), fmt(s.p90, 2), c.n ? fmt((s.median ?? NaN) / c.n, 2) : '-']);
  }
  printTable(rrows);

  const json: Record<string, unknown> = {};
  for (const cfg of CONFIGS) json[`create_up_median_ms_${cfg.key}`] = up(cfg.key).median;
  for (const cfg of CONFIGS.slice(1)) json[`added_ms_${cfg.key}`] = added(up(cfg.key).median, base);
  for (const c of runner) json[`runner_ms_${c.key}`] = runnerMs(c.key);
  for (const cfg of CONFIGS) json[`create_reply_median_ms_${cfg.key}`] = reply(cfg.key).median;
  for (const cfg of CONFIGS.slice(1)) json[`added_reply_ms_${cfg.key}`] = added(reply(cfg.key).median, baseReply, 2);
  for (const cfg of CONFIGS) json[`create_up_p90_ms_${cfg.key}`] = up(cfg.key).p90;
  for (const cfg of CONFIGS) json[`create_up_runs_ms_${cfg.key}`] = of(cfg.key).map((r) => round(r.upMs));
  for (const c of runner) json[`runner_runs_${c.key}`] = c.ms.length;
  Object.assign(json, {
    guests: GUESTS,
    warmup_up_ms: round(warm.upMs),
    mode: 'sequential: each guest destroyed before the next; configurations rotate each round',
    agent: 'child process (spawnAgent), stats intervals 15000 ms',
    settle_ms: SETTLE_MS,
    other_domains: others,
    loadavg_1m_start: round(load1Start, 2),
    loadavg_1m_end: round(loadavg()[0] ?? 0, 2),
    libvirt_version: native.libVersion(),
    node: process.version,
    total_s: round((performance.now() - runStart) / 1000),
  });
  console.log(`VM.create -> Up through the agent, ${GUESTS} guests per configuration, one at a time; before_vm_start hooks: ` +
    `sh = '#!/bin/sh exit 0', python = import hooking, read_domxml, write_domxml; load ${json.loadavg_1m_start} -> ${json.loadavg_1m_end}, total ${json.total_s} s`);
  console.log(JSON.stringify(json));
  return 0;
}

runBench(main);
