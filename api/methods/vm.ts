// VM verbs: lifecycle, devices and console.
import { Type } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { DiskSpec, Empty, NicSpec, StateVolume, Uuid, VmSpec, VmStats, VmStatus, withVmId } from '../types.js';

const VM_ERRORS = ['noVM', 'recovery', 'libvirtUnavailable', 'libvirtError', 'externalVM', 'timeout', 'hookError'] as const;

export const VM_METHODS = {
  'VM.create': method({
    summary: 'Starts a VM from libvirt domain XML or a compact spec. Returns WaitForLaunch at once; status events follow.',
    params: withVmId({
      xml: Type.Optional(Type.String({ minLength: 1, maxLength: 4 * 1024 * 1024, description: 'libvirt domain XML' })),
      spec: Type.Optional(VmSpec),
      launchPaused: Type.Optional(Type.Boolean()),
      restoreState: Type.Optional(StateVolume),
    }),
    result: Type.Object({ vmId: Uuid, status: Type.Literal('WaitForLaunch') }),
    errors: ['exists', 'invalidParams', 'recovery', 'libvirtUnavailable', 'shuttingDown', 'hookError', 'networkBadBridge'], since: '0.1', mutating: true,
  }),
  'VM.hibernate': method({
    summary: "Hibernates the VM: its RAM and device state go to stateVolume and the VM stops (Saving State, then Down with exit reason 10). Answers at once. The disks stay as they are; VM.create with restoreState resumes it, on this host or another. Hooks: before_vm_hibernate (its failure refuses the call), after_vm_hibernate.",
    params: withVmId({ stateVolume: StateVolume }), result: Empty,
    errors: [...VM_ERRORS, 'wrongState', 'hookError', 'invalidParams'], since: '0.6', mutating: true,
  }),
  'VM.destroy': method({
    summary: 'Stops the VM at once (graceful destroy first, then forced) and forgets it.',
    params: withVmId({}), result: Empty, errors: VM_ERRORS, since: '0.1', mutating: true,
  }),
  'VM.shutdown': method({
    summary: 'Shuts the guest down: guest agent, then ACPI, then (only if force) destroy; each step with its own timeout.',
    params: withVmId({
      delay: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 's to wait before starting' })),
      message: Type.Optional(Type.String({ maxLength: 1024 })),
      timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 's per step' })),
      force: Type.Optional(Type.Boolean({ default: false })),
    }),
    result: Type.Object({ status: VmStatus, method: Type.String({ description: 'the step that stopped the VM' }) }),
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.reset': method({
    summary: 'Hard reset of the guest.', params: withVmId({}), result: Empty,
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.pause': method({
    summary: 'Pauses the VM.', params: withVmId({}), result: Type.Object({ status: VmStatus }),
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.cont': method({
    summary: 'Resumes a paused VM.', params: withVmId({}), result: Type.Object({ status: VmStatus }),
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.getStats': method({
    summary: "The VM's stats from the last sample.", params: withVmId({}),
    result: Type.Object({ statsList: Type.Array(VmStats) }), errors: ['noVM', 'hookError'], since: '0.1', mutating: false,
  }),
  'VM.hotplugDisk': method({
    summary: 'Attaches a disk to a running VM and records it in the VM metadata.',
    params: withVmId({ drive: DiskSpec }), result: Type.Object({ xml: Type.String() }),
    errors: [...VM_ERRORS, 'wrongState', 'exists'], since: '0.1', mutating: true,
  }),
  'VM.hotunplugDisk': method({
    summary: 'Detaches a disk from a running VM.',
    params: withVmId({ drive: Type.Object({ name: Type.String({ minLength: 1 }) }) }), result: Empty,
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.hotplugNic': method({
    summary: 'Attaches a NIC to a running VM.',
    params: withVmId({ nic: NicSpec }), result: Type.Object({ mac: Type.String(), xml: Type.String() }),
    errors: [...VM_ERRORS, 'wrongState', 'networkBadBridge'], since: '0.1', mutating: true,
  }),
  'VM.hotunplugNic': method({
    summary: 'Detaches a NIC, named by MAC address, from a running VM.',
    params: withVmId({ nic: Type.Object({ mac: Type.String({ pattern: '^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$' }) }) }),
    result: Empty, errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.setTicket': method({
    summary: 'Sets the VNC password, valid for ttl seconds (a one-time console ticket), and answers where the display listens.',
    params: withVmId({
      password: Type.String({ maxLength: 8, description: 'VNC passwords are at most 8 characters' }),
      ttl: Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600, description: 's; 0 = expire now' }),
      existingConnAction: Type.Optional(Type.Union([Type.Literal('keep'), Type.Literal('disconnect'), Type.Literal('fail')], { default: 'keep' })),
    }),
    result: Type.Object({
      display: Type.Object({
        type: Type.Literal('vnc'),
        port: Type.Integer({ minimum: 1, maximum: 65535, description: 'the VNC port on this host' }),
        listen: Type.String({ description: "the address the display listens on (vm.displayListen when it started); 0.0.0.0 or :: means every address of the host" }),
      }, { description: 'where a console connects, with the password just set (added in 0.6)' }),
    }),
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
} as const satisfies Record<string, MethodDef>;
