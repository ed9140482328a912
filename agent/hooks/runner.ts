// Runs the hook scripts of one hook point, VDSM's way: every executable
// regular file in <dir>/<point>/, in sorted order, one after another, on the
// same temp file; the file is read back after the last script. Beyond VDSM:
// a timeout per hook (the whole process group is killed), stdin /dev/null,
// no descriptors beyond 0-2, capped output, and a security check per file.
import { access, constants, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Logger } from '../log.js';
import { PhaseTimer } from '../log.js';
import { HookError } from '../../api/errors.js';
import { HOOK_POINTS, type HookPoint } from './points.js';
import { checkHookFile } from './security.js';
import { runProcess } from '../process.js';
import { closeInheritedFdsOnExec } from '../libvirt/index.js';

export interface HookRunnerOptions {
  dir: string;
  timeoutMs: number;
  /** Per-point timeouts, overriding timeoutMs. */
  timeoutOverrides?: Partial<Record<HookPoint, number>>;
  outputCapBytes: number;
  /** Directory holding our `hooking` Python module; put on PYTHONPATH. */
  pythonPath: string;
  /** Where launchflags files live: <runDir>/<vmId>/launchflags. */
  runDir: string;
  log: Logger;
  rootUid?: number;
}

export interface HookCall {
  data: string;
  vmId?: string;
  customProperties?: Record<string, string>;
  /** The call's params, as environment variables. */
  params?: Record<string, string | number | boolean>;
  /** virDomainCreateFlags to offer through the launchflags file. */
  launchFlags?: number;
}

export interface ScriptRun {
  script: string;
  rc: number | null;
  ms: number;
  timedOut: boolean;
  refused?: string;
  stderr: string;
  stdout: string;
}

export interface HookResult {
  data: string;
  runs: ScriptRun[];
  failed: boolean;
  launchFlags?: number;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class HookRunner {
  constructor(private readonly o: HookRunnerOptions) {
    // Nothing the agent inherited may reach a hook: only 0-2 cross exec.
    closeInheritedFdsOnExec();
  }

  /** Executable regular files of a point, sorted (missing directory = none). */
  async scripts(point: HookPoint): Promise<string[]> {
    const dir = join(this.o.dir, point);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    const out: string[] = [];
    for (const name of names.sort()) {
      const file = join(dir, name);
      try {
        const st = await stat(file);
        if (!st.isFile()) continue;
        await access(file, constants.X_OK);
        out.push(file);
      } catch { /* not executable: not a hook */ }
    }
    return out;
  }

  /** Runs the point's hooks; never throws for a hook failure (see runRaising). */
  async run(point: HookPoint, call: HookCall): Promise<HookResult> {
    const scripts = await this.scripts(point);
    if (scripts.length === 0) return { data: call.data, runs: [], failed: false, ...(call.launchFlags !== undefined ? { launchFlags: call.launchFlags } : {}) };
    const timer = new PhaseTimer();
    const def = HOOK_POINTS[point];
    const tmp = await mkdtemp(join(tmpdir(), `hostvisor-hook-${point}-`));
    const dataFile = join(tmp, def.kind === 'xml' ? 'domxml' : 'data.json');
    await writeFile(dataFile, call.data, { mode: 0o600 });
    let flagsFile: string | undefined;
    if (call.launchFlags !== undefined && call.vmId) {
      const dir = join(this.o.runDir, call.vmId);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      flagsFile = join(dir, 'launchflags');
      await writeFile(flagsFile, String(call.launchFlags));
    }
    const env = this.environment(def.kind === 'xml' ? '_hook_domxml' : '_hook_json', dataFile, call, flagsFile);
    const runs: ScriptRun[] = [];
    const timeoutMs = this.o.timeoutOverrides?.[point] ?? this.o.timeoutMs;
    try {
      for (const script of scripts) {
        const verdict = await checkHookFile(script, this.o.dir, this.o.rootUid ?? 0);
        if (!verdict.ok) {
          this.o.log.warn('hook refused', { point, script, reason: verdict.reason });
          runs.push({ script, rc: null, ms: 0, timedOut: false, refused: verdict.reason ?? 'insecure', stderr: '', stdout: '' });
          continue;
        }
        const r = await this.exec(script, env, timeoutMs);
        runs.push(r);
        timer.mark(script.slice(this.o.dir.length + 1));
        const level = r.rc === 0 ? 'debug' : 'warn';
        this.o.log[level]('hook ran', { point, script, rc: r.rc, ms: r.ms, timedOut: r.timedOut, stderr: r.stderr || undefined, stdout: r.stdout || undefined, vm: call.vmId });
        if (r.rc === 2 || r.timedOut) break; // 2: stop the chain; a killed hook may have left a half-written file
      }
      const data = await readFile(dataFile, 'utf8');
      const result: HookResult = { data, runs, failed: runs.some((r) => r.rc !== 0) };
      if (flagsFile) {
        const text = (await readFile(flagsFile, 'utf8').catch(() => '')).trim();
        result.launchFlags = /^\d+$/.test(text) ? Number(text) : call.launchFlags;
      }
      this.o.log.info('hooks done', { point, vm: call.vmId, scripts: runs.length, failed: result.failed, ...timer.fields() });
      return result;
    } finally {
      await rm(tmp, { recursive: true, force: true });
      if (flagsFile) await rm(dirname(flagsFile), { recursive: true, force: true });
    }
  }

  /** Runs the hooks and, for a raising point, turns a failure into HookError (78). */
  async runRaising(point: HookPoint, call: HookCall): Promise<HookResult> {
    const result = await this.run(point, call);
    if (result.failed && HOOK_POINTS[point].raising) throw hookError(point, result);
    return result;
  }

  /** What a hook's environment adds to the agent's own. */
  private environment(varName: string, dataFile: string, call: HookCall, flagsFile: string | undefined): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(call.customProperties ?? {})) if (ENV_NAME.test(k)) env[k] = v;
    for (const [k, v] of Object.entries(call.params ?? {})) if (ENV_NAME.test(k)) env[k] = String(v);
    if (call.vmId) env.vmId = call.vmId;
    env[varName] = dataFile;
    if (flagsFile) env._hook_launchflags = flagsFile;
    env.PYTHONPATH = [this.o.pythonPath, process.env.PYTHONPATH].filter(Boolean).join(':');
    return env;
  }

  /**
   * One hook, through the agent's runner: its own process group (killed at the
   * timeout), stdin /dev/null, output capped, and done when it exits even if a
   * daemon it started keeps its stdout open.
   */
  private async exec(script: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ScriptRun> {
    const cap = this.o.outputCapBytes;
    const r = await runProcess([script], { timeoutMs, env, locale: 'inherit', stdoutCapBytes: cap, stderrCapBytes: cap, pipeGraceMs: 50 });
    const stderr = r.spawnError ? `${r.stderr}${String(r.spawnError)}` : r.stderr;
    return { script, rc: r.timedOut ? null : r.rc, ms: Math.round(r.ms), timedOut: r.timedOut, stderr: stderr.trim(), stdout: r.stdout.toString('utf8').trim() };
  }
}

export function hookError(point: HookPoint, r: HookResult): HookError {
  const bad = r.runs.filter((x) => x.rc !== 0);
  const what = bad.map((x) => `${x.script.split('/').pop()}: ${x.refused ? `refused (${x.refused})` : x.timedOut ? 'timed out' : `exit ${x.rc}`}`).join('; ');
  return new HookError(`${point} hook failed: ${what}`, { data: { point, failures: bad.map((x) => ({ script: x.script, rc: x.rc, timedOut: x.timedOut, refused: x.refused, stderr: x.stderr.slice(0, 2000) })) } });
}
