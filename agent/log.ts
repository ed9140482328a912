// Structured logging: one JSON object per line. A long operation logs the
// duration of each of its phases (see PhaseTimer).
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(bindings: LogFields): Logger;
  /** Whether lines at LEVEL are written: a hot path skips building what would be dropped. Absent = assume yes. */
  enabled?(level: LogLevel): boolean;
}

export type LogSink = (line: string) => void;

function serializeError(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const out: Record<string, unknown> = { name: e.name, message: e.message };
  for (const k of ['code', 'domain'] as const) {
    const v = (e as unknown as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  if (e.cause !== undefined) out.cause = serializeError(e.cause);
  return out;
}

export function createLogger(opts: { level?: LogLevel; sink?: LogSink; bindings?: LogFields } = {}): Logger {
  const min = LEVELS[opts.level ?? (process.env.HOSTVISOR_LOG_LEVEL as LogLevel | undefined) ?? 'info'] ?? 20;
  const sink: LogSink = opts.sink ?? ((line) => process.stderr.write(line + '\n'));
  const bindings = opts.bindings ?? {};
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (LEVELS[level] < min) return;
    const rec: LogFields = { ts: new Date().toISOString(), level, msg, ...bindings };
    if (fields) for (const [k, v] of Object.entries(fields)) rec[k] = k === 'err' ? serializeError(v) : v;
    sink(JSON.stringify(rec, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (b) => createLogger({ level: opts.level, sink, bindings: { ...bindings, ...b } }),
    enabled: (level) => LEVELS[level] >= min,
  };
}

/** A logger that drops everything (library default). */
export const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child() { return silentLogger; },
  enabled() { return false; },
};

/** Records how long each phase of a long operation took, for one log line at the end. */
export class PhaseTimer {
  private readonly start = performance.now();
  private last = this.start;
  readonly phases: Record<string, number> = {};

  mark(phase: string): void {
    const now = performance.now();
    this.phases[phase] = Math.round((now - this.last) * 10) / 10;
    this.last = now;
  }
  get totalMs(): number {
    return Math.round((performance.now() - this.start) * 10) / 10;
  }
  fields(): LogFields {
    return { phasesMs: this.phases, totalMs: this.totalMs };
  }
}
