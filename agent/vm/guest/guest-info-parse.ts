// libvirt's guest info (flat typed parameters: `hostname`, `if.0.name`, ...)
// and agent interface addresses, turned into VDSM's VM.getStats fields.
import type { Static } from '@sinclair/typebox';
import type { InterfaceAddresses, TypedParamsRecord } from '../../libvirt/index.js';
import { GuestInfoFields, type GuestNetIface } from '../../../api/guest-info.js';
import { IPAddrType } from '../../libvirt/generated/enums.js';

type Fields = typeof GuestInfoFields;
export type GuestInfo = { [K in keyof Fields]?: Static<Fields[K]> };
type NetIface = Static<typeof GuestNetIface>;

const str = (p: TypedParamsRecord, k: string): string | undefined => (p[k] === undefined ? undefined : String(p[k]));
const num = (p: TypedParamsRecord, k: string): number | undefined => (p[k] === undefined ? undefined : Number(p[k]));
const indexes = (p: TypedParamsRecord, prefix: string): number[] => {
  const n = num(p, `${prefix}count`) ?? 0;
  return Array.from({ length: n }, (_, i) => i);
};

export function parseUsers(p: TypedParamsRecord): GuestInfo {
  const users = indexes(p, 'user.').map((i) => {
    const name = str(p, `user.${i}.name`) ?? '';
    const domain = str(p, `user.${i}.domain`);
    return domain ? `${name}@${domain}` : name;
  });
  return { username: users.join(',') };
}

export function parseHostname(p: TypedParamsRecord): GuestInfo {
  const h = str(p, 'hostname');
  return h === undefined ? {} : { guestName: h, guestFQDN: h };
}

export function parseOs(p: TypedParamsRecord): GuestInfo {
  if (str(p, 'os.id') === undefined && str(p, 'os.kernel-release') === undefined) return {};
  const kernel = str(p, 'os.kernel-release') ?? '';
  const id = str(p, 'os.id') ?? '';
  return {
    guestOs: kernel,
    guestOsInfo: {
      // qemu-ga reports os.id "mswindows" on Windows; anything else here runs Linux (its kernel-release is a Linux one).
      type: id === 'mswindows' ? 'windows' : 'linux',
      arch: str(p, 'os.machine') ?? '',
      kernel,
      distribution: str(p, 'os.name') ?? '',
      version: str(p, 'os.version-id') ?? str(p, 'os.version') ?? '',
      codename: str(p, 'os.variant') ?? '',
    },
  };
}

export function parseTimezone(p: TypedParamsRecord): GuestInfo {
  const offset = num(p, 'timezone.offset');
  if (offset === undefined) return {};
  return { guestTimezone: { offset: Math.round(offset / 60), zone: str(p, 'timezone.name') ?? '' } };
}

export function parseFilesystems(p: TypedParamsRecord): GuestInfo {
  const disksUsage = indexes(p, 'fs.').flatMap((i) => {
    const total = num(p, `fs.${i}.total-bytes`);
    const used = num(p, `fs.${i}.used-bytes`);
    // A file system without sizes (a pseudo fs the agent could not stat) says nothing about usage.
    if (total === undefined || used === undefined) return [];
    return [{ path: str(p, `fs.${i}.mountpoint`) ?? '', fs: str(p, `fs.${i}.fstype`) ?? '', total, used }];
  });
  return { disksUsage };
}

/** VDSM's guestDiskMapping: serial -> guest device, from DISKS (whole disks, not partitions). */
export function parseDisks(p: TypedParamsRecord): GuestInfo {
  const mapping: Record<string, { name: string }> = {};
  for (const i of indexes(p, 'disk.')) {
    const serial = str(p, `disk.${i}.serial`);
    const name = str(p, `disk.${i}.name`);
    if (serial && name && p[`disk.${i}.partition`] !== true) mapping[serial] = { name };
  }
  return { guestDiskMapping: mapping };
}

function isReported(addr: string): boolean {
  return !(addr.startsWith('127.') || addr === '::1' || addr.toLowerCase().startsWith('fe80:'));
}

/** netIfaces and guestIPs from virDomainInterfaceAddresses(AGENT). */
export function fromInterfaceAddresses(ifaces: readonly InterfaceAddresses[]): GuestInfo {
  const netIfaces: NetIface[] = ifaces.map((f) => ({
    name: f.name,
    hw: f.hwaddr,
    inet: f.addrs.filter((a) => a.type === IPAddrType.IPV4).map((a) => a.addr),
    inet6: f.addrs.filter((a) => a.type === IPAddrType.IPV6).map((a) => a.addr),
  }));
  const guestIPs = netIfaces.flatMap((f) => [...f.inet, ...f.inet6]).filter(isReported).join(' ');
  return { netIfaces, guestIPs };
}
