// A live snapshot's job as both its verb and an agent restarted in its middle
// see it: the snapshot XML libvirt is given, which drives libvirt's domain
// really runs on their new leaves (its live XML, never a guess), and how the
// VM's metadata and disks follow them.
import type { Vm } from './vm.js';
import type { SnapshotDriveMeta, SnapshotJobMeta } from './metadata.js';
import { parseDomainDevices, type DomainDevices } from './domain-xml.js';
import { serializeXml, XmlElement } from './xml.js';

/**
 * <domainsnapshot> for libvirt: the job's drives external on their new leaves
 * (reused: the SPM made them), every other disk left out of it, and the RAM
 * state to `memoryPath` or not at all.
 */
export function snapshotXml(job: SnapshotJobMeta, live: DomainDevices['disks'], types: Record<string, 'file' | 'block'>, memoryPath?: string): string {
  const disks = new XmlElement('disks');
  for (const d of live) {
    if (!d.target) continue;
    const drive = job.drives.find((x) => x.name === d.target);
    if (!drive) {
      disks.append(new XmlElement('disk', { name: d.target, snapshot: 'no' }));
      continue;
    }
    const type = types[drive.name] ?? 'file';
    disks.append(new XmlElement('disk', { name: drive.name, snapshot: 'external', type }, [
      new XmlElement('source', type === 'block' ? { dev: drive.path } : { file: drive.path }),
      new XmlElement('driver', { type: 'qcow2' }),
    ]));
  }
  const memory = memoryPath ? new XmlElement('memory', { snapshot: 'external', file: memoryPath }) : new XmlElement('memory', { snapshot: 'no' });
  return serializeXml(new XmlElement('domainsnapshot', {}, [
    new XmlElement('name', {}, [job.id]),
    new XmlElement('description', {}, ['Hostvisor VM.snapshot']),
    memory, disks,
  ]));
}

/** The job's drives the running domain uses through their new leaf (by its live XML). */
export function switchedDrives(job: SnapshotJobMeta, liveXml: string): SnapshotDriveMeta[] {
  const live = parseDomainDevices(liveXml).disks;
  return job.drives.filter((d) => live.some((l) => l.target === d.name && l.source === d.path));
}

/**
 * The VM's metadata and disks follow drives now on their new leaves; the job
 * is cleared (the caller saves the metadata). Returns the updated disks.
 */
export function followNewLeaves(vm: Vm, drives: readonly SnapshotDriveMeta[], types: Record<string, 'file' | 'block'>): Vm['disks'] {
  const moved: Vm['disks'] = [];
  for (const d of drives) {
    const dev = vm.meta.devices.find((x) => x.devtype === 'disk' && x.name === d.name && x.storage?.imageID === d.imageID);
    if (dev?.storage) dev.storage = { ...dev.storage, volumeID: d.leaf };
    const i = vm.disks.findIndex((x) => x.name === d.name && x.storage?.imageID === d.imageID);
    if (i < 0) continue;
    const old = vm.disks[i]!;
    const disk = { ...old, path: d.path, format: 'qcow2' as const, ...(types[d.name] ? { type: types[d.name] } : {}), storage: { ...old.storage!, volumeID: d.leaf } };
    vm.disks[i] = disk;
    moved.push(disk);
  }
  delete vm.meta.snapshotJob;
  return moved;
}
