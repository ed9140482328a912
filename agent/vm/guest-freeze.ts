// The guest's filesystems frozen through its guest agent around a live
// snapshot, as VDSM does it (not libvirt's QUIESCE flag): a freeze that fails
// or does not answer in time is a warning and the snapshot goes on
// crash-consistent; the thaw is always asked for, even when the freeze failed
// or the snapshot did, since a freeze given up on may still land in the guest.
import { LibvirtTimeoutError, type Domain } from '../libvirt/index.js';
import type { Logger } from '../log.js';

export interface FreezeOutcome {
  frozen: boolean;
  /** How many filesystems the agent froze (0 when not frozen). */
  count: number;
  ms: number;
  /** Why it is not frozen, for the caller's warnings. */
  warning?: string;
  /** Not answered in time: the freeze may still land in the guest (a thaw then matters). */
  uncertain?: boolean;
}

/** A thaw that does not answer in this long is tried again (the guest's writes wait on it). */
const THAW_TRY_MS = 10_000;
const THAW_TRIES = 3;

export async function freezeGuest(dom: Domain, timeoutMs: number, log: Logger): Promise<FreezeOutcome> {
  const t0 = performance.now();
  try {
    const count = await dom.fsFreeze({ timeoutMs });
    const ms = Math.round(performance.now() - t0);
    log.info('guest filesystems frozen', { count, freezeMs: ms });
    return { frozen: true, count, ms };
  } catch (e) {
    const ms = Math.round(performance.now() - t0);
    const warning = `guest filesystems not frozen (the snapshot is crash-consistent): ${(e as Error).message}`;
    const uncertain = e instanceof LibvirtTimeoutError;
    log.warn('guest freeze failed; going on without it', { err: e, freezeMs: ms, timeoutMs, uncertain });
    return { frozen: false, count: 0, ms, warning, uncertain };
  }
}

/**
 * Thaws the guest; returns a warning when it could not be made sure of.
 * `expectFrozen`: the freeze answered (or may have landed late): a failed
 * thaw then matters. Otherwise a failure (no agent) is expected and only logged.
 */
export async function thawGuest(dom: Domain, expectFrozen: boolean, log: Logger): Promise<string | undefined> {
  let last: unknown;
  for (let attempt = 1; attempt <= (expectFrozen ? THAW_TRIES : 1); attempt++) {
    try {
      const count = await dom.fsThaw({ timeoutMs: THAW_TRY_MS });
      log.info('guest filesystems thawed', { count, attempt });
      return undefined;
    } catch (e) {
      last = e;
    }
  }
  if (!expectFrozen) {
    log.info('guest thaw asked after a failed freeze; it failed too (nothing was frozen)', { err: last });
    return undefined;
  }
  log.error('guest thaw failed: its filesystems may stay frozen', { err: last });
  return `guest filesystems may still be frozen: the thaw failed: ${(last as Error).message}`;
}
