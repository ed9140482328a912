// What a cluster network asks of one host, in the agent's terms (Host.setupNetworks), and
// whether the host has it as asked (Host.getNetworkCapabilities). Pure.
import type { NetworkCapabilitiesT } from '../../api/network.js';
import type { SetupNetworksRequest } from '../../api/network-request.js';
import { ANY_HOST, type Network } from '../model/networks.js';

/** The part of a cluster network one host gets: its attributes and the nic the per-host map names. */
export type HostNetworkSpec = Pick<Network, 'name' | 'vlan' | 'mtu' | 'bridged'> & { nic: string };

/** The host's own entry in the nic map, else the '*' entry, else none (the host does not get it). */
export function hostSpec(network: Network, hostId: string): HostNetworkSpec | null {
  const nic = network.nics[hostId] ?? network.nics[ANY_HOST];
  return nic === undefined ? null : { name: network.name, vlan: network.vlan, mtu: network.mtu, bridged: network.bridged, nic };
}

/**
 * The setupNetworks request that puts one network on its nic. No IP configuration: a cluster
 * network carries VMs, the host's own address stays on its management nic. Other networks are
 * not named, so the agent leaves them alone; one network per call, so a host that cannot build
 * one network (no such nic, no VLAN support) still gets the others.
 */
export function setupRequest(spec: HostNetworkSpec, connectivityTimeoutMs: number): SetupNetworksRequest {
  return {
    networks: {
      [spec.name]: { nic: spec.nic, bridged: spec.bridged, mtu: spec.mtu, ...(spec.vlan !== null ? { vlan: spec.vlan } : {}) },
    },
    bondings: {},
    options: { connectivityCheck: true, connectivityTimeout: connectivityTimeoutMs / 1000 },
  };
}

/** Identifies what was asked of the host, so a changed nic map or MTU is tried again at once. */
export function specKey(spec: HostNetworkSpec): string {
  return `${spec.nic}|${spec.vlan ?? ''}|${spec.mtu}|${spec.bridged}`;
}

/** How the host's network differs from the spec, or null when it is there as asked and up. */
export function mismatch(caps: Pick<NetworkCapabilitiesT, 'networks'>, spec: HostNetworkSpec): string | null {
  const n = caps.networks[spec.name];
  if (n === undefined) return 'not on the host';
  const on = n.nic ?? n.bond ?? n.southbound;
  if (n.nic !== spec.nic) return `on ${on || 'no nic'}, not on ${spec.nic}`;
  if (n.bridged !== spec.bridged) return n.bridged ? 'bridged, asked bridgeless' : 'bridgeless, asked bridged';
  if ((n.vlanid ?? null) !== spec.vlan) return `VLAN ${n.vlanid ?? 'none'}, asked ${spec.vlan ?? 'none'}`;
  if (n.mtu !== spec.mtu) return `MTU ${n.mtu}, asked ${spec.mtu}`;
  if (!n.up) return `${n.iface} is down`;
  return null;
}

/** The managed networks the host has and that are up: what a VM needing one of them can use. */
export function upNetworks(caps: Pick<NetworkCapabilitiesT, 'networks'>): string[] {
  return Object.entries(caps.networks).filter(([, n]) => n.up).map(([name]) => name).sort();
}
