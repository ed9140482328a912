// The reconcile decision for one VM, after a restart of either side and at every poll
// (level-triggered): where the VM runs and its status come from the agents' VM lists, never
// from the store's memory; a difference between what is desired and what runs is an event (once
// while it lasts), not a correction; and a VM whose state cannot be known is Unknown, with a
// blocker that refuses another start, so a VM is never started twice.

import type { DecisionSettings } from '../decision-settings.js';
import { decisionEvent, type DecisionEvent } from '../decision-event.js';
import { listTrusted, type HostReport, type ReportedVm, type VmRecord, type VmRuntimeStatus } from './vm-record.js';

export interface VmReconcile {
  record: VmRecord;
  events: DecisionEvent[];
  /** why a start must be refused now (409); empty when a start is allowed */
  blockers: string[];
}

interface Seen { hostId: string; vm: ReportedVm }

export function reconcileVm(prev: VmRecord, hosts: readonly HostReport[], now: number, s: DecisionSettings): VmReconcile {
  const byId = new Map(hosts.map((h) => [h.hostId, h]));
  const running: Seen[] = [];
  for (const h of hosts) {
    const vm = listTrusted(h) ? h.vms.get(prev.vmId) : undefined;
    if (vm !== undefined && vm.status !== 'Down') running.push({ hostId: h.hostId, vm });
  }
  const ctx: Ctx = { prev, byId, now, s, events: [], blockers: [], anomaly: null };
  const next = { ...(running.length > 0 ? whereItRuns(ctx, running) : whereItDoesNot(ctx)) };
  noteStatusChange(ctx, next);
  noteDifference(ctx, next);
  return { record: next, events: ctx.events, blockers: ctx.blockers };
}

interface Ctx {
  prev: VmRecord;
  byId: Map<string, HostReport>;
  now: number;
  s: DecisionSettings;
  events: DecisionEvent[];
  blockers: string[];
  /** something that must never happen (the VM on two hosts): an error event, once while it lasts */
  anomaly: string | null;
}

function whereItRuns(ctx: Ctx, running: Seen[]): VmRecord {
  const { prev, now } = ctx;
  // A live migration shows the VM on two hosts, as its source and its destination: one VM, on the source until it ends.
  const source = migrationSource(running);
  if (running.length > 1 && source === undefined) ctx.anomaly = `reported on ${running.length} hosts: ${running.map((r) => `${r.hostId} (${r.vm.status})`).join(', ')}`;
  const here = source ?? running.find((r) => r.hostId === prev.startInFlight?.hostId) ?? running.find((r) => r.hostId === prev.hostId) ?? running[0]!;
  let startInFlight = prev.startInFlight;
  if (startInFlight !== null && startInFlight.hostId === here.hostId) startInFlight = null; // the start landed
  if (startInFlight !== null) {
    ctx.anomaly ??= `running on ${here.hostId} while a start is in flight on ${startInFlight.hostId}`;
    ctx.blockers.push(`a start is in flight on ${startInFlight.hostId}`);
  }
  const migrated = prev.status === 'Migration Source' || prev.status === 'Migration Destination';
  if (prev.hostId !== null && prev.hostId !== here.hostId && prev.startInFlight?.hostId !== here.hostId && !migrated) {
    ctx.events.push(decisionEvent(now, 'vm.host-differs', 'warning',
      `the agent of ${here.hostId} runs the VM; the store had it on ${prev.hostId}: the agent's state wins`, { vm: prev.vmId, host: here.hostId, data: { recorded: prev.hostId } }));
  }
  ctx.blockers.push(`the VM is ${here.vm.status} on ${here.hostId}`);
  return { ...prev, hostId: here.hostId, status: here.vm.status, startInFlight };
}

function migrationSource(running: readonly Seen[]): Seen | undefined {
  if (running.length !== 2) return undefined;
  const src = running.find((r) => r.vm.status === 'Migration Source');
  // The destination may already say Up in the moment before the source says Down.
  return src !== undefined && running.some((r) => r !== src && (r.vm.status === 'Migration Destination' || r.vm.status === 'Up')) ? src : undefined;
}

function whereItDoesNot(ctx: Ctx): VmRecord {
  const { prev, byId, now, s } = ctx;
  const f = prev.startInFlight;
  if (f !== null) {
    const h = byId.get(f.hostId);
    if (h === undefined || !listTrusted(h)) {
      ctx.blockers.push(`a start is in flight on ${f.hostId}, whose state is unknown (${h?.status ?? 'not known'})`);
      return { ...prev, hostId: f.hostId, status: 'Unknown' };
    }
    // A list taken before the start was sent says nothing about it; nor does one within the timeout.
    if (h.at <= f.since || now - f.since <= s.startInFlightTimeoutMs) {
      ctx.blockers.push(`a start is in flight on ${f.hostId}`);
      return { ...prev, hostId: f.hostId, status: 'WaitForLaunch' };
    }
    const exit = h.vms.get(prev.vmId)?.exitMessage;
    ctx.events.push(decisionEvent(now, 'vm.start-failed', 'warning',
      `${f.hostId} does not run the VM ${Math.round((now - f.since) / 1000)} s after the start${exit !== undefined ? `: ${exit}` : ''}`,
      { vm: prev.vmId, host: f.hostId, data: f.jobId !== undefined ? { jobId: f.jobId } : {} }));
    return { ...prev, hostId: null, status: 'Down', startInFlight: null };
  }
  if (prev.hostId === null) return { ...prev, status: 'Down' };
  const h = byId.get(prev.hostId);
  if (h !== undefined && listTrusted(h)) return { ...prev, hostId: null, status: 'Down' }; // its host answers and does not run it
  if (h?.status === 'Connecting') {
    // oVirt keeps the last known status through the grace; but nothing may start it meanwhile.
    ctx.blockers.push(`its host ${prev.hostId} is Connecting: the VM's state is not known`);
    return prev;
  }
  ctx.blockers.push(`its host ${prev.hostId} is ${h?.status ?? 'not known'}: the VM may still run there`);
  return { ...prev, status: 'Unknown' };
}

function noteStatusChange(ctx: Ctx, next: VmRecord): void {
  const { prev, now } = ctx;
  if (next.status === prev.status && next.hostId === prev.hostId) return;
  const severity = next.status === 'Unknown' ? 'warning' : 'info';
  const where = next.hostId !== null ? ` on ${next.hostId}` : prev.hostId !== null ? ` (was on ${prev.hostId})` : '';
  ctx.events.push(decisionEvent(now, 'vm.status', severity, `${prev.status} -> ${next.status}${where}${whyUnknown(ctx, next)}`,
    { vm: prev.vmId, ...(next.hostId !== null ? { host: next.hostId } : {}), data: { from: prev.status, to: next.status } }));
}

function whyUnknown(ctx: Ctx, next: VmRecord): string {
  return next.status === 'Unknown' && ctx.blockers[0] !== undefined ? `: ${ctx.blockers[0]}` : '';
}

// Powering down is a stop under way, not a difference.
const RUNNING: readonly VmRuntimeStatus[] = ['WaitForLaunch', 'Powering up', 'Up', 'Paused'];

/** Desired vs running: an event when a difference starts; none while it lasts; none for Unknown. */
function noteDifference(ctx: Ctx, next: VmRecord): void {
  let diff: string | null = null;
  if (next.desired === 'running' && next.status === 'Down') diff = 'desired running, but Down';
  if (next.desired === 'stopped' && RUNNING.includes(next.status) && next.startInFlight === null) diff = `desired stopped, but ${next.status} on ${next.hostId}`;
  if (next.status === 'Unknown') diff = ctx.prev.noted; // cannot tell: keep what was noted
  if (ctx.anomaly !== null) diff = ctx.anomaly;
  if (diff !== null && diff !== ctx.prev.noted) {
    ctx.events.push(ctx.anomaly !== null
      ? decisionEvent(ctx.now, 'vm.running-twice', 'error', `the VM is ${diff}: a start was made twice, or a host was wrongly thought not to run it`, { vm: next.vmId })
      : decisionEvent(ctx.now, 'vm.differs', 'warning', `${diff}: the agent's running state stands; the controller changes nothing by itself`,
        { vm: next.vmId, ...(next.hostId !== null ? { host: next.hostId } : {}) }));
  }
  next.noted = diff;
}
