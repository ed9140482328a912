// Which libvirt domain type new VMs get. Real hosts use kvm; machines whose
// /dev/kvm cannot run stock guests (nested or emulated KVM) are configured
// to 'qemu' (TCG). Nothing else in the agent assumes either.
import type { Connection } from '../libvirt/index.js';
import { parseXml } from '../vm/xml.js';

export type DomainType = 'kvm' | 'qemu';

/** Resolves 'auto' from the host's domain capabilities: kvm if libvirt offers it, else qemu. */
export async function resolveDomainType(setting: 'auto' | DomainType, conn: Connection): Promise<DomainType> {
  if (setting !== 'auto') return setting;
  return offersKvm(await conn.capabilities()) ? 'kvm' : 'qemu';
}

/** True when libvirt's host capabilities list a kvm domain for some guest arch. */
export function offersKvm(capabilitiesXml: string): boolean {
  return parseXml(capabilitiesXml).elements('guest')
    .some((g) => g.elements('arch').some((a) => a.elements('domain').some((d) => d.attr('type') === 'kvm')));
}
