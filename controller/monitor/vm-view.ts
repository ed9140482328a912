// What the controller knows of one host's VMs: the agent's last Host.getVMList with the
// VM_status events received since applied to it. A list answers for the moment it was taken,
// so events that arrive while one is in flight are applied again on top of it (an event sent
// just after the list could otherwise be overwritten by it). `at` stays the list's time: an
// event says nothing about the VMs it does not name.
import type { ResultOf } from '../../api/schema.js';
import type { VmStatusEventBody } from '../../api/events.js';
import type { ReportedVm } from '../reconcile/vm-record.js';
import type { VmChange } from './observation-sink.js';

type ListedVm = ResultOf<'Host.getVMList'>['vmList'][number];

interface HeardEvent { vmId: string; body: VmStatusEventBody }

export class VmView {
  private vms = new Map<string, ReportedVm>();
  /** when the list under the view was taken; null before the first */
  at: number | null = null;
  /** events heard since a list request was sent (null: none in flight) */
  private heardDuringList: HeardEvent[] | null = null;

  get current(): ReadonlyMap<string, ReportedVm> {
    return this.vms;
  }

  /** A Host.getVMList is being sent: remember the events from now on. */
  listRequested(): void {
    this.heardDuringList = [];
  }

  /** The list arrived: it replaces the view, then the events heard meanwhile apply on top. */
  applyList(list: readonly ListedVm[], at: number): VmChange[] {
    const before = this.vms;
    const next = new Map<string, ReportedVm>();
    for (const v of list) next.set(v.vmId, { status: v.status, ...(v.external ? { external: true } : {}) });
    this.vms = next;
    this.at = at;
    for (const e of this.heardDuringList ?? []) this.put(e.vmId, e.body);
    this.heardDuringList = null;
    return diff(before, this.vms);
  }

  /** The list request failed: nothing changes, and events are no longer remembered. */
  listFailed(): void {
    this.heardDuringList = null;
  }

  /** A VM_status event: the VM's new status (a VM not listed yet is added). */
  applyEvent(vmId: string, body: VmStatusEventBody): VmChange[] {
    this.heardDuringList?.push({ vmId, body });
    const before = this.vms.get(vmId)?.status ?? null;
    this.put(vmId, body);
    return before === body.status ? [] : [{ vmId, from: before, to: body.status }];
  }

  /** The host is lost: every VM not known to be Down is Unknown (it may still run). */
  allUnknown(): VmChange[] {
    const changes: VmChange[] = [];
    const next = new Map<string, ReportedVm>();
    for (const [vmId, vm] of this.vms) {
      if (vm.status === 'Down' || vm.status === 'Unknown') { next.set(vmId, vm); continue; }
      next.set(vmId, { ...vm, status: 'Unknown' });
      changes.push({ vmId, from: vm.status, to: 'Unknown' });
    }
    this.vms = next;
    return changes;
  }

  private put(vmId: string, body: VmStatusEventBody): void {
    const old = this.vms.get(vmId);
    const vm: ReportedVm = { status: body.status };
    if (old?.external) vm.external = true;
    if (body.exitMessage !== undefined) vm.exitMessage = body.exitMessage;
    this.vms.set(vmId, vm);
  }
}

function diff(before: ReadonlyMap<string, ReportedVm>, after: ReadonlyMap<string, ReportedVm>): VmChange[] {
  const changes: VmChange[] = [];
  for (const [vmId, vm] of after) {
    const was = before.get(vmId)?.status ?? null;
    if (was !== vm.status) changes.push({ vmId, from: was, to: vm.status });
  }
  for (const [vmId, vm] of before) if (!after.has(vmId)) changes.push({ vmId, from: vm.status, to: null });
  return changes;
}
