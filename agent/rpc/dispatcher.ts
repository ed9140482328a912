// Turns one WebSocket text frame into JSON-RPC responses. Requests are
// checked strictly here (hostile input must get a spec error, never a crash),
// then dispatched through json-rpc-2.0's server with params validated
// against the schema, a timeout per request, and structured logs.
import { JSONRPCServer, JSONRPCErrorException, type JSONRPCRequest, type JSONRPCResponse } from 'json-rpc-2.0';
import { Methods, type MethodName, type ParamsOf, type ResultOf } from '../../api/schema.js';
import { validateParams, compileAll } from '../../api/validate.js';
import { ERRORS, HostvisorError } from '../../api/errors.js';
import type { Logger } from '../log.js';

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

export interface DispatcherOptions {
  log: Logger;
  requestTimeoutMs: number;
  /** Why mutating calls are refused right now (recovering, shutting down), if they are. */
  gate: (method: MethodName) => HostvisorError | undefined;
  /** Called for every well-formed request: any engine request proves connectivity. */
  onRequest?: (method: string, ctx: CallContext) => void;
  /** A longer timeout for some calls (setupNetworks waits for the engine's confirmation); undefined = requestTimeoutMs. */
  timeoutFor?: (method: MethodName, params: unknown) => number | undefined;
  /** Extra methods outside the schema (rpc.discover). */
  extra?: Record<string, () => unknown>;
  slowCallMs?: number;
  maxBatch?: number;
}

type Json = Record<string, unknown>;

function errorResponse(id: unknown, code: number, message: string, data?: unknown): JSONRPCResponse {
  const error: { code: number; message: string; data?: unknown } = { code, message };
  if (data !== undefined) error.data = data;
  return { jsonrpc: '2.0', id: (id ?? null) as JSONRPCResponse['id'], error };
}

function validId(id: unknown): boolean {
  return id === undefined || id === null || (typeof id === 'string' && id.length <= 256)
    || (typeof id === 'number' && Number.isSafeInteger(id));
}

export class Dispatcher {
  // We log failures ourselves (by fault); the library would print each one.
  private readonly server = new JSONRPCServer<CallContext>({ errorListener: () => {} });
  private readonly maxBatch: number;

  constructor(handlers: Handlers, private readonly opts: DispatcherOptions) {
    compileAll();
    this.maxBatch = opts.maxBatch ?? 100;
    for (const name of Object.keys(Methods) as MethodName[]) {
      const handler = handlers[name] as Handler<MethodName>;
      this.server.addMethod(name, (params, ctx) => this.invoke(name, handler, params, ctx));
    }
    for (const [name, fn] of Object.entries(opts.extra ?? {})) this.server.addMethod(name, () => fn());
  }

  /** Handles one frame; resolves to the response text, or undefined when nothing is owed (notifications). */
  async handle(text: string, base: Omit<CallContext, 'correlationId' | 'log'>): Promise<string | undefined> {
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
      const responses = (await Promise.all(payload.map((r) => this.one(r, base)))).filter((r): r is JSONRPCResponse => r !== null);
      return responses.length ? JSON.stringify(responses) : undefined;
    }
    const r = await this.one(payload, base);
    return r ? JSON.stringify(r) : undefined;
  }

  private async one(req: unknown, base: Omit<CallContext, 'correlationId' | 'log'>): Promise<JSONRPCResponse | null> {
    if (req === null || typeof req !== 'object' || Array.isArray(req)) {
      return errorResponse(null, ERRORS.invalidRequest.code, 'Invalid Request: not an object');
    }
    const r = req as Json;
    const idOk = validId(r.id);
    if (r.jsonrpc !== '2.0' || typeof r.method !== 'string' || r.method.length > 256 || !idOk
      || (r.params !== undefined && (r.params === null || typeof r.params !== 'object'))) {
      return errorResponse(idOk ? r.id : null, ERRORS.invalidRequest.code, 'Invalid Request');
    }
    const correlationId = typeof r.correlationId === 'string' ? r.correlationId.slice(0, 128) : undefined;
    const log = this.opts.log.child({ conn: base.connId, ...(correlationId ? { correlationId } : {}) });
    const ctx: CallContext = { ...base, correlationId, log };
    this.opts.onRequest?.(r.method, ctx);
    const request: JSONRPCRequest = { jsonrpc: '2.0', method: r.method, params: r.params as JSONRPCRequest['params'] };
    if (r.id !== undefined) request.id = r.id as JSONRPCRequest['id'];
    try {
      return await this.server.receive(request, ctx);
    } catch (e) {
      log.error('dispatch failed', { method: r.method, err: e });
      return r.id === undefined ? null : errorResponse(r.id, ERRORS.internalError.code, ERRORS.internalError.message);
    }
  }

  private async invoke(name: MethodName, handler: Handler<MethodName>, params: unknown, ctx: CallContext): Promise<unknown> {
    const t0 = performance.now();
    try {
      const typed = validateParams(name, params);
      if (Methods[name].mutating) {
        const refused = this.opts.gate(name);
        if (refused) throw refused;
      }
      const ms = this.opts.timeoutFor?.(name, typed) ?? this.opts.requestTimeoutMs;
      const result = await this.withTimeout(name, ms, (extendTimeout) => handler(typed as never, { ...ctx, extendTimeout }));
      const took = performance.now() - t0;
      if (took > (this.opts.slowCallMs ?? 1000)) ctx.log.info('slow call', { method: name, ms: Math.round(took) });
      else ctx.log.debug('call', { method: name, ms: Math.round(took * 10) / 10 });
      return result;
    } catch (e) {
      throw this.toRpcError(name, e, ctx, performance.now() - t0);
    }
  }

  /** Runs RUN with a timeout of ms from now, which RUN may raise through the function it gets. */
  private withTimeout<T>(name: string, ms: number, run: (extend: (totalMs: number) => void) => Promise<T> | T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t0 = performance.now();
      let limitMs = ms;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          settled = true;
          reject(new HostvisorError('requestTimeout', `${name} did not finish within ${limitMs} ms; it may still complete`));
        }, Math.max(0, limitMs - (performance.now() - t0)));
      };
      const extend = (totalMs: number) => {
        if (settled || !(totalMs > limitMs)) return;
        limitMs = totalMs;
        arm();
      };
      arm();
      let p: Promise<T>;
      try {
        p = Promise.resolve(run(extend));
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then((v) => { settled = true; clearTimeout(timer); resolve(v); }, (e) => { settled = true; clearTimeout(timer); reject(e); });
    });
  }

  private toRpcError(name: string, e: unknown, ctx: CallContext, ms: number): JSONRPCErrorException {
    if (e instanceof HostvisorError) {
      const fields = { method: name, code: e.code, error: e.message, ms: Math.round(ms) };
      // A caller's mistake is theirs: logged at info, not as a server fault.
      if (e.fault === 'client') ctx.log.info('call rejected', fields);
      else ctx.log.error('call failed', { ...fields, err: e });
      return new JSONRPCErrorException(e.message, e.code, e.data);
    }
    ctx.log.error('call failed unexpectedly', { method: name, err: e, ms: Math.round(ms) });
    return new JSONRPCErrorException(ERRORS.internalError.message, ERRORS.internalError.code);
  }
}
