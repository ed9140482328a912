// A typed client for the agent's API, derived from the schema: call('VM.create', ...)
// checks the params and result types at compile time. Used by hostvisor-client,
// the controller, tests and benchmarks.
import WebSocket from 'ws';
import { JSONRPCClient, type JSONRPCRequest } from 'json-rpc-2.0';
import type { MethodName, ParamsOf, ResultOf, SpmTaskMethod, SpmTaskResultOf } from '../schema.js';
import { ERRORS } from '../errors.js';

export interface ClientOptions {
  url: string;
  key: Buffer | string;
  cert: Buffer | string;
  ca: Buffer | string;
  /** Per-call timeout, ms. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** Checked against the agent certificate's name; default: the URL's host. */
  servername?: string;
}

/** An error answer from the agent, with its stable numeric code. */
export class RpcCallError extends Error {
  override readonly name = 'RpcCallError';
  readonly errorName: string | undefined;
  constructor(message: string, readonly code: number, readonly data?: unknown) {
    super(message);
    this.errorName = Object.entries(ERRORS).find(([, v]) => v.code === code)?.[0];
  }
}

/** An SPM task that ended without success: its code (411 stopped, 1011 interrupted, or the verb's) and message, and the task's info as data. */
export class TaskFailedError extends RpcCallError {
  constructor(readonly task: ResultOf<'Task.getInfo'>) {
    super(`${task.verb} task ${task.id} ${task.taskResult === 'cleanFailure' ? 'failed and its rollback failed' : 'failed'}: ${task.message}`, task.code, task);
  }
}

export interface TaskWaitOptions {
  /** Overall bound on waiting for the task to finish (default 10 min). */
  timeoutMs?: number;
  /** Longest pause between two Task.getStatus polls (default 500 ms; the first polls are quicker). */
  pollMs?: number;
}

export type EventListener = (method: string, params: Record<string, unknown>) => void;

export class HostvisorClient {
  private readonly rpc: JSONRPCClient;
  private readonly listeners = new Set<EventListener>();
  private readonly timeoutMs: number;
  private nextId = 1;

  private constructor(private readonly ws: WebSocket, timeoutMs: number) {
    this.timeoutMs = timeoutMs;
    this.rpc = new JSONRPCClient((payload: JSONRPCRequest) => new Promise<void>((resolve, reject) => {
      ws.send(JSON.stringify(payload), (err) => (err ? reject(err) : resolve()));
    }));
    ws.on('message', (data) => this.onMessage(data.toString()));
    ws.on('close', () => this.rpc.rejectAllPendingRequests('connection closed'));
  }

  static connect(o: ClientOptions): Promise<HostvisorClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(o.url, {
        key: o.key, cert: o.cert, ca: o.ca,
        perMessageDeflate: false,
        handshakeTimeout: o.connectTimeoutMs ?? 10_000,
        ...(o.servername ? { servername: o.servername } : {}),
        maxPayload: 256 * 1024 * 1024,
      });
      ws.once('open', () => resolve(new HostvisorClient(ws, o.timeoutMs ?? 60_000)));
      ws.once('error', reject);
    });
  }

  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async call<M extends MethodName>(method: M, params: ParamsOf<M>, opts: { correlationId?: string; timeoutMs?: number } = {}): Promise<ResultOf<M>> {
    const requester = this.rpc.timeout(opts.timeoutMs ?? this.timeoutMs, (id) => ({
      jsonrpc: '2.0', id, error: { code: ERRORS.requestTimeout.code, message: `${method}: no answer within ${opts.timeoutMs ?? this.timeoutMs} ms` },
    }));
    this.assertOpen();
    const request: JSONRPCRequest & { correlationId?: string } = {
      jsonrpc: '2.0', id: this.nextId++, method, params: params as JSONRPCRequest['params'],
    };
    if (opts.correlationId) request.correlationId = opts.correlationId;
    const response = await requester.requestAdvanced(request);
    if (response.error) throw new RpcCallError(response.error.message, response.error.code, response.error.data);
    return response.result as ResultOf<M>;
  }

  /**
   * Polls Task.getStatus until the task is finished (taskState 'finished'),
   * then returns Task.getInfo: state, result, phase times. Throws an
   * RpcCallError with code 1002 (timeout) if it is not done in time.
   */
  async waitForTask(taskID: string, o: TaskWaitOptions = {}): Promise<ResultOf<'Task.getInfo'>> {
    const deadline = Date.now() + (o.timeoutMs ?? 600_000);
    let pause = 20;
    for (;;) {
      const st = await this.call('Task.getStatus', { taskID });
      if (st.taskState === 'finished') return this.call('Task.getInfo', { taskID });
      if (Date.now() >= deadline) throw new RpcCallError(`task ${taskID} not finished within ${o.timeoutMs ?? 600_000} ms (${st.taskState}: ${st.message})`, ERRORS.timeout.code, st);
      await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(1, deadline - Date.now()))));
      pause = Math.min(pause * 2, o.pollMs ?? 500);
    }
  }

  /**
   * Runs an SPM verb as the engine does: call it, wait for its task, clear
   * the task, return the verb's result (Volume.create: the volume's info).
   * A task that does not succeed is cleared too and thrown as TaskFailedError.
   * `onDone` sees the task's info (phase times) before it is cleared.
   */
  async runSpmTask<M extends SpmTaskMethod>(method: M, params: ParamsOf<M>,
    o: TaskWaitOptions & { onDone?: (task: ResultOf<'Task.getInfo'>) => void } = {}): Promise<SpmTaskResultOf<M>> {
    const { taskID } = (await this.call(method, params)) as { taskID: string };
    const task = await this.waitForTask(taskID, o);
    o.onDone?.(task);
    await this.call('Task.clear', { taskID });
    if (task.taskResult !== 'success') throw new TaskFailedError(task);
    return task.result as SpmTaskResultOf<M>;
  }

  /** Any method by name, unchecked (for the CLI and for hostile-input tests). */
  async callRaw(method: string, params: unknown): Promise<unknown> {
    this.assertOpen();
    const response = await this.rpc.timeout(this.timeoutMs).requestAdvanced({
      jsonrpc: '2.0', id: this.nextId++, method, params: params as JSONRPCRequest['params'],
    });
    if (response.error) throw new RpcCallError(response.error.message, response.error.code, response.error.data);
    return response.result;
  }

  /** Sends raw text (tests of malformed input); the reply comes back through onRaw. */
  sendRaw(text: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(text, (err) => (err ? reject(err) : resolve())));
  }

  private rawListeners = new Set<(text: string) => void>();
  onRaw(listener: (text: string) => void): () => void {
    this.rawListeners.add(listener);
    return () => this.rawListeners.delete(listener);
  }

  private assertOpen(): void {
    if (this.ws.readyState !== WebSocket.OPEN) throw new Error('hostvisor client: the connection is closed');
  }

  get socket(): WebSocket {
    return this.ws;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close(1000);
    });
  }

  private onMessage(text: string): void {
    for (const l of this.rawListeners) l(text);
    let msg: unknown;
    try { msg = JSON.parse(text); } catch { return; }
    const items = Array.isArray(msg) ? msg : [msg];
    for (const m of items as Record<string, unknown>[]) {
      if (m && typeof m === 'object' && typeof m.method === 'string' && m.id === undefined) {
        for (const l of this.listeners) l(m.method, (m.params ?? {}) as Record<string, unknown>);
      } else if (m && typeof m === 'object' && 'id' in m && m.id !== null) {
        this.rpc.receive(m as never);
      }
    }
  }
}
