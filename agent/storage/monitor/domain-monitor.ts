// One storage domain's monitor (VDSM's DomainMonitorThread): a check every
// intervalMs, counted from the end of the previous one, so checks never
// overlap. Each check:
//   1. resolves the metadata path (block: activates the metadata LV if this
//      host's activation is gone);
//   2. reads its head with O_DIRECT (read-delay.ts): the delay, and on file
//      domains the metadata version;
//   3. on the refresh schedule, reads space (and the block version);
//   4. asks sanlock whether this host's id is live in the domain's lockspace,
//      and starts acquiring it (asynchronously) when it is not.
// Every step is bounded (bounded-probe.ts): a step with no answer within
// readTimeoutMs ends the check as failed; a step still stuck from an earlier
// check is not started again. A failed read or path marks the domain invalid
// with VDSM's code; the next good check makes it valid again.
import type { HostvisorError } from '../../../api/errors.js';
import type { Logger } from '../../log.js';
import { VDSM_STORAGE_CODES } from '../errors.js';
import type { Sanlock } from '../sanlock.js';
import { isSanlockError } from '../sanlock.js';
import { BoundedProbes, PROBE_GRACE_MS, type ProbeOutcome } from './bounded-probe.js';
import type { DomainProbe } from './domain-probe.js';
import { READ_CHECK_BYTES } from './domain-probe.js';
import { readHeadDirect, ReadCheckError } from './read-delay.js';

export interface DomainMonitorOptions {
  sdUUID: string;
  probe: DomainProbe;
  hostId: number;
  intervalMs: number;
  readTimeoutMs: number;
  refreshIntervalMs: number;
  sanlock: Sanlock;
  /** io_timeout for joining the domain's lockspace (the one on storage wins). */
  sanlockIoTimeoutSec: number;
  /** Leave the lockspace when the monitor stops (not on the master: the SPM role owns that host id). */
  releaseHostId: boolean;
  log: Logger;
}

/** What Host.getStorageRepoStats reports for a domain (VDSM's fields; delay and lastCheck as numbers). */
export interface MonitorStatus {
  valid: boolean;
  /** 0 when valid, else VDSM's storage error code. */
  code: number;
  /** Why the domain is invalid (ours; VDSM has only the code). */
  error?: string;
  /** Seconds the last read took. */
  delay: number;
  /** Seconds since the last check finished (since the monitor started, before the first one). */
  lastCheck: number;
  /** This host's id is live in the domain's lockspace. */
  acquired: boolean;
  /** The monitor has finished at least one check. */
  actual: boolean;
  /** Domain metadata version; -1 until read. */
  version: number;
  totalBytes?: number;
  freeBytes?: number;
}

interface Failure { code: number; error: string }

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The storage code of an error (VDSM's number), or the fallback. */
function codeOf(e: unknown, fallback: number): number {
  const sc = (e as { storageCode?: keyof typeof VDSM_STORAGE_CODES } | undefined)?.storageCode;
  return sc ? VDSM_STORAGE_CODES[sc] : fallback;
}

function describe(what: string, o: ProbeOutcome<unknown>, timeoutMs: number): string {
  if (o.kind === 'failed') return `${what}: ${errorText(o.error)}`;
  if (o.kind === 'timeout') return `${what}: no answer in ${timeoutMs} ms`;
  if (o.kind === 'blocked') return `${what}: the previous attempt is still blocked after ${Math.round(o.ms)} ms`;
  return what;
}

export class DomainMonitor {
  private readonly probes = new BoundedProbes();
  private readonly startedAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private checkedAt: number | undefined;
  private refreshedAt: number | undefined;
  private failure: Failure | undefined;
  private delay = 0;
  private version = -1;
  private acquired = false;
  private space: { totalBytes: number; freeBytes: number } | undefined;
  private checks = 0;

  constructor(private readonly o: DomainMonitorOptions) {}

  get sdUUID(): string { return this.o.sdUUID; }
  get checkCount(): number { return this.checks; }

  start(): void {
    this.schedule(0);
  }

  status(): MonitorStatus {
    const since = this.checkedAt ?? this.startedAt;
    return {
      valid: this.failure === undefined,
      code: this.failure?.code ?? 0,
      ...(this.failure ? { error: this.failure.error } : {}),
      delay: round(this.delay, 6),
      lastCheck: round((performance.now() - since) / 1000, 1),
      acquired: this.acquired,
      actual: this.checkedAt !== undefined,
      version: this.version,
      ...(this.space ?? {}),
    };
  }

  /**
   * Stops checking, then leaves the lockspace if asked and drops the monitor's
   * activations. A running check starts no further step once it sees
   * `stopping`; the step under way (and any still stuck from an earlier check)
   * is waited for, bounded as a step is, so that none of them activates an LV
   * after close(). One that outlives even that is undone by the probe itself.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.probes.drain(this.o.readTimeoutMs + PROBE_GRACE_MS);
    const released = this.o.releaseHostId && await this.releaseHostId();
    await this.o.probe.close({ ids: released }).catch((e: unknown) => this.o.log.warn('monitor activations not dropped', { err: e }));
  }

  private schedule(ms: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      void this.check()
        .catch((e: unknown) => this.o.log.error('domain check failed unexpectedly', { err: e }))
        .finally(() => this.schedule(this.o.intervalMs));
    }, ms);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    const timeoutMs = this.o.readTimeoutMs;
    let failure: Failure | undefined;

    // Before every step: a stopping monitor starts nothing more (a step may activate an LV that stop() has just dropped).
    if (this.stopping) return;
    const path = await this.probes.run('path', timeoutMs, () => this.o.probe.metadataPath());
    if (path.kind !== 'ok') {
      failure = { code: VDSM_STORAGE_CODES.storageDomainAccessError, error: describe('the domain metadata cannot be reached', path, timeoutMs) };
      if (path.kind === 'failed') this.o.probe.forgetPath();
    } else {
      if (this.stopping) return;
      const read = await this.probes.run('read', timeoutMs, () => readHeadDirect(path.value, READ_CHECK_BYTES, timeoutMs));
      if (read.kind === 'ok') {
        this.delay = read.value.seconds;
        try {
          const v = this.o.probe.checkHead(read.value.bytes);
          if (v !== undefined) this.version = v;
        } catch (e) {
          failure = { code: codeOf(e, VDSM_STORAGE_CODES.miscFileReadException), error: errorText(e) };
        }
      } else {
        // A read that failed or never came back is the delay we saw, at least.
        this.delay = read.ms / 1000;
        const timedOut = read.kind !== 'failed' || (read.error instanceof ReadCheckError && read.error.timedOut);
        failure = { code: VDSM_STORAGE_CODES.miscFileReadException, error: describe(timedOut ? 'read check timed out' : 'read check failed', read, timeoutMs) };
        // A read that failed may have lost its device: resolve it again. A hung one would only hang again.
        if (!timedOut) this.o.probe.forgetPath();
      }
    }

    if (this.stopping) return;
    if (!failure && (this.refreshedAt === undefined || performance.now() - this.refreshedAt >= this.o.refreshIntervalMs)) {
      const r = await this.probes.run('refresh', timeoutMs, () => this.o.probe.refresh(timeoutMs));
      if (r.kind === 'ok') {
        this.refreshedAt = performance.now();
        this.space = { totalBytes: r.value.totalBytes, freeBytes: r.value.freeBytes };
        if (r.value.version !== undefined) this.version = r.value.version;
      } else if (r.kind === 'failed' && (r.error as HostvisorError | undefined)?.errorName !== 'timeout') {
        // Positive evidence (the VG is gone, vgs fails): inaccessible. A slow refresh only delays the stats.
        failure = { code: VDSM_STORAGE_CODES.storageDomainAccessError, error: describe('refresh failed', r, timeoutMs) };
      } else {
        this.o.log.warn('domain refresh did not complete; keeping the previous figures', { reason: describe('refresh', r, timeoutMs) });
      }
    }

    if (this.stopping) return;
    await this.updateHostId(failure === undefined);
    if (this.stopping) return;
    this.commit(failure);
  }

  private commit(failure: Failure | undefined): void {
    const before = this.failure;
    const first = this.checkedAt === undefined;
    this.failure = failure;
    this.checkedAt = performance.now();
    this.checks++;
    if (failure && (!before || before.code !== failure.code || first)) {
      this.o.log.warn('storage domain is invalid', { code: failure.code, error: failure.error, delay: round(this.delay, 6) });
    } else if (!failure && (before || first)) {
      this.o.log.info(first ? 'storage domain monitored' : 'storage domain is valid again', { delay: round(this.delay, 6), version: this.version, acquired: this.acquired });
    }
  }

  private async updateHostId(reachable: boolean): Promise<void> {
    const r = await this.probes.run('hostId', this.o.readTimeoutMs, async () => {
      if (this.stopping) return this.acquired;
      const ids = await this.o.probe.idsPath();
      const state = await this.o.sanlock.inqLockspace(this.o.sdUUID, this.o.hostId, ids, 0);
      if (state === 'absent' && reachable && !this.stopping) {
        // ASYNC: joining takes about 2 × io_timeout; the next checks see it done.
        await this.o.sanlock.addLockspace(this.o.sdUUID, this.o.hostId, ids, 0, this.o.sanlockIoTimeoutSec, { async: true })
          .then(() => this.o.log.info('acquiring host id', { hostId: this.o.hostId }))
          .catch((e: unknown) => {
            if (!isSanlockError(e, 'EEXIST') && !isSanlockError(e, 'EINPROGRESS')) throw e;
          });
      }
      return state === 'joined';
    });
    if (r.kind === 'ok') {
      this.acquired = r.value;
    } else if (r.kind === 'failed') {
      if (this.acquired) this.o.log.warn('host id state unknown', { err: r.error });
      this.acquired = false;
    }
    // timeout / blocked: keep the last answer.
  }

  /** Leaves the domain's lockspace, waiting (bounded) for an add still in progress to finish first. True when it is left. */
  private async releaseHostId(): Promise<boolean> {
    const bound = performance.now() + (4 * this.o.sanlockIoTimeoutSec + 10) * 1000;
    try {
      const ids = await this.o.probe.idsPath();
      let state = await this.o.sanlock.inqLockspace(this.o.sdUUID, this.o.hostId, ids, 0);
      while (state === 'changing' && performance.now() < bound) {
        await sleep(200);
        state = await this.o.sanlock.inqLockspace(this.o.sdUUID, this.o.hostId, ids, 0);
      }
      if (state === 'absent') return true;
      // UNUSED: never take the lockspace away from leases something still holds in it.
      await this.o.sanlock.remLockspace(this.o.sdUUID, this.o.hostId, ids, 0, { unused: true });
      this.acquired = false;
      this.o.log.info('host id released', { hostId: this.o.hostId });
      return true;
    } catch (e) {
      this.o.log.warn('host id not released', { err: e });
      return false;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
