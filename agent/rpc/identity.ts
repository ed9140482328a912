// Who a client is, beyond "its certificate is from our CA": the controller
// enrols every host with a certificate from that same CA, so the CA alone
// would let any host drive any other. A client's identity is its
// certificate subject's OU, as the controller's PKI issues them
// (controller/pki/ca.ts): controller (the controller's AgentLinks), admin
// (operators' tools), host (each host's agent certificate). Which OUs may do
// what is configuration (rpc.clientIdentities, rpc.peerHostIdentities).
//
// A host identity is allowed exactly what a source agent's migration needs
// on its destination (agent/vm/migration/peer.ts connects with the host
// certificate, as VDSM does): VM.migrationCreate, and VM.destroy of an
// incoming VM that has not arrived (its cleanup after a failed migration).
// Giving peer.ts a controller identity instead would put a certificate that
// may do everything on every host; a host one limited to these verbs cannot
// stop or destroy another host's running VMs.
import type { PeerCertificate } from 'node:tls';
import { NotPermittedError, type HostvisorError } from '../../api/errors.js';
import type { VmStatusT } from '../vm/status.js';

export type ClientRole = 'full' | 'peer-host';

/** The OUs of a certificate subject (node gives one OU as a string, several as an array). */
export function subjectOUs(cert: PeerCertificate | undefined): string[] {
  const ou = (cert?.subject as Record<string, string | string[] | undefined> | undefined)?.['OU'];
  return ou === undefined ? [] : Array.isArray(ou) ? ou : [ou];
}

/** Parses a comma-separated identity list setting. */
export function identityList(setting: string): string[] {
  return setting.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

export interface IdentityRules {
  /** OUs allowed every method. */
  full: string[];
  /** OUs allowed only the migration peer's methods. */
  peerHost: string[];
}

/** The role the certificate gives, or undefined when it gives none (the upgrade is refused). */
export function clientRole(cert: PeerCertificate | undefined, rules: IdentityRules): ClientRole | undefined {
  const ous = subjectOUs(cert);
  if (ous.some((ou) => rules.full.includes(ou))) return 'full';
  if (ous.some((ou) => rules.peerHost.includes(ou))) return 'peer-host';
  return undefined;
}

/** Statuses of a VM a migration source may destroy on its destination: an incoming one not yet arrived, or one already down. */
const PEER_DESTROYABLE: readonly VmStatusT[] = ['Migration Destination', 'Down'];

/**
 * Refuses a call a peer host may not make; undefined when it may. `status`
 * gives a VM's status on this host (undefined: no such VM, and the call
 * answers noVM as for anyone).
 */
export function authorizePeerHost(method: string, params: unknown, status: (vmId: string) => VmStatusT | undefined): HostvisorError | undefined {
  // VM.refresh_disk: a migrating source has the destination refresh a volume it extended (only a volume of a VM this host has).
  if (method === 'VM.migrationCreate' || method === 'VM.refresh_disk') return undefined;
  if (method === 'VM.destroy') {
    const vmId = (params as { vmID?: unknown } | undefined)?.vmID;
    if (typeof vmId !== 'string') return new NotPermittedError(method, 'no vmID');
    const s = status(vmId);
    return s === undefined || PEER_DESTROYABLE.includes(s) ? undefined
      : new NotPermittedError(method, `a host may destroy only an incoming migration that has not arrived (this VM is ${s})`);
  }
  return new NotPermittedError(method, 'a host identity may call only VM.migrationCreate, VM.refresh_disk and VM.destroy of an incoming migration');
}
