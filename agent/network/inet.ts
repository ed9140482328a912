// Small address helpers for validation and comparison (no dependencies).
import { isIPv4, isIPv6, SocketAddress } from 'node:net';

/** A dotted quad as a 32-bit unsigned number, or undefined if it is not one. */
export function ipv4ToInt(s: string): number | undefined {
  if (!isIPv4(s)) return undefined;
  return s.split('.').reduce((acc, p) => ((acc << 8) >>> 0) + Number(p), 0) >>> 0;
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** 255.255.255.0 → 24; undefined unless the mask is contiguous. */
export function netmaskToPrefix(mask: string): number | undefined {
  const n = ipv4ToInt(mask);
  if (n === undefined) return undefined;
  const inv = (~n) >>> 0;
  if ((inv & (inv + 1)) !== 0) return undefined; // the host part must be 0…01…1
  let bits = 0;
  for (let v = n; v !== 0; v = (v << 1) >>> 0) bits++;
  return bits;
}

export function prefixToNetmask(prefix: number): string {
  return intToIpv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Whether ADDR is in NET/PREFIX (all IPv4). */
export function inSubnet4(addr: string, net: string, prefix: number): boolean {
  const a = ipv4ToInt(addr);
  const n = ipv4ToInt(net);
  if (a === undefined || n === undefined) return false;
  const m = maskOf(prefix);
  return ((a & m) >>> 0) === ((n & m) >>> 0);
}

/** The network and broadcast addresses of ADDR/PREFIX. */
export function subnetBounds4(addr: string, prefix: number): { network: string; broadcast: string } | undefined {
  const a = ipv4ToInt(addr);
  if (a === undefined) return undefined;
  const m = maskOf(prefix);
  const net = (a & m) >>> 0;
  return { network: intToIpv4(net), broadcast: intToIpv4((net | (~m >>> 0)) >>> 0) };
}

/** RFC 5952 text of an IPv6 address (as iproute2 prints it), or undefined. */
export function normalizeIpv6(s: string): string | undefined {
  if (!isIPv6(s)) return undefined;
  try {
    return new SocketAddress({ address: s, family: 'ipv6' }).address;
  } catch {
    return undefined;
  }
}

/** "ADDR/PREFIX" for IPv6, normalized; undefined if invalid. */
export function parseIpv6Cidr(s: string): { address: string; prefix: number } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const address = normalizeIpv6(m[1]!);
  const prefix = Number(m[2]);
  if (!address || prefix < 1 || prefix > 128) return undefined;
  return { address, prefix };
}

export function isLinkLocal6(addr: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(addr);
}

export const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
