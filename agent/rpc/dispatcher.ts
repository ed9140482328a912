// Turns one WebSocket text frame into JSON-RPC responses. Requests are
// checked strictly here (hostile input must get a spec error, never a crash),
// then dispatched with params validated against the schema (validators
// compiled once), a timeout per request taken from the method's definition,
// and structured logs.
//
// A call does per call only what must be: a frame is parsed once, a method is
// one Map lookup, a handler that answers synchronously gets no timer (nothing
// can interrupt it anyway), and a call's logger is made only when something
// is logged.
import { callTimeoutMs, Methods, type MethodDef, type MethodName, type ParamsOf, type ResultOf, type TimeoutBounds } from '../../api/schema.js';
import { validateParams, compileAll } from '../../api/validate.js';
import { ERRORS, HostvisorError } from '../../api/errors.js';
import type { Logger } from '../log.js';
import { serialize, serializeBatch, type Reply, type Response } from './reply.js';
import { preflight, PREFLIGHT_MIN_CHARS } from './preflight.js';
import type { ClientRole } from './identity.js';

export interface CallContext {
  connId: number;
  peer: string;
  correlationId: string | undefined;
  log: Logger;
  /**
   * Raises this call's timeout to totalMs from its start (never lowers it):
   * for a handler that learns only while running how long it may take
   * (setupNetworks after a hook rewrote its connectivityTimeout).
   */
  extendTimeout?: (totalMs: number) => void;
}

export type Handler<M extends MethodName> = (params: ParamsOf<M>, ctx: CallContext) => Promise<ResultOf<M>> | ResultOf<M>;
export type Handlers = { [M in MethodName]: Handler<M> };

/** Who sent a frame: one object per connection, reused for each of its calls. */
export interface Caller {
  connId: number;
  peer: string;
  /** What its certificate identity allows (identity.ts); absent: everything. */
  role?: ClientRole;
}

export interface DispatcherOptions {
  log: Logger;
  /** The bounds each method's timeout is computed from (its definition's timeoutMs; requestMs when it has none). */
  timeouts: TimeoutBounds;
  /** Why mutating calls are refused right now (recovering, shutting down), if they are. */
  gate: (method: MethodName) => HostvisorError | undefined;
  /** For a caller whose role does not allow everything: why this call is refused, if it is. */
  authorize?: (method: string, params: unknown, caller: Caller) => HostvisorError | undefined;
  /** Called for every well-formed request: any engine request proves connectivity. */
  onRequest?: (method: string) => void;
  /** Extra methods outside the schema (rpc.discover); a RawJson result is sent as its prebuilt bytes. */
  extra?: Record<string, () => unknown>;
  slowCallMs?: number;
  maxBatch?: number;
  /** A batch's reply past this many bytes has error 1012 for the rest of its entries (serializeBatch); 0 or absent: no bound. */
  maxBatchReplyBytes?: number;
  /** Frames over PREFLIGHT_MIN_CHARS nested deeper than this are refused before parsing. */
  maxDepth?: number;
}

type Json = Record<string, unknown>;
type Id = string | number | null;

interface Entry {
  name: string;
  /** Undefined for the extra methods: no params, no gate, no timeout. */
  def: MethodDef | undefined;
  run: (params: unknown, ctx: CallContext) => unknown;
}

function errorResponse(id: unknown, code: number, message: string, data?: unknown): Response {
  const error: Response['error'] = { code, message };
  if (data !== undefined) error.data = data;
  return { jsonrpc: '2.0', id: (id ?? null) as Id, error };
}

function validId(id: unknown): boolean {
  return id === undefined || id === null || (typeof id === 'string' && id.length <= 256)
    || (typeof id === 'number' && Number.isSafeInteger(id));
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

/** A call's context; its logger (a child with the connection and correlation id) is made on first use. */
class Call implements CallContext {
  /** How long the call may run, in ms from its start; extendTimeout raises it. */
  limitMs = 0;
  /** Set while the call runs asynchronously: re-arms its timer when the limit is raised. */
  rearm: (() => void) | undefined;
  private childLog: Logger | undefined;
  private extender: ((totalMs: number) => void) | undefined;

  constructor(private readonly caller: Caller, readonly correlationId: string | undefined, private readonly parent: Logger) {}

  get connId(): number { return this.caller.connId; }
  get peer(): string { return this.caller.peer; }
  get log(): Logger {
    this.childLog ??= this.parent.child(this.correlationId ? { conn: this.caller.connId, correlationId: this.correlationId } : { conn: this.caller.connId });
    return this.childLog;
  }
  get extendTimeout(): (totalMs: number) => void {
    this.extender ??= (totalMs) => {
      if (!(totalMs > this.limitMs)) return;
      this.limitMs = totalMs;
      this.rearm?.();
    };
    return this.extender;
  }
}

export class Dispatcher {
  private readonly methods = new Map<string, Entry>();
  private readonly maxBatch: number;
  private readonly maxBatchReplyBytes: number;
  private readonly maxDepth: number;
  private readonly slowCallMs: number;
  private readonly debug: boolean;

  constructor(handlers: Handlers, private readonly opts: DispatcherOptions) {
    compileAll();
    this.maxBatch = opts.maxBatch ?? 100;
    this.maxBatchReplyBytes = opts.maxBatchReplyBytes ? opts.maxBatchReplyBytes : Infinity;
    this.maxDepth = opts.maxDepth ?? 64;
    this.slowCallMs = opts.slowCallMs ?? 1000;
    this.debug = opts.log.enabled?.('debug') ?? true;
    for (const name of Object.keys(Methods) as MethodName[]) {
      this.methods.set(name, { name, def: Methods[name], run: handlers[name] as (params: unknown, ctx: CallContext) => unknown });
    }
    for (const [name, fn] of Object.entries(opts.extra ?? {})) this.methods.set(name, { name, def: undefined, run: () => fn() });
  }

  /** Handles one frame; resolves to the reply, or undefined when nothing is owed (notifications). */
  async handle(text: string, caller: Caller): Promise<Reply | undefined> {
    if (text.length > PREFLIGHT_MIN_CHARS) {
      const refused = preflight(text, { maxDepth: this.maxDepth, maxBatch: this.maxBatch });
      if (refused) return JSON.stringify(errorResponse(null, ERRORS.invalidRequest.code, `Invalid Request: ${refused}`));
    }
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      return JSON.stringify(errorResponse(null, ERRORS.parseError.code, ERRORS.parseError.message));
    }
    if (Array.isArray(payload)) {
      if (payload.length === 0) return JSON.stringify(errorResponse(null, ERRORS.invalidRequest.code, 'Invalid Request: empty batch'));
      if (payload.length > this.maxBatch) {
        return JSON.stringify(errorResponse(null, ERRORS.invalidRequest.code, `Invalid Request: batch larger than ${this.maxBatch}`));
      }
      const responses = (await Promise.all(payload.map((r) => this.one(r, caller)))).filter((r): r is Response => r !== null);
      if (!responses.length) return undefined;
      const { reply, leftOut } = serializeBatch(responses, this.maxBatchReplyBytes);
      // The caller's doing (it asked for too much at once): info, with who.
      if (leftOut > 0) this.opts.log.info('batch reply bounded', { conn: caller.connId, peer: caller.peer, entries: responses.length, leftOut, maxBatchReplyBytes: this.maxBatchReplyBytes });
      return reply;
    }
    const r = this.one(payload, caller);
    const response = isThenable(r) ? await r : r;
    return response ? serialize(response) : undefined;
  }

  /** One request: its response, or null for a notification. Synchronous when the handler is. */
  private one(req: unknown, caller: Caller): Response | null | Promise<Response | null> {
    if (req === null || typeof req !== 'object' || Array.isArray(req)) {
      return errorResponse(null, ERRORS.invalidRequest.code, 'Invalid Request: not an object');
    }
    const r = req as Json;
    const idOk = validId(r.id);
    if (r.jsonrpc !== '2.0' || typeof r.method !== 'string' || r.method.length > 256 || !idOk
      || (r.params !== undefined && (r.params === null || typeof r.params !== 'object'))) {
      return errorResponse(idOk ? r.id : null, ERRORS.invalidRequest.code, 'Invalid Request');
    }
    const id = r.id as Id | undefined;
    this.opts.onRequest?.(r.method);
    const entry = this.methods.get(r.method);
    if (!entry) return id === undefined ? null : errorResponse(id, ERRORS.methodNotFound.code, ERRORS.methodNotFound.message);
    const ctx = new Call(caller, typeof r.correlationId === 'string' ? r.correlationId.slice(0, 128) : undefined, this.opts.log);
    const t0 = performance.now();
    let out: unknown;
    try {
      if (caller.role !== undefined && caller.role !== 'full') {
        const refused = this.opts.authorize ? this.opts.authorize(entry.name, r.params, caller) : new HostvisorError('notPermitted');
        if (refused) throw refused;
      }
      out = this.invoke(entry, r.params, ctx);
    } catch (e) {
      return this.failure(id, entry.name, e, ctx, t0);
    }
    if (!isThenable(out)) return this.success(id, entry.name, out, ctx, t0);
    const settled = entry.def ? this.withTimeout(entry.name, ctx, t0, out) : Promise.resolve(out);
    return settled.then(
      (result) => this.success(id, entry.name, result, ctx, t0),
      (e: unknown) => this.failure(id, entry.name, e, ctx, t0),
    );
  }

  /** Validates, applies the gate, sets the call's timeout and calls the handler: its result, or the promise of it. */
  private invoke(entry: Entry, params: unknown, ctx: Call): unknown {
    const def = entry.def;
    if (!def) return entry.run(params, ctx);
    const name = entry.name as MethodName;
    const typed = validateParams(name, params);
    if (def.mutating) {
      const refused = this.opts.gate(name);
      if (refused) throw refused;
    }
    ctx.limitMs = callTimeoutMs(def, typed, this.opts.timeouts);
    return entry.run(typed, ctx);
  }

  /**
   * PENDING, or error 1007 once the call has run ctx.limitMs from t0. A timer
   * only for calls that went async: a synchronous handler is over before any
   * timer could fire.
   */
  private withTimeout(name: string, ctx: Call, t0: number, pending: PromiseLike<unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          ctx.rearm = undefined;
          reject(new HostvisorError('requestTimeout', `${name} did not finish within ${ctx.limitMs} ms; it may still complete`));
        }, Math.max(0, ctx.limitMs - (performance.now() - t0)));
      };
      ctx.rearm = arm;
      arm();
      const done = () => { ctx.rearm = undefined; clearTimeout(timer); };
      pending.then((v) => { done(); resolve(v); }, (e: unknown) => { done(); reject(e); });
    });
  }

  private success(id: Id | undefined, name: string, result: unknown, ctx: Call, t0: number): Response | null {
    const took = performance.now() - t0;
    if (took > this.slowCallMs) ctx.log.info('slow call', { method: name, ms: Math.round(took) });
    else if (this.debug) ctx.log.debug('call', { method: name, ms: Math.round(took * 10) / 10 });
    return id === undefined ? null : { jsonrpc: '2.0', id, result };
  }

  private failure(id: Id | undefined, name: string, e: unknown, ctx: Call, t0: number): Response | null {
    const ms = Math.round(performance.now() - t0);
    let response: Response;
    if (e instanceof HostvisorError) {
      const fields = { method: name, code: e.code, error: e.message, ms };
      // A caller's mistake is theirs: logged at info, not as a server fault.
      if (e.fault === 'client') ctx.log.info('call rejected', fields);
      else ctx.log.error('call failed', { ...fields, err: e });
      response = errorResponse(id, e.code, e.message, e.data);
    } else {
      ctx.log.error('call failed unexpectedly', { method: name, err: e, ms });
      response = errorResponse(id, ERRORS.internalError.code, ERRORS.internalError.message);
    }
    return id === undefined ? null : response;
  }
}
