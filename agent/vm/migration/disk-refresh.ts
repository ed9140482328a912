// Thin block volumes extended during a migration (VDSM's refresh_disk,
// bz 1883399): the source's drive monitor keeps extending while memory is
// copied, and the destination already has the volume active with the size it
// had at migrationCreate. Before an extension counts as done on the source,
// the destination refreshes the volume and must see at least the new size;
// otherwise the extension fails (and is retried), so the guest can never
// resume on the destination with a smaller disk than it wrote to.
import { InvalidParamsError, MigrateError } from '../../../api/errors.js';
import type { ParamsOf, ResultOf } from '../../../api/schema.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import type { Vm } from '../vm.js';
import type { MigrationContext } from './context.js';
import { parseXml, serializeXml } from '../xml.js';

const MiB = 1024 * 1024;
/** Bound on the destination's refresh (an LV reload: milliseconds; VDSM allows 60 s for its drive lock). */
const REFRESH_CALL_MS = 60_000;

/** The volume ids of one of the VM's storage disks, found by its volume. */
function diskOf(vm: Vm, volumeID: string): { domainID: string; imageID: string; volumeID: string } | undefined {
  const s = vm.disks.find((d) => d.storage?.volumeID === volumeID)?.storage
    ?? vm.meta.devices.find((d) => d.devtype === 'disk' && d.storage?.volumeID === volumeID)?.storage;
  return s ? { domainID: s.domainID, imageID: s.imageID, volumeID: s.volumeID } : undefined;
}

/** Destination: VM.refresh_disk. Only for a volume of a VM this host has (migrating in, or arrived). */
export async function refreshDisk(c: MigrationContext, p: ParamsOf<'VM.refresh_disk'>): Promise<ResultOf<'VM.refresh_disk'>> {
  const vm = c.manager.get(p.vmID);
  const own = diskOf(vm, p.drive.volumeID);
  if (!own || own.domainID !== p.drive.domainID || own.imageID !== p.drive.imageID) {
    throw new InvalidParamsError(`volume ${p.drive.volumeID} is not a disk of VM ${vm.id}`, { data: { field: 'params.drive' } });
  }
  if (!c.refreshVolume) throw new InvalidParamsError('this agent has no storage pool connected');
  const t0 = performance.now();
  const apparentsize = await c.refreshVolume(p.drive.domainID, p.drive.volumeID);
  c.log.info('disk refreshed for the source of a migration', { vm: vm.id, volume: p.drive.volumeID, apparentsize, status: vm.status, ms: Math.round(performance.now() - t0) });
  return { apparentsize };
}

/**
 * Source: after the SPM extended `volumeID` to sizeMiB, the destination of the VM's running
 * migration refreshes it first. No running migration, or none that reached the destination yet
 * (its migrationCreate prepares the volume at its new size): nothing to do.
 */
export async function refreshOnDestination(c: MigrationContext, vm: Vm, peer: HostvisorClient | undefined, volumeID: string, sizeMiB: number): Promise<number | undefined> {
  if (!peer) return undefined;
  const drive = diskOf(vm, volumeID);
  if (!drive) return undefined;
  const t0 = performance.now();
  const r = await peer.call('VM.refresh_disk', { vmID: vm.id, drive }, { timeoutMs: REFRESH_CALL_MS });
  if (r.apparentsize < sizeMiB * MiB) {
    throw new MigrateError('refresh_disk', `the destination sees ${r.apparentsize} bytes of volume ${volumeID} after its refresh, not ${sizeMiB} MiB`);
  }
  c.log.info('destination refreshed the extended disk', { vm: vm.id, volume: volumeID, sizeMiB, apparentsize: r.apparentsize, ms: Math.round(performance.now() - t0) });
  return r.apparentsize;
}

/**
 * The domain XML for libvirt's destination_xml with the storage disks at the
 * paths the destination prepared (migrationCreate answers them): a volume's
 * path is per host (its activation's link), and an incoming QEMU that opened
 * the source's path would write through the source host's mapping, which the
 * destination's refreshes never reach. Undefined when every path is the same.
 */
export function withDestinationDiskPaths(xml: string, paths: ReadonlyArray<{ name: string; path: string }> | undefined): string | undefined {
  if (!paths?.length) return undefined;
  const root = parseXml(xml);
  let changed = false;
  for (const disk of root.element('devices')?.elements('disk') ?? []) {
    const want = paths.find((p) => p.name === disk.element('target')?.attr('dev'))?.path;
    const source = disk.element('source');
    if (!want || !source) continue;
    const key = disk.attr('type') === 'block' ? 'dev' : 'file';
    if (source.attr(key) === want) continue;
    source.setAttr(key, want);
    changed = true;
  }
  return changed ? serializeXml(root) : undefined;
}
