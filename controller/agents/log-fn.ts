// The structured log these modules write: a level, a message, and fields. Narrow on purpose, so
// the daemon can hand in whatever logger it uses (pino's (fields, msg), or (msg, fields)).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, msg: string, fields: Record<string, unknown>) => void;

export const noLog: LogFn = () => {};

/** An error as log fields: its name, numeric code and message, and its cause's message. */
export function errorFields(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { error: String(e) };
  const out: Record<string, unknown> = { error: e.message, errorName: e.name };
  const code = (e as { code?: unknown }).code;
  if (code !== undefined) out.errorCode = code;
  if (e.cause instanceof Error) out.cause = e.cause.message;
  return out;
}
