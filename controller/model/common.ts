// Shapes shared by every resource of the controller's model.
import { Type, type TUnsafe } from '@sinclair/typebox';

export const Id = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', description: 'UUID' });
/** Names of clusters, hosts, VMs and disks: no UUID shape needed, but no spaces or slashes. */
export const Name = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' });
export const EpochMs = Type.Integer({ minimum: 0, description: 'epoch milliseconds' });
export const NullableEpochMs = Type.Union([EpochMs, Type.Null()]);
export const Bytes = Type.Integer({ minimum: 0, description: 'bytes' });

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * One of fixed strings, as a JSON Schema enum: a wrong value is refused with the allowed values
 * named (a union of literals would report one failed branch instead).
 */
export function StringEnum<const T extends readonly string[]>(values: T, options: { description?: string } = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}
