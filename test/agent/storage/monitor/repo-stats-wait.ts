// Polls Host.getStorageRepoStats until a condition holds (bounded), for the monitor tests.
import { setTimeout as sleep } from 'node:timers/promises';
import type { HostvisorClient } from '../../../../api/client/client.js';
import type { RepoStat } from '../../../../api/storage.js';

export type RepoStats = Record<string, RepoStat>;

/** Resolves with the first stats for which `ok` holds; throws with the last stats after `timeoutMs`. */
export async function waitForRepoStats(client: HostvisorClient, what: string, ok: (s: RepoStats) => boolean, timeoutMs: number): Promise<RepoStats> {
  const end = Date.now() + timeoutMs;
  let last: RepoStats = {};
  while (Date.now() < end) {
    last = await client.call('Host.getStorageRepoStats', {});
    if (ok(last)) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}; last stats: ${JSON.stringify(last)}`);
}
