// From a canonical config to the devices it needs, VDSM's way:
// - a bridged network is a Linux bridge named after the network;
// - its "top" device (nic, bond, or VLAN device `<base>.<id>`) is a port of
//   that bridge, and the IP config lives on the bridge;
// - a bridgeless network puts its IP config on the top device itself;
// - a nic or bond that carries several networks gets the largest of their
//   MTUs; bond slaves follow their bond.
import type { NetConfigT, NetworkConfigT } from './model.js';
import { NETWORK_DEFAULTS } from './model.js';

export type DeviceKind = 'bridge' | 'vlan' | 'bond' | 'nic';

export interface DeviceSpec {
  name: string;
  kind: DeviceKind;
  mtu: number;
  /** The bridge or bond this device is a port of, or null. */
  master: string | null;
  vlan?: { link: string; id: number };
  bond?: { slaves: string[]; options: string; hwaddr?: string };
  stp?: boolean;
  /** Networks this device serves (sorted). */
  networks: string[];
  /** The network whose IP config lives on this device. */
  ipOf?: string;
}

export interface Topology {
  devices: Map<string, DeviceSpec>;
  /** network name → the device that carries its IP config. */
  ipDev: Record<string, string>;
}

/** Kinds we create and may delete. A nic is never created or deleted, only configured and released. */
export const VIRTUAL_KINDS: ReadonlySet<string> = new Set(['bridge', 'vlan', 'bond']);

export function vlanDeviceName(base: string, id: number): string {
  return `${base}.${id}`;
}

/** The device a network's bridge port or IP sits on, below any bridge. */
export function topDevice(net: NetworkConfigT): string | undefined {
  const base = net.nic ?? net.bonding;
  if (base === undefined) return undefined;
  return net.vlan === undefined ? base : vlanDeviceName(base, net.vlan);
}

export function ipDeviceOf(name: string, net: NetworkConfigT): string {
  return net.bridged ? name : (topDevice(net) ?? name);
}

export function topology(cfg: NetConfigT): Topology {
  const devices = new Map<string, DeviceSpec>();
  const ipDev: Record<string, string> = {};
  const get = (name: string, kind: DeviceKind): DeviceSpec => {
    let d = devices.get(name);
    if (!d) {
      d = { name, kind, mtu: 0, master: null, networks: [] };
      devices.set(name, d);
    }
    return d;
  };
  const serve = (d: DeviceSpec, net: string, mtu: number) => {
    if (!d.networks.includes(net)) d.networks.push(net);
    d.mtu = Math.max(d.mtu, mtu);
  };

  for (const [name, b] of Object.entries(cfg.bondings)) {
    const d = get(name, 'bond');
    d.bond = { slaves: [...b.nics].sort(), options: b.options, ...(b.hwaddr ? { hwaddr: b.hwaddr } : {}) };
  }
  for (const [name, net] of Object.entries(cfg.networks)) {
    const base = net.nic ?? net.bonding;
    if (base !== undefined) {
      const b = get(base, net.nic !== undefined ? 'nic' : 'bond');
      serve(b, name, net.mtu);
      if (net.vlan !== undefined) {
        const v = get(vlanDeviceName(base, net.vlan), 'vlan');
        v.vlan = { link: base, id: net.vlan };
        serve(v, name, net.mtu);
      }
    }
    const top = topDevice(net);
    if (net.bridged) {
      const br = get(name, 'bridge');
      br.stp = net.stp;
      serve(br, name, net.mtu);
      if (top !== undefined) devices.get(top)!.master = name;
    }
    const ip = ipDeviceOf(name, net);
    ipDev[name] = ip;
    devices.get(ip)!.ipOf = name;
  }
  // Bonds without networks keep the default MTU; slaves follow their bond.
  for (const d of devices.values()) {
    if (d.kind === 'bond' && d.mtu === 0) d.mtu = NETWORK_DEFAULTS.mtu;
  }
  for (const d of [...devices.values()]) {
    if (d.kind !== 'bond' || !d.bond) continue;
    for (const s of d.bond.slaves) {
      const sd = get(s, 'nic');
      sd.master = d.name;
      sd.mtu = d.mtu;
      if (!sd.networks.includes(`bond:${d.name}`)) sd.networks.push(`bond:${d.name}`);
    }
  }
  for (const d of devices.values()) d.networks.sort();
  return { devices, ipDev };
}

/** Every device name a config touches (for snapshots). */
export function deviceNames(cfg: NetConfigT): string[] {
  return [...topology(cfg).devices.keys()];
}
