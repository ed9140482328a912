// POST /vms {template, clone}: the clone's disks (pending, no volumes yet) and the VM recorded as
// any VM is, with the template's spec naming them; the vm.clone job then makes the volumes. A VM
// that cannot be recorded (its name taken) takes its just-recorded disks with it.
import type { Store } from '../store/store.js';
import type { Vm } from '../model/vms.js';
import type { CloneKind } from '../model/templates.js';
import { ConflictError } from '../store/errors.js';
import { cloneDisks, cloneSpec, type CloneSpecOverrides } from './clone-plan.js';
import type { CloneJobParams } from './clone-job.js';
import { TemplateNotReadyError } from './errors.js';

export interface CloneRequestBody {
  name: string; template: string; clone: CloneKind; spec?: CloneSpecOverrides;
  memoryReservationMiB?: number; cpuReservation?: number; priority?: number;
}

export async function defineClone(store: Store, b: CloneRequestBody, pinnedHost: (clusterId: string) => Promise<string | null>): Promise<{ vm: Vm; params: CloneJobParams }> {
  const tpl = await store.templates.get(b.template, 'body.template');
  if (tpl.status !== 'ready') throw new TemplateNotReadyError(tpl);
  if ((await store.vms.list()).some((v) => v.name === b.name)) throw new ConflictError(`a VM named ${b.name} exists`, { field: 'body.name' });
  const pinnedHostId = await pinnedHost(tpl.clusterId);
  const planned = cloneDisks(tpl, b.name, b.clone);
  const made: { diskId: string; drive: string }[] = [];
  try {
    for (const d of planned) {
      const disk = await store.disks.create({ name: d.name, storageDomainId: d.storageDomainId, sizeBytes: d.sizeBytes, provisioning: 'thin',
        ...(d.templateId !== undefined && { templateId: d.templateId }) });
      made.push({ diskId: disk.id, drive: d.drive });
    }
    const spec = cloneSpec(tpl, new Map(made.map((m) => [m.drive, m.diskId])), b.spec);
    const vm = await store.vms.create({
      name: b.name, clusterId: tpl.clusterId, spec, pinnedHostId, priority: b.priority ?? 0,
      memoryReservationMiB: b.memoryReservationMiB ?? spec.memoryMiB, cpuReservation: b.cpuReservation ?? spec.vcpus ?? 1,
    });
    return { vm, params: { templateId: tpl.id, clone: b.clone, disks: made } };
  } catch (e) {
    for (const m of made) await store.disks.delete(m.diskId);
    throw e;
  }
}
