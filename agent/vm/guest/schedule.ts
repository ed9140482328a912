// Which guest-info categories are due for a VM, with VDSM's periods
// (lib/vdsm/virt/qemuguestagent.py): users often, system info and interfaces
// every two minutes, disks and file systems every five; everything at each
// poll for a while after the agent connects, when the guest is still booting.
import { DomainGuestInfoTypes as G } from '../../libvirt/generated/enums.js';

export type GuestCategory = 'users' | 'hostname' | 'os' | 'timezone' | 'interfaces' | 'filesystems' | 'disks';

export const CATEGORIES: readonly GuestCategory[] = ['users', 'hostname', 'os', 'timezone', 'interfaces', 'filesystems', 'disks'];

/** The virDomainGetGuestInfo type bit of a category; interfaces go through virDomainInterfaceAddresses(AGENT). */
export const GUEST_INFO_BIT: Readonly<Record<Exclude<GuestCategory, 'interfaces'>, number>> = {
  users: G.USERS, hostname: G.HOSTNAME, os: G.OS, timezone: G.TIMEZONE, filesystems: G.FILESYSTEM, disks: G.DISKS,
};

export interface GuestSchedule {
  /** How often the poller looks at the VMs (VDSM's qga_polling_period). */
  pollMs: number;
  usersMs: number;
  /** hostname, OS, timezone, network interfaces. */
  sysinfoMs: number;
  /** disks and file systems. */
  diskInfoMs: number;
  /** Every category at each poll for this long after the agent connects. */
  initialWindowMs: number;
}

export function periodOf(c: GuestCategory, s: GuestSchedule): number {
  if (c === 'users') return s.usersMs;
  if (c === 'filesystems' || c === 'disks') return s.diskInfoMs;
  return s.sysinfoMs;
}

/**
 * The categories to ask now: all of them within the initial window after
 * `connectedAt`, else those whose period has passed since their last answer
 * (a category never answered is due).
 */
export function dueCategories(now: number, connectedAt: number, lastDone: ReadonlyMap<GuestCategory, number>, s: GuestSchedule): GuestCategory[] {
  if (now - connectedAt < s.initialWindowMs) return [...CATEGORIES];
  return CATEGORIES.filter((c) => {
    const last = lastDone.get(c);
    return last === undefined || now - last >= periodOf(c, s);
  });
}
