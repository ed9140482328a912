// What both clients offer on top of their own call(): typed and raw event
// listeners, and the SPM task helpers. HostvisorClient (one connection) and
// ReconnectingClient (one connection at a time, kept open) extend it.
import type { MethodName, ParamsOf, ResultOf, SpmTaskMethod, SpmTaskResultOf } from '../schema.js';
import type { EventName } from '../events.js';
import { EventHub, type EventListenerOf, type ListenerErrorHandler, type RawEventListener } from './event-hub.js';
import { runSpmTask, waitForTask, type Caller, type CallOptions, type TaskWaitOptions } from './tasks.js';

export abstract class ClientBase implements Caller {
  protected readonly hub: EventHub;

  constructor(onListenerError?: ListenerErrorHandler) {
    this.hub = new EventHub(onListenerError);
  }

  abstract call<M extends MethodName>(method: M, params: ParamsOf<M>, opts?: CallOptions): Promise<ResultOf<M>>;

  /** Any method by name, unchecked (for the CLI, which takes the method from its command line). */
  abstract callRaw(method: string, params: unknown, opts?: CallOptions): Promise<unknown>;

  /** Typed listener for one of the schema's events: (vmId, body, params) for per-VM events, (params) for host events. */
  on<E extends EventName>(name: E, listener: EventListenerOf<E>): () => void {
    return this.hub.on(name, listener);
  }

  /** Every notification as received, including methods the schema does not know. */
  onEvent(listener: RawEventListener): () => void {
    return this.hub.onEvent(listener);
  }

  /** Polls the task until it is finished and returns its info; TaskWaitTimeoutError (1002) after timeoutMs. */
  waitForTask(taskID: string, o: TaskWaitOptions = {}): Promise<ResultOf<'Task.getInfo'>> {
    return waitForTask(this, taskID, o);
  }

  /** Runs an SPM verb as the engine does (call, wait, clear); TaskFailedError if it did not succeed. */
  runSpmTask<M extends SpmTaskMethod>(method: M, params: ParamsOf<M>,
    o: TaskWaitOptions & { onDone?: (task: ResultOf<'Task.getInfo'>) => void } = {}): Promise<SpmTaskResultOf<M>> {
    return runSpmTask(this, method, params, o);
  }
}
