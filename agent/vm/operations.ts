// The VM verbs, one family per file under verbs/ (launch, lifecycle,
// devices, console). Each runs in its VM's queue (one operation at a time
// per VM, VMs in parallel) and logs the time of each phase.
import type { Static } from '@sinclair/typebox';
import type { ParamsOf, ResultOf } from '../../api/schema.js';
import type { DiskSpec, NicSpec } from '../../api/types.js';
import type { VmStatusT } from './status.js';
import type { VmOperationsOptions } from './verbs/base.js';
import { VmLaunch } from './verbs/launch.js';
import { VmLifecycle } from './verbs/lifecycle.js';
import { VmDevices } from './verbs/devices.js';
import { VmConsole } from './verbs/console.js';
import { VmHibernation } from './verbs/hibernate.js';
import { VmSnapshots } from './verbs/snapshot.js';

export type { VmOperationsOptions, VmTimeouts } from './verbs/base.js';

export class VmOperations {
  private readonly launcher: VmLaunch;
  private readonly lifecycle: VmLifecycle;
  private readonly devices: VmDevices;
  private readonly console: VmConsole;
  private readonly hibernation: VmHibernation;
  private readonly snapshots: VmSnapshots;

  constructor(o: VmOperationsOptions) {
    this.launcher = new VmLaunch(o);
    this.lifecycle = new VmLifecycle(o);
    this.devices = new VmDevices(o);
    this.console = new VmConsole(o);
    this.hibernation = new VmHibernation(o);
    this.snapshots = new VmSnapshots(o);
  }

  create(p: ParamsOf<'VM.create'>): Promise<{ vmId: string; status: 'WaitForLaunch' }> { return this.launcher.create(p); }
  destroy(vmId: string): Promise<void> { return this.lifecycle.destroy(vmId); }
  shutdown(p: ParamsOf<'VM.shutdown'>): Promise<{ status: VmStatusT; method: string }> { return this.lifecycle.shutdown(p); }
  pause(vmId: string): Promise<{ status: VmStatusT }> { return this.lifecycle.pause(vmId); }
  cont(vmId: string): Promise<{ status: VmStatusT }> { return this.lifecycle.cont(vmId); }
  reset(vmId: string): Promise<void> { return this.lifecycle.reset(vmId); }
  hotplugDisk(vmId: string, drive: Static<typeof DiskSpec>): Promise<{ xml: string }> { return this.devices.hotplugDisk(vmId, drive); }
  hotunplugDisk(vmId: string, name: string): Promise<void> { return this.devices.hotunplugDisk(vmId, name); }
  hotplugNic(vmId: string, nic: Static<typeof NicSpec>): Promise<{ mac: string; xml: string }> { return this.devices.hotplugNic(vmId, nic); }
  hotunplugNic(vmId: string, mac: string): Promise<void> { return this.devices.hotunplugNic(vmId, mac); }
  hibernate(p: ParamsOf<'VM.hibernate'>): Promise<void> { return this.hibernation.hibernate(p); }
  snapshot(p: ParamsOf<'VM.snapshot'>): Promise<ResultOf<'VM.snapshot'>> { return this.snapshots.snapshot(p); }
  setTicket(p: ParamsOf<'VM.setTicket'>): Promise<ResultOf<'VM.setTicket'>> { return this.console.setTicket(p); }
}
