// getNetworkCapabilities: the host's nics, bridges, VLANs and bonds with their
// live state, the managed networks (running config joined with live state),
// and netConfigDirty. Shapes follow VDSM's caps (ipv4addrs, gateway, ports…)
// where they exist. The shapes are declared once, in api-schema.ts.
import type { DeviceCapsT, NetworkCapabilitiesT, NetworkCapsT } from '../../api/network.js';
import { NIC_KINDS } from './canonicalize.js';
import type { DhcpClient } from './dhcp.js';
import { isUp, linkKind, type Ip, type IpAddrJson, type IpLinkJson } from './ip.js';
import { prefixToNetmask, isLinkLocal6 } from './inet.js';
import type { NetConfigT } from './model.js';
import { routeStateOf, isDefaultRoute, type RouteState } from './state.js';
import { ipDeviceOf, topDevice } from './topology.js';

export type DeviceCaps = DeviceCapsT;
export type NetworkCaps = NetworkCapsT;
/** Without lastSetup, which HostNetworks adds. */
export type NetworkCapabilities = Omit<NetworkCapabilitiesT, 'lastSetup'>;

export async function networkCapabilities(ip: Ip, dhcp: DhcpClient, running: NetConfigT, netConfigDirty: boolean): Promise<NetworkCapabilities> {
  const [links, addrs, routes] = [await ip.links(), await ip.addrs(), await ip.routes()];
  const addrBy = new Map<string, IpAddrJson>(addrs.map((a) => [a.ifname, a]));
  const defaults = routes.map(routeStateOf).filter(isDefaultRoute);
  const portsOf = (dev: string) => links.filter((l) => l.master === dev).map((l) => l.ifname).sort();
  const dev = async (l: IpLinkJson): Promise<DeviceCaps> => {
    const info = addrBy.get(l.ifname)?.addr_info ?? [];
    const v4 = info.filter((i) => i.family === 'inet');
    const v6 = info.filter((i) => i.family === 'inet6' && !isLinkLocal6(i.local));
    const gw = (family: 4 | 6) => defaults.find((r: RouteState) => r.family === family && r.dev === l.ifname)?.gateway ?? '';
    return {
      mtu: l.mtu, hwaddr: l.address ?? '', up: isUp(l),
      ipv4addrs: v4.map((i) => `${i.local}/${i.prefixlen}`), ipv6addrs: v6.map((i) => `${i.local}/${i.prefixlen}`),
      addr: v4[0]?.local ?? '', netmask: v4[0] ? prefixToNetmask(v4[0].prefixlen) : '',
      gateway: gw(4), ipv6gateway: gw(6),
      dhcpv4: (await dhcp.running(ip, l.ifname)) !== undefined,
    };
  };
  const caps: NetworkCapabilities = { nics: {}, bridges: {}, vlans: {}, bondings: {}, networks: {}, netConfigDirty };
  const byName = new Map<string, DeviceCaps>();
  for (const l of links) {
    const kind = linkKind(l);
    if (kind === 'loopback') continue;
    const d = await dev(l);
    byName.set(l.ifname, d);
    const data = l.linkinfo?.info_data ?? {};
    if (kind === 'bridge') caps.bridges[l.ifname] = { ...d, ports: portsOf(l.ifname), stp: Number(data['stp_state'] ?? 0) ? 'on' : 'off' };
    else if (kind === 'vlan') caps.vlans[l.ifname] = { ...d, iface: l.link ?? '', vlanid: Number(data['id']) };
    else if (kind === 'bond') caps.bondings[l.ifname] = { ...d, slaves: portsOf(l.ifname), opts: typeof data['mode'] === 'string' ? { mode: data['mode'] } : {} };
    else if (NIC_KINDS.has(kind)) caps.nics[l.ifname] = d;
  }
  for (const [name, net] of Object.entries(running.networks)) {
    const iface = ipDeviceOf(name, net);
    const live = byName.get(iface);
    if (!live) continue; // configured but absent: not reported as a working network
    caps.networks[name] = {
      ...live, iface, bridged: net.bridged, southbound: topDevice(net) ?? '',
      ports: net.bridged ? portsOf(name) : [], stp: net.stp, defaultRoute: net.defaultRoute, switch: 'legacy',
      ...(net.vlan !== undefined ? { vlanid: net.vlan } : {}),
      ...(net.nic !== undefined ? { nic: net.nic } : {}),
      ...(net.bonding !== undefined ? { bond: net.bonding } : {}),
    };
  }
  return caps;
}
