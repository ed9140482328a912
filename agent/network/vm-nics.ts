// A VM NIC on a host network. As in VDSM, a bridged network is a Linux bridge
// named after the network, so a NIC given `network: NAME` goes on bridge NAME.
// The network must be in the running config (what setupNetworks last set),
// be bridged, and its bridge must exist now (a host that booted without
// restore-networks has the config but not the bridge): otherwise the call
// fails with 27 naming the NIC's field, before libvirt is asked for anything.
import { NetworkBadBridgeError, NetworkCommandError } from './errors.js';
import { linkKind, type Ip, type IpLinkJson } from './ip.js';
import type { NetConfigT } from './model.js';

export interface NetworkBridgeDeps {
  /** The running config (HostNetworks.runningConfig: running.json, or the truth kept in memory when it could not be written). */
  runningConfig(): Promise<NetConfigT>;
  ip: Ip;
}

/** The bridge a VM NIC on NETWORK attaches to. FIELD names the NIC's network field in the request. */
export async function networkBridge(deps: NetworkBridgeDeps, network: string, field: string): Promise<string> {
  const net = (await deps.runningConfig()).networks[network];
  if (!net) {
    throw new NetworkBadBridgeError(`${field}: there is no network "${network}" on this host`, { data: { field, network, reason: 'noNetwork' } });
  }
  if (!net.bridged) {
    throw new NetworkBadBridgeError(`${field}: network "${network}" is bridgeless (bridged: false); a VM NIC needs a bridged network`, { data: { field, network, reason: 'bridgeless' } });
  }
  let link: IpLinkJson | undefined;
  try {
    [link] = await deps.ip.json<IpLinkJson[]>(['-d', 'link', 'show', 'dev', network]);
  } catch (e) {
    if (!(e instanceof NetworkCommandError && /does not exist|Cannot find device/.test(e.stderr))) throw e;
  }
  if (!link || linkKind(link) !== 'bridge') {
    throw new NetworkBadBridgeError(`${field}: the bridge of network "${network}" is missing on the host (run hostvisor restore-networks or setupNetworks)`, {
      data: { field, network, reason: 'bridgeMissing' },
    });
  }
  return network;
}
