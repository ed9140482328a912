// Typed events, derived from the schema's events (../events.ts). A
// notification whose method matches an event's template (the `<vmId>` part
// parsed out) and whose params pass that event's schema goes to the typed
// listeners of that event; every notification, known or not, goes to the raw
// listeners.
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Events, type EventName } from '../events.js';

type Def<E extends EventName> = (typeof Events)[E];

/** Events sent once per VM: the method ends in `<vmId>`, and params[vmId] is the body. */
export type VmEventName = { [E in EventName]: Def<E>['method'] extends `${string}<vmId>` ? E : never }[EventName];
/** Events about the host as a whole. */
export type HostEventName = Exclude<EventName, VmEventName>;

export type EventParamsOf<E extends EventName> = Static<Def<E>['params']>;
export type EventBodyOf<E extends VmEventName> = Def<E> extends { body: infer B extends TSchema } ? Static<B> : never;

/** A per-VM event gives (vmId, body, params); a host event gives (params). */
export type EventListenerOf<E extends EventName> = E extends VmEventName
  ? (vmId: string, body: EventBodyOf<E>, params: EventParamsOf<E>) => void
  : (params: EventParamsOf<E>) => void;

/** Every notification as received: the method as sent and its params. */
export type RawEventListener = (method: string, params: Record<string, unknown>) => void;

/** A notification parsed against the schema. */
export interface ParsedEvent {
  name: EventName;
  /** The `<vmId>` part of the method; undefined for host events. */
  vmId: string | undefined;
  params: Record<string, unknown>;
}

interface Matcher {
  name: EventName;
  /** The exact method, or for an event per object the method up to its id part (`<vmId>`, `<taskID>`). */
  prefix: string;
  /** The method ends in an id part, and params[id] is the body. */
  perObject: boolean;
  /** The id part is a VM's: listeners get (vmId, body, params). */
  perVm: boolean;
  check: TypeCheck<TSchema>;
}

const ID_PART = /<(\w+)>$/;
let matchers: Matcher[] | undefined;

function allMatchers(): Matcher[] {
  matchers ??= (Object.entries(Events) as [EventName, Def<EventName>][]).map(([name, def]) => {
    const id = ID_PART.exec(def.method);
    return {
      name, prefix: id ? def.method.slice(0, id.index) : def.method, perObject: !!id, perVm: id?.[1] === 'vmId',
      check: TypeCompiler.Compile(def.params),
    };
  });
  return matchers;
}

/** The event a method belongs to, by its name alone, with its id part. */
function matchMethod(method: string): { m: Matcher; id: string | undefined } | undefined {
  for (const m of allMatchers()) {
    if (!m.perObject) {
      if (method === m.prefix) return { m, id: undefined };
    } else if (method.startsWith(m.prefix) && method.length > m.prefix.length) {
      return { m, id: method.slice(m.prefix.length) };
    }
  }
  return undefined;
}

/** Parses a notification against the schema; undefined when the method is unknown or the params do not fit. */
export function parseEvent(method: string, params: unknown): ParsedEvent | undefined {
  const hit = matchMethod(method);
  if (!hit || !hit.m.check.Check(params)) return undefined;
  const p = params as Record<string, unknown>;
  if (hit.id !== undefined && (typeof p[hit.id] !== 'object' || p[hit.id] === null)) return undefined;
  return { name: hit.m.name, vmId: hit.m.perVm ? hit.id : undefined, params: p };
}

type AnyTyped = (...args: never[]) => void;

/** What happens to an error thrown by an event or state listener; the default raises it as an uncaught exception, as an EventEmitter would. */
export type ListenerErrorHandler = (err: unknown) => void;

export const raiseListenerError: ListenerErrorHandler = (err) => queueMicrotask(() => { throw err; });

/** Calls each listener; one that throws keeps no other from being called, and its error goes to `onError` afterwards. */
export function callEach(calls: Iterable<() => void>, onError: ListenerErrorHandler): void {
  let failed: { err: unknown } | undefined;
  for (const c of calls) {
    try { c(); } catch (err) { failed ??= { err }; }
  }
  if (failed) onError(failed.err);
}

export class EventHub {
  private readonly typed = new Map<EventName, Set<AnyTyped>>();
  private readonly raw = new Set<RawEventListener>();

  constructor(private readonly onListenerError: ListenerErrorHandler = raiseListenerError) {}

  on<E extends EventName>(name: E, listener: EventListenerOf<E>): () => void {
    let set = this.typed.get(name);
    if (!set) this.typed.set(name, set = new Set());
    set.add(listener as AnyTyped);
    return () => { set.delete(listener as AnyTyped); };
  }

  onEvent(listener: RawEventListener): () => void {
    this.raw.add(listener);
    return () => { this.raw.delete(listener); };
  }

  /** Delivers one notification to the raw listeners, then, if it fits the schema, to its event's typed listeners. */
  dispatch(method: string, params: unknown): void {
    const p = (params && typeof params === 'object' ? params : {}) as Record<string, unknown>;
    const calls: (() => void)[] = [];
    for (const l of this.raw) calls.push(() => l(method, p));
    const name = this.typed.size > 0 ? matchMethod(method)?.m.name : undefined;
    const set = name === undefined ? undefined : this.typed.get(name);
    if (set && set.size > 0) {
      const ev = parseEvent(method, params);
      if (ev) {
        for (const l of set) {
          const f = l as (...a: unknown[]) => void;
          calls.push(ev.vmId === undefined ? () => f(ev.params) : () => f(ev.vmId, ev.params[ev.vmId!], ev.params));
        }
      }
    }
    callEach(calls, this.onListenerError);
  }
}
