// What the guest agent (qemu-ga) tells about a VM's guest, in VDSM's names,
// as VM.getStats reports it. Each field is absent until the agent answered it.
import { Type } from '@sinclair/typebox';

export const GuestNetIface = Type.Object({
  name: Type.String(),
  hw: Type.String({ description: 'MAC address' }),
  inet: Type.Array(Type.String()),
  inet6: Type.Array(Type.String()),
});

export const GuestOsInfo = Type.Object({
  type: Type.String({ description: "'linux', 'windows', ... (the agent's os.id family; os.id when unknown)" }),
  arch: Type.String(),
  kernel: Type.String(),
  distribution: Type.String(),
  version: Type.String(),
  codename: Type.String(),
});

export const GuestDiskUsage = Type.Object({
  path: Type.String({ description: 'mount point' }),
  fs: Type.String(),
  total: Type.Number({ description: 'bytes' }),
  used: Type.Number({ description: 'bytes' }),
});

/** Spread into VmStats. */
export const GuestInfoFields = {
  guestAgentConnected: Type.Optional(Type.Boolean({ description: 'qemu-ga is connected on the VM\'s org.qemu.guest_agent.0 channel (libvirt agent-lifecycle)' })),
  guestIPs: Type.Optional(Type.String({ description: "the guest's addresses (not loopback, not link-local), space separated" })),
  netIfaces: Type.Optional(Type.Array(GuestNetIface)),
  guestName: Type.Optional(Type.String({ description: "the guest's host name" })),
  guestFQDN: Type.Optional(Type.String()),
  guestOs: Type.Optional(Type.String({ description: 'kernel release' })),
  guestOsInfo: Type.Optional(GuestOsInfo),
  guestTimezone: Type.Optional(Type.Object({ offset: Type.Number({ description: 'minutes east of UTC' }), zone: Type.String() })),
  username: Type.Optional(Type.String({ description: 'logged-in users, comma separated (user@domain)' })),
  disksUsage: Type.Optional(Type.Array(GuestDiskUsage)),
  guestDiskMapping: Type.Optional(Type.Record(Type.String(), Type.Object({ name: Type.String() }), { description: 'disk serial -> guest device' })),
};
