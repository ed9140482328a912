// Encoding of typed parameters (e.g. migration parameters) for the addon.
// Each field's type comes from libvirt's own API description (generated),
// so callers pass plain values.
import { TypedParamTypes, TypedParameterType } from './generated/enums.js';
import type { TypedParamTuple } from './native.js';

export type TypedParamValue = string | number | bigint | boolean;

export class TypedParamError extends TypeError {
  override readonly name = 'TypedParamError';
}

export function encodeTypedParams(
  params: Readonly<Record<string, TypedParamValue | undefined>>,
  types: Readonly<Record<string, TypedParameterType>> = TypedParamTypes,
): TypedParamTuple[] {
  const out: TypedParamTuple[] = [];
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    const type = types[name];
    if (type === undefined) throw new TypedParamError(`unknown typed parameter ${name}`);
    const ok =
      type === TypedParameterType.STRING ? typeof value === 'string'
      : type === TypedParameterType.BOOLEAN ? typeof value === 'boolean'
      : type === TypedParameterType.DOUBLE ? typeof value === 'number'
      : typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value));
    if (!ok) throw new TypedParamError(`typed parameter ${name} must be ${TypedParameterType[type]}`);
    out.push([name, type, value]);
  }
  return out;
}

/** Reads a 64-bit counter as a number; libvirt counters stay far below 2^53 in practice. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return Number.NaN;
}
