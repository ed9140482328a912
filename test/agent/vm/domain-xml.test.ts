// Domain XML as a tree: what an engine sends survives the agent's edits;
// namespaces decide what is ours, not prefixes; bad XML is refused clearly.
import t from 'tap';
import { parseXml, serializeXml, XmlElement, XmlSyntaxError } from '../../../agent/vm/xml.js';
import { metadataBlock, metadataElement, metadataFromDomainXml, metadataOfDomain, METADATA_NS, setMetadataBlock, type VmMetadata } from '../../../agent/vm/metadata.js';
import { parseDomainDevices, parseEngineXml, prepareEngineXml, specToDomainXml } from '../../../agent/vm/domain-xml.js';
import { withVncTicket } from '../../../agent/vm/verbs/console.js';
import { offersKvm } from '../../../agent/virt/domain-type.js';
import { InvalidParamsError } from '../../../api/errors.js';

const VM_ID = '6b1c6b3e-3f0e-4c52-9a70-0f4c0e6f1a11';
const OVIRT = 'http://ovirt.org/vm/1.0';
const meta = (over: Partial<VmMetadata> = {}): VmMetadata => ({ customProperties: {}, devices: [], ...over });

t.test('a parse and write keeps foreign namespaces, comments, CDATA, entities and whitespace', async (t) => {
  const xml = `<domain type="kvm" xmlns:ovirt-vm="${OVIRT}">\n  <name>a &amp; b &lt;c&gt; &#x41;&#66;</name>\n  <!-- engine note -->\n`
    + `  <metadata><ovirt-vm:vm><ovirt-vm:custom><ovirt-vm:k a="1 &quot;2&quot; &amp; 3">v</ovirt-vm:k></ovirt-vm:custom></ovirt-vm:vm></metadata>\n`
    + '  <description><![CDATA[<raw> & ]]></description>\n</domain>';
  const out = serializeXml(parseXml(xml));
  t.equal(out, `<domain type="kvm" xmlns:ovirt-vm="${OVIRT}">\n  <name>a &amp; b &lt;c&gt; AB</name>\n  <!-- engine note -->\n`
    + `  <metadata><ovirt-vm:vm><ovirt-vm:custom><ovirt-vm:k a="1 &quot;2&quot; &amp; 3">v</ovirt-vm:k></ovirt-vm:custom></ovirt-vm:vm></metadata>\n`
    + '  <description><![CDATA[<raw> & ]]></description>\n</domain>', 'the same document (numeric references written as characters)');
  t.equal(parseXml(out).element('name')!.text(), 'a & b <c> AB', 'text is decoded once');
  t.equal(serializeXml(parseXml(out)), out, 'and a second round trip changes nothing');
});

t.test('namespaces come from declarations on the element or any ancestor, prefixed or default', async (t) => {
  const dom = parseXml(`<domain xmlns:o="${OVIRT}"><metadata><o:vm/><x:vm xmlns:x="${METADATA_NS}"><x:startTime>5</x:startTime></x:vm>`
    + `<vm xmlns="${METADATA_NS}"><custom name="k">v</custom></vm><o:vm xmlns:o="urn:other"/></metadata></domain>`);
  const md = dom.element('metadata')!;
  t.same(md.elements().map((e) => e.namespaceURI), [OVIRT, METADATA_NS, METADATA_NS, 'urn:other'], 'declared on <domain>, on the element, default, and a prefix rebound');
  t.equal(md.elementsNS(METADATA_NS, 'vm').length, 2, 'ours found by namespace, whatever the prefix');
  t.equal(md.elementsNS(METADATA_NS, 'vm')[1]!.elementsNS(METADATA_NS, 'custom')[0]!.text(), 'v', 'children inherit the default namespace');
});

t.test('malformed input is an XmlSyntaxError that says what and where', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['mismatched tag', '<domain>\n<name>x</nam></domain>', /closing tag.*line 2/],
    ['unclosed', '<domain><name>x</name>', /Unclosed tag 'domain'/],
    ['empty', '', /Start tag expected/],
    ['plain text', 'hello', /not expected/],
    ['two roots', '<domain/><domain/>', /content after the root element/],
    ['text after the root', '<domain/>trailing', /content after the root|Extra text/],
    ['undefined entity', '<domain><name>&nbsp;</name></domain>', /undefined entity &nbsp;/],
    ['a bare ampersand', '<domain><name>a & b</name></domain>', /bare '&'|char '&' is not expected/],
    ['a bare ampersand in an attribute', '<domain type="a&b"/>', /bare '&'|not expected|Invalid/],
    ['a DOCTYPE', '<!DOCTYPE domain [<!ENTITY x "y">]><domain>&x;</domain>', /DOCTYPE/],
  ];
  for (const [what, xml, message] of cases) {
    const err = (() => { try { parseXml(xml); return undefined; } catch (e) { return e; } })();
    t.ok(err instanceof XmlSyntaxError, `${what}: XmlSyntaxError`);
    t.match((err as Error).message, message, `${what}: ${(err as Error).message}`);
  }
});

t.test('engine XML: a <uuid> is added after <name> when missing; ours and the engine\'s metadata side by side', async (t) => {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<domain type="qemu" xmlns:ovirt-vm="${OVIRT}"><name>peer-1</name><memory>1</memory>`
    + '<metadata><ovirt-vm:vm><ovirt-vm:clusterVersion>4.7</ovirt-vm:clusterVersion></ovirt-vm:vm></metadata></domain>';
  const out = parseXml(prepareEngineXml(VM_ID, parseEngineXml(VM_ID, xml), meta({ startTime: 42, customProperties: { a: 'b' } })));
  t.same(out.elements().map((e) => e.name).slice(0, 3), ['name', 'uuid', 'memory'], '<uuid> right after <name>');
  t.equal(out.element('uuid')!.text(), VM_ID);
  const md = out.element('metadata')!;
  t.equal(md.elementsNS(OVIRT, 'vm')[0]!.elementsNS(OVIRT, 'clusterVersion')[0]!.text(), '4.7', 'the engine\'s block is kept, its namespace resolvable');
  t.same(metadataOfDomain(out), meta({ startTime: 42, customProperties: { a: 'b' } }), 'ours reads back');
  const noMd = parseXml(prepareEngineXml(VM_ID, parseEngineXml(VM_ID, '<domain><name>n</name><uuid>' + VM_ID.toUpperCase() + '</uuid></domain>'), meta()));
  t.equal(noMd.element('uuid')!.text(), VM_ID.toUpperCase(), 'a uuid equal but for case is kept as written');
  t.equal(noMd.element('metadata')!.elementsNS(METADATA_NS, 'vm').length, 1, 'a <metadata> is made when there is none');
});

t.test('engine XML with blocks of ours: the first is replaced in place, extra ones dropped, and others\' vm elements never read as ours', async (t) => {
  const xml = `<domain><name>n</name><metadata><ovirt-vm:vm xmlns:ovirt-vm="${OVIRT}"><ovirt-vm:custom name="owner">ovirt</ovirt-vm:custom><ovirt-vm:startTime>1</ovirt-vm:startTime></ovirt-vm:vm>`
    + `<hv:vm xmlns:hv="${METADATA_NS}"><hv:custom name="owner">engine</hv:custom><hv:device devtype="disk" name="vda"><hv:storage poolID="p" domainID="d" imageID="i" volumeID="v"/></hv:device></hv:vm>`
    + `<other xmlns="urn:x"/><vm xmlns="${METADATA_NS}"><custom name="stale">1</custom></vm></metadata></domain>`;
  const dom = parseEngineXml(VM_ID, xml);
  const read = metadataOfDomain(dom)!;
  t.same(read, meta({ customProperties: { owner: 'engine' }, devices: [{ devtype: 'disk', name: 'vda', storage: { poolID: 'p', domainID: 'd', imageID: 'i', volumeID: 'v' } }] }), 'ours is read, not the oVirt vm element before it');
  t.same(metadataFromDomainXml(xml), read, 'the same from the text');
  setMetadataBlock(dom, meta({ startTime: 9 }));
  const md = dom.element('metadata')!;
  t.same(md.elements().map((e) => [e.namespaceURI, e.localName]), [[OVIRT, 'vm'], [METADATA_NS, 'vm'], ['urn:x', 'other']], 'one block of ours, where the first was; the others in their places');
  t.equal(md.elements()[1]!.name, 'hostvisor:vm', 'written with our prefix');
  t.same(metadataOfDomain(dom), meta({ startTime: 9 }));
});

t.test('engine XML refusals are invalidParams naming params.xml', async (t) => {
  const cases: [string, RegExp][] = [
    ['<domain><name>a</domain>', /^params\.xml: not well-formed XML: .*line 1/],
    ['<vm><name>a</name></vm>', /^params\.xml: root element must be <domain>, not <vm>/],
    ['<domain><uuid>' + VM_ID + '</uuid></domain>', /^params\.xml: <name> is required/],
    ['<domain><name> </name></domain>', /^params\.xml: <name> is required/],
    ['<domain><name>a</name><uuid>11111111-2222-3333-4444-555555555555</uuid></domain>', /^params\.xml: <uuid> 11111111-2222-3333-4444-555555555555 differs from vmID/],
  ];
  for (const [xml, message] of cases) {
    const err = (() => { try { parseEngineXml(VM_ID, xml); return undefined; } catch (e) { return e; } })();
    t.ok(err instanceof InvalidParamsError, `${xml}: InvalidParamsError`);
    t.match((err as InvalidParamsError).message, message);
    t.match((err as InvalidParamsError).data, { field: 'params.xml' });
  }
});

t.test('our metadata element: unprefixed for setMetadata, prefixed with our namespace for domain XML, values escaped', async (t) => {
  const m = meta({ startTime: 1, launchPaused: false, customProperties: { 'k<': 'a&"b' }, devices: [{ devtype: 'nic', name: 'n1' }] });
  t.equal(metadataElement(m), '<vm><startTime>1</startTime><launchPaused>false</launchPaused><custom name="k&lt;">a&amp;"b</custom><device devtype="nic" name="n1"/></vm>');
  const block = metadataBlock(m);
  t.match(block, new RegExp(`^<hostvisor:vm xmlns:hostvisor="${METADATA_NS}"><hostvisor:startTime>`));
  t.same(metadataOfDomain(parseXml(`<domain><metadata>${block}</metadata></domain>`)), m, 'reads back the same');
});

t.test('devices, the VNC ticket and the kvm check read the tree, whatever the attribute order or quotes', async (t) => {
  const live = `<domain type='qemu' id='3'><name>g</name><devices>`
    + `<disk type='file' device='disk'><source file='/a b.qcow2'/><target dev='vda' bus='virtio'/><alias name='ua-vda'/><driver name='qemu' type='qcow2'/></disk>`
    + `<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/loop9'/><target dev='vdb'/><readonly/></disk>`
    + `<interface type='bridge'><mac address='52:54:00:AA:bb:01'/><source bridge='br0'/></interface>`
    + `<graphics type='spice' autoport='yes'/><graphics autoport='yes' type="vnc" port='5900' passwdValidTo='1970-01-01T00:00:01'><listen type='address' address='127.0.0.1'/></graphics>`
    + `<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>`;
  t.same(parseDomainDevices(live), {
    name: 'g', hasGraphics: true, hasGuestAgentChannel: true,
    disks: [{ target: 'vda', source: '/a b.qcow2', alias: 'ua-vda', type: 'file', format: 'qcow2', readonly: false }, { target: 'vdb', source: '/dev/loop9', alias: undefined, type: 'block', format: 'raw', readonly: true }],
    nics: [{ mac: '52:54:00:aa:bb:01', bridge: 'br0', alias: undefined }],
  });
  const ticket = withVncTicket(live, { passwd: "p'w\"d", passwdValidTo: '2030-01-01T00:00:00', connected: 'keep' })!;
  const g = parseXml(ticket);
  t.equal(g.name, 'graphics');
  t.same(g.attrs, { autoport: 'yes', type: 'vnc', port: '5900', passwdValidTo: '2030-01-01T00:00:00', passwd: "p'w\"d", connected: 'keep' }, 'only the VNC element, its expiry replaced, password and connected added');
  t.equal(g.element('listen')?.attr('address'), '127.0.0.1', 'its <listen> kept (updateDevice refuses other changes)');
  t.equal(withVncTicket('<domain><name>g</name><devices><graphics type="spice"/></devices></domain>', {}), undefined, 'no VNC: undefined');
  t.ok(offersKvm("<capabilities><host/><guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/><domain type=\"kvm\"/></arch></guest></capabilities>"), 'kvm offered');
  t.notOk(offersKvm("<capabilities><!-- no <domain type='kvm'/> here --><guest><arch name='x86_64'><domain type='qemu'/></arch></guest></capabilities>"), 'only qemu (a comment does not count)');
});

t.test('a VM built from a spec has the guest agent channel org.qemu.guest_agent.0 (libvirt picks its socket)', async (t) => {
  const xml = specToDomainXml(VM_ID, { name: 'g', memoryMiB: 128 }, 'qemu', meta());
  const chan = parseXml(xml).element('devices')?.elements('channel') ?? [];
  t.equal(chan.length, 1, 'one channel');
  t.equal(chan[0]?.attr('type'), 'unix');
  t.equal(chan[0]?.element('target')?.attr('type'), 'virtio');
  t.equal(chan[0]?.element('source'), undefined, 'no source path: libvirt makes one per VM');
  t.ok(parseDomainDevices(xml).hasGuestAgentChannel, 'the agent knows the VM has a guest agent');
});

t.test('tree edits keep parents right', async (t) => {
  const a = new XmlElement('a');
  const b = a.append(new XmlElement('b'));
  const c = new XmlElement('c', {}, ['x']);
  a.insertAfter(b, c);
  t.equal(serializeXml(a), '<a><b/><c>x</c></a>');
  const d = new XmlElement('d');
  d.append(c);
  t.equal(serializeXml(a), '<a><b/></a>', 'appending elsewhere moves the element');
  t.equal(c.parent, d);
  t.throws(() => a.remove(c), /not a child/);
});
