// Pure parts of the migration: libvirt's peer URI per transport, and the
// destination XML with the disk paths the destination prepared.
import t from 'tap';
import { libvirtPeerUri } from '../../../../agent/vm/migration/libvirt-uri.js';
import { withDestinationDiskPaths } from '../../../../agent/vm/migration/disk-refresh.js';
import { parseXml } from '../../../../agent/vm/xml.js';

t.test("libvirt's peer URI", async (t) => {
  t.equal(libvirtPeerUri('10.0.0.2', { libvirtTransport: 'tls', libvirtPkiPath: '' }), 'qemu+tls://10.0.0.2/system', 'tls with libvirt\'s default PKI');
  t.equal(libvirtPeerUri('10.0.0.2', { libvirtTransport: 'tls', libvirtPkiPath: '/etc/libvirt/pki' }), 'qemu+tls://10.0.0.2/system?pkipath=%2Fetc%2Flibvirt%2Fpki', 'tls with a pkipath');
  t.equal(libvirtPeerUri('[fd00::2]', { libvirtTransport: 'tcp', libvirtPkiPath: '/x' }), 'qemu+tcp://[fd00::2]/system', 'tcp ignores the PKI path');
});

t.test('the destination XML takes the disk paths the destination prepared', async (t) => {
  const xml = `<domain type='qemu'><name>v</name><devices>
<disk type='block' device='disk'><driver name='qemu' type='qcow2'/><source dev='/run/a/links/vol1'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><source file='/var/a/img2'/><target dev='vdb' bus='virtio'/></disk>
<disk type='file' device='cdrom'><target dev='sdc' bus='sata'/></disk>
</devices></domain>`;
  t.equal(withDestinationDiskPaths(xml, undefined), undefined, 'no paths: the XML as it is');
  t.equal(withDestinationDiskPaths(xml, [{ name: 'vda', path: '/run/a/links/vol1' }]), undefined, 'the same path: the XML as it is');
  const out = withDestinationDiskPaths(xml, [{ name: 'vda', path: '/run/b/links/vol1' }, { name: 'vdb', path: '/var/b/img2' }, { name: 'sdc', path: '/x' }]);
  t.ok(out, 'changed');
  const disks = parseXml(out!).element('devices')!.elements('disk');
  t.equal(disks[0]!.element('source')!.attr('dev'), '/run/b/links/vol1', 'a block disk: source dev');
  t.equal(disks[1]!.element('source')!.attr('file'), '/var/b/img2', 'a file disk: source file');
  t.equal(disks[2]!.element('source'), undefined, 'an empty cdrom stays empty');
  t.equal(parseXml(out!).element('name')!.text(), 'v', 'the rest is kept');
});
