// Which libvirt domain type new VMs get. Real hosts use kvm; machines whose
// /dev/kvm cannot run stock guests (nested or emulated KVM) are configured
// to 'qemu' (TCG). Nothing else in the agent assumes either.
import type { Connection } from '../libvirt/index.js';

export type DomainType = 'kvm' | 'qemu';

/** Resolves 'auto' from the host's domain capabilities: kvm if libvirt offers it, else qemu. */
export async function resolveDomainType(setting: 'auto' | DomainType, conn: Connection): Promise<DomainType> {
  if (setting !== 'auto') return setting;
  const caps = await conn.capabilities();
  return /<domain type=['"]kvm['"]/.test(caps) ? 'kvm' : 'qemu';
}
