// The shape of a method and an event in the API schema. Every family of
// methods (api/methods/*) declares its entries with `method()`, so a typo in a
// field is a compile error and the literal types survive for ParamsOf/ResultOf.
import type { TSchema } from '@sinclair/typebox';
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

