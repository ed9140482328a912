// What a clone of a template is made of, worked out before anything is recorded: one new disk per
// template volume (on the template volume's domain: a thin clone's backing file must be in its
// domain), and the VM spec of the template with each drive naming its new disk.
import type { Template } from '../model/templates.js';
import type { CloneKind } from '../model/templates.js';
import type { VmSpec } from '../model/vms.js';

export interface CloneDisk {
  name: string;
  /** the drive target (vda, ...) of the template volume it is made from */
  drive: string;
  storageDomainId: string;
  sizeBytes: number;
  /** set for a thin clone: the disk depends on the template's volume */
  templateId?: string;
}

/** The disk names are `<vm>-<drive>`, within the 64 characters of a name. */
export function cloneDisks(tpl: Template, vmName: string, kind: CloneKind): CloneDisk[] {
  return tpl.volumes.map((v) => ({
    name: `${vmName.slice(0, 64 - v.name.length - 1)}-${v.name}`, drive: v.name, storageDomainId: v.storageDomainId, sizeBytes: v.sizeBytes,
    ...(kind === 'thin' && { templateId: tpl.id }),
  }));
}

/** What a clone request may set over the template's spec (not its disks: those are the clone's). */
export type CloneSpecOverrides = Partial<Omit<VmSpec, 'disks' | 'name'>>;

/**
 * The template's spec for the clone: its drives (by target) now name the clone's disks; the
 * source VM's name and serial log file are its own (two VMs writing one log would mix them),
 * then the request's overrides.
 */
export function cloneSpec(tpl: Template, diskIdByDrive: ReadonlyMap<string, string>, overrides: CloneSpecOverrides = {}): VmSpec {
  const { name: _name, serialLog: _serialLog, ...spec } = tpl.spec;
  const disks = (tpl.spec.disks ?? []).map((d) => {
    const diskId = diskIdByDrive.get(d.name);
    if (diskId === undefined) throw new Error(`no clone disk for drive ${d.name}`);
    return { ...d, diskId };
  });
  return { ...spec, ...overrides, ...(disks.length > 0 && { disks }) };
}
