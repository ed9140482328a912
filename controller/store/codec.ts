// Conversions between stored columns and model values, the same for both engines.
import { ConflictError, NotFoundError, isUniqueViolation } from './errors.js';
export const json = (v: unknown): string => JSON.stringify(v);
export function parseJson<T>(text: string | null, fallback: T): T {
  if (text === null) return fallback;
  return JSON.parse(text) as T;
}
export const flag = (b: boolean): number => (b ? 1 : 0);
export const isSet = (n: number): boolean => n !== 0;

/** The row, or NotFound naming the kind, the id and (for a reference in a request) the field. */
export function found<T>(value: T | undefined, kind: string, id: string, field?: string): T {
  if (value === undefined) throw new NotFoundError(kind, id, field);
  return value;
}

/** Runs an insert; a unique-constraint violation becomes the Conflict `conflict` describes. */
export async function insertUnique(insert: () => Promise<unknown>, conflict: () => ConflictError): Promise<void> {
  try {
    await insert();
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
    const c = conflict();
    throw new ConflictError(c.message, c.details, { cause: e });
  }
}
