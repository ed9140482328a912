// Conversions between stored columns and model values, the same for both engines.
export const json = (v: unknown): string => JSON.stringify(v);
export function parseJson<T>(text: string | null, fallback: T): T {
  if (text === null) return fallback;
  return JSON.parse(text) as T;
}
export const flag = (b: boolean): number => (b ? 1 : 0);
export const isSet = (n: number): boolean => n !== 0;
