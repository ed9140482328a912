// The shape of a method and an event in the API schema. Every family of
// methods (api/methods/*) declares its entries with `method()`, so a typo in a
// field is a compile error and the literal types survive for ParamsOf/ResultOf.
import type { Static, TSchema } from '@sinclair/typebox';
import type { ErrorName } from './errors.js';

export interface MethodDef<P extends TSchema = TSchema, R extends TSchema = TSchema> {
  summary: string;
  params: P;
  result: R;
  errors: readonly ErrorName[];
  since: string;
  /** Changes a VM or the host: refused while recovering (error 99) or shutting down. */
  mutating: boolean;
  /** A mutating call that does not depend on libvirt (host networks): allowed while VMs are recovered, refused only while shutting down. */
  duringRecovery?: true;
  /**
   * How long one call may run before the agent answers 1007 (requestTimeout),
   * from its params and the agent's bounds; without it, bounds.requestMs.
   * A client that waits for an answer can wait as long.
   */
  timeoutMs?(params: Static<P>, bounds: TimeoutBounds): number;
}

/** The agent's settings a method's timeout is computed from (rpc.requestTimeoutMs, network.dhcpTimeoutMs). */
export interface TimeoutBounds {
  requestMs: number;
  dhcpMs: number;
}

/** How long a call of this method may run before the agent answers 1007. */
export function callTimeoutMs(def: MethodDef, params: unknown, bounds: TimeoutBounds): number {
  return def.timeoutMs ? def.timeoutMs(params, bounds) : bounds.requestMs;
}

export function method<P extends TSchema, R extends TSchema>(d: MethodDef<P, R>): MethodDef<P, R> {
  return d;
}

export interface EventDef<P extends TSchema = TSchema> {
  /** The JSON-RPC notification method; <vmId> is replaced per event. */
  method: string;
  summary: string;
  params: P;
  /** For a method ending in <vmId>: the schema of params[<vmId>], so a client can type the per-VM body. */
  body?: TSchema;
  since: string;
}

