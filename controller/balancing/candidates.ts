// What every balancer asks of a cluster: which hosts are Up, how loaded each was over the window,
// which VMs may be moved, and whether a destination can take a VM. The last is the scheduler's
// own answer (schedule() with the same filters as a start, the source host left out), so a
// balancer never moves a VM where a start could not put it.
import { bookedOn } from '../scheduler/booked.js';
import { schedule } from '../scheduler/schedule.js';
import type { Exclusion } from '../scheduler/sched-types.js';
import type { BalanceHost, BalanceInput, BalanceVm } from './balance-types.js';
import { heldThroughout, windowMean, type UtilSample } from './history.js';

export function upHosts(input: BalanceInput): BalanceHost[] {
  return input.hosts.filter((h) => h.sched.status === 'Up');
}

function samplesOf(input: BalanceInput, hostId: string): readonly UtilSample[] {
  return input.history.get(hostId) ?? [];
}

/** The host's mean CPU % over the last duration; null when it has not been heard lately. */
export function cpuMean(input: BalanceInput, hostId: string): number | null {
  const p = input.params;
  return windowMean(samplesOf(input, hostId), (s) => s.cpuPct, input.now, p.overCommitDurationMs, p.sampleGapMs);
}

/**
 * A destination's CPU %: its mean over the window, or its newest sample when that is higher. A host
 * that has just been given a VM is mostly idle samples from before it, so the mean alone would make
 * it the destination again in the next cycle and empty the source onto it; the newest sample shows
 * the VM it took (oVirt counts the VMs it has just placed). null when it has not been heard lately.
 */
export function destinationCpu(input: BalanceInput, hostId: string): number | null {
  const mean = cpuMean(input, hostId);
  const newest = samplesOf(input, hostId).at(-1);
  return mean === null || newest === undefined ? mean : Math.max(mean, newest.cpuPct);
}

/** The host's mean free memory (MiB) over the last duration; null when it has not been heard lately. */
export function freeMemMean(input: BalanceInput, hostId: string): number | null {
  const p = input.params;
  return windowMean(samplesOf(input, hostId), (s) => s.memFreeMiB, input.now, p.overCommitDurationMs, p.sampleGapMs);
}

/** `pred` held on every sample of the whole duration (CpuOverCommitDuration). */
export function heldForDuration(input: BalanceInput, hostId: string, pred: (s: UtilSample) => boolean): boolean {
  const p = input.params;
  return heldThroughout(samplesOf(input, hostId), pred, input.now, p.overCommitDurationMs, p.sampleGapMs);
}

/** Over HighUtilization CPU for the whole duration, or (when set) short of free memory for it. */
export function overUtilized(input: BalanceInput, hostId: string): boolean {
  const { highUtilizationPct: high, maxFreeMemoryForOverUtilizedMiB: minFree } = input.params;
  return heldForDuration(input, hostId, (s) => s.cpuPct > high)
    || (minFree !== null && heldForDuration(input, hostId, (s) => s.memFreeMiB < minFree));
}

/** Under LowUtilization CPU for the whole duration. */
export function underUtilized(input: BalanceInput, hostId: string): boolean {
  const low = input.params.lowUtilizationPct;
  return heldForDuration(input, hostId, (s) => s.cpuPct < low);
}

/** oVirt's even-distribution destinations: CPU under min(80 % of High, High - 10), i.e. 64 % for 80. */
export function destinationCpuLimit(highPct: number): number {
  return Math.min(0.8 * highPct, highPct - 10);
}

/** Enough free memory for a destination, when the policy asks for it. */
export function memoryRoomy(input: BalanceInput, hostId: string): boolean {
  const min = input.params.minFreeMemoryForUnderUtilizedMiB;
  if (min === null) return true;
  const free = freeMemMean(input, hostId);
  return free !== null && free > min;
}

/** VMs booked on the host (running, maybe running, or a pending start), each once. */
export function vmCountOn(input: BalanceInput, hostId: string): number {
  const b = bookedOn(hostId, input.running, input.pending, '');
  return b.running + b.pending;
}

/**
 * The VMs on the host a balancer may move, in the order it tries them: Up, not pinned, not
 * already migrating; lower priority first (the important ones are disturbed last), then the
 * smaller (a shorter migration), then by id so a decision is reproducible.
 */
export function movableVms(input: BalanceInput, hostId: string): BalanceVm[] {
  return input.vms
    .filter((v) => v.hostId === hostId && v.status === 'Up' && !v.migrating && v.vm.pinnedHostId === null)
    .sort((a, b) => a.priority - b.priority || a.vm.memoryMiB - b.vm.memoryMiB || cmp(a.vm.vmId, b.vm.vmId));
}

export interface Move {
  vm: BalanceVm;
  toHostId: string;
}

export interface NoMove {
  /** per VM tried, why no destination took it */
  tried: Array<{ vmId: string; excluded: Exclusion[] }>;
}

/**
 * The first movable VM of the source that one of `destinations` (in the caller's order of
 * preference) can take by the scheduler's filters: the least preferred VM goes to the most
 * preferred destination that fits it; a destination that cannot take it (full, lacking a network)
 * gives way to the next.
 */
export function pickMove(input: BalanceInput, sourceId: string, destinations: readonly string[]): Move | NoMove {
  const tried: NoMove['tried'] = [];
  if (destinations.length === 0) return { tried };
  const others = input.hosts.filter((h) => h.sched.hostId !== sourceId).map((h) => h.sched);
  for (const vm of movableVms(input, sourceId)) {
    const placement = schedule({ vm: vm.vm, hosts: others, running: input.running, pending: input.pending, policy: input.schedPolicy }, input.settings);
    const fits = new Set(placement.scores.map((s) => s.hostId));
    const to = destinations.find((d) => fits.has(d));
    if (to !== undefined) return { vm, toHostId: to };
    tried.push({ vmId: vm.vm.vmId, excluded: placement.excluded.filter((e) => destinations.includes(e.hostId)) });
  }
  return { tried };
}

export function isMove(m: Move | NoMove): m is Move {
  return 'toHostId' in m;
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function pct(x: number): string {
  return `${Math.round(x * 10) / 10} %`;
}

export function minutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 100) / 10} s`;
}
