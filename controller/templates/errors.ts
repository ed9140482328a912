// The refusals of the template routes: a caller's mistake (409), never a server fault.
import { ConflictError } from '../store/errors.js';
import type { TemplateDependent } from '../store/repos/templates.js';

/** A template's volumes back thin clones: deleting it would break them. */
export class TemplateInUseError extends ConflictError {
  constructor(template: string, readonly dependents: TemplateDependent[]) {
    const names = dependents.map((d) => d.vmName ?? `disk ${d.diskName}`);
    super(`template ${template} is the base of thin clones: ${[...new Set(names)].join(', ')}`, {
      reason: 'TemplateInUse',
      vms: [...new Map(dependents.filter((d) => d.vmId).map((d) => [d.vmId, { id: d.vmId, name: d.vmName }])).values()],
      disks: dependents.map((d) => ({ id: d.diskId, name: d.diskName, vmId: d.vmId })),
    });
  }
}

/** A template is made from a stopped VM only: a running guest changes its disks while they are copied. */
export class VmNotStoppedError extends ConflictError {
  constructor(vm: { id: string; name: string; status: string; desiredState: string }) {
    super(`VM ${vm.name} is ${vm.status} (meant to be ${vm.desiredState}): a template is made from a stopped VM`,
      { reason: 'VmNotStopped', vmId: vm.id, status: vm.status, desiredState: vm.desiredState });
  }
}

/** Clones are made from a ready template only. */
export class TemplateNotReadyError extends ConflictError {
  constructor(t: { id: string; name: string; status: string }) {
    super(`template ${t.name} is ${t.status}, not ready`, { reason: 'TemplateNotReady', templateId: t.id, status: t.status });
  }
}
