// Bulk domain statistics (virConnectGetAllDomainStats) asked for by name: the
// stats groups and the domain states a caller wants become libvirt's flag
// words here, in the facade, so callers build no libvirt flags of their own.
import { ConnectGetAllDomainStatsFlags as F, DomainStatsTypes as S } from './generated/enums.js';

export type StatsGroup = 'state' | 'cpu-total' | 'balloon' | 'vcpu' | 'interface' | 'block' | 'perf' | 'iothread' | 'memory' | 'dirtyrate' | 'vm';
export type StatsDomainState = 'running' | 'paused' | 'shutoff' | 'other';

export interface DomainStatsQuery {
  groups: readonly StatsGroup[];
  /** Which domains (none: every domain). */
  states: readonly StatsDomainState[];
  /** Answer at once with what can be had when a domain is busy with a job (e.g. a migration). */
  nowait?: boolean;
  /** Each disk's backing chain too: block.N entries per layer, with backingIndex ("vda[N]"). */
  backing?: boolean;
}

const GROUP_BITS: Record<StatsGroup, number> = {
  'state': S.STATE, 'cpu-total': S.CPU_TOTAL, 'balloon': S.BALLOON, 'vcpu': S.VCPU, 'interface': S.INTERFACE,
  'block': S.BLOCK, 'perf': S.PERF, 'iothread': S.IOTHREAD, 'memory': S.MEMORY, 'dirtyrate': S.DIRTYRATE, 'vm': S.VM,
};
const STATE_BITS: Record<StatsDomainState, number> = { running: F.RUNNING, paused: F.PAUSED, shutoff: F.SHUTOFF, other: F.OTHER };
/** 0 when the installed libvirt (the enums are generated from it) predates NOWAIT: then the call may wait. */
const NOWAIT = (F as unknown as Record<string, number | undefined>)['NOWAIT'] ?? 0;
const BACKING = (F as unknown as Record<string, number | undefined>)['BACKING'] ?? 0;

/** The `stats` and `flags` words of virConnectGetAllDomainStats for a query. */
export function domainStatsFlags(q: DomainStatsQuery): { stats: number; flags: number } {
  const stats = q.groups.reduce((bits, g) => bits | GROUP_BITS[g], 0);
  const flags = q.states.reduce((bits, s) => bits | STATE_BITS[s], 0) | (q.nowait ? NOWAIT : 0) | (q.backing ? BACKING : 0);
  return { stats, flags };
}
