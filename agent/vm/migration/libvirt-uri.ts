// The URI the source's libvirtd opens to the destination's for a
// peer-to-peer migration. qemu+tls checks the destination's certificate
// against the cluster's CA and shows it ours (libvirt's own TLS, port 16514);
// qemu+tcp has no authentication at all and only suits a closed lab network.
import type { MigrationSettings } from './context.js';

/** `host` as parseHostPort gives it (IPv6 in brackets). */
export function libvirtPeerUri(host: string, s: Pick<MigrationSettings, 'libvirtTransport' | 'libvirtPkiPath'>): string {
  const base = `qemu+${s.libvirtTransport}://${host}/system`;
  // pkipath: the directory with cacert.pem, clientcert.pem and clientkey.pem, when not libvirt's /etc/pki defaults.
  return s.libvirtTransport === 'tls' && s.libvirtPkiPath ? `${base}?pkipath=${encodeURIComponent(s.libvirtPkiPath)}` : base;
}
