// sanlock's failures as SanlockError: the addon rejects with a CapturedError
// in SANLOCK_ERROR_DOMAIN; call() turns it into a SanlockError with the
// symbolic name of sanlock's return code.
import { constants as osConstants } from 'node:os';
import { SANLOCK_ERROR_DOMAIN, SanlockRc, sanlockRcName } from '../libvirt/index.js';

const E = osConstants.errno;
/** Codes that mean "someone else holds the lease" for acquire. */
const HELD_ELSEWHERE = new Set<number>([
  -E.EEXIST, // held by another registration of this host
  -E.EBUSY, // another registration of this host is acquiring it at this moment (two contenders on one daemon race this way)
  -E.EAGAIN,
  SanlockRc.SANLK_ACQUIRE_IDLIVE, SanlockRc.SANLK_ACQUIRE_OWNED, SanlockRc.SANLK_ACQUIRE_OTHER,
  SanlockRc.SANLK_ACQUIRE_OWNED_RETRY, SanlockRc.SANLK_ACQUIRE_SHRETRY,
]);

/** A sanlock call failed. `code` is sanlock's return value: -errno or a SANLK_* code (negative). */
export class SanlockError extends Error {
  override readonly name = 'SanlockError';
  /** Symbolic form of `code`: 'EEXIST', 'ENOENT', 'SANLK_ACQUIRE_IDLIVE', 'FAILED' (-1), ... */
  readonly codeName: string;

  constructor(message: string, readonly code: number, readonly op: string, options?: ErrorOptions) {
    super(message, options);
    this.codeName = sanlockRcName(code);
  }

  /** The lease is held by another process or host (acquire failed for that reason). */
  get heldElsewhere(): boolean {
    return HELD_ELSEWHERE.has(this.code);
  }
}

export function isSanlockError(e: unknown, codeName?: string): e is SanlockError {
  return e instanceof SanlockError && (codeName === undefined || e.codeName === codeName);
}

function convert(e: unknown, op: string): unknown {
  if (e !== null && typeof e === 'object' && (e as { domain?: unknown }).domain === SANLOCK_ERROR_DOMAIN) {
    const code = Number((e as { code?: unknown }).code);
    const message = e instanceof Error ? e.message : `sanlock ${op} failed`;
    return new SanlockError(`${message} [${sanlockRcName(code)}]`, code, op, { cause: e });
  }
  return e;
}

/** Runs one addon call, converting its sanlock failure. */
export async function call<T>(op: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw convert(e, op);
  }
}
