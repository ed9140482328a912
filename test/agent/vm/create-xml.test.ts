// VM.create with engine-supplied libvirt domain XML (the way VDSM's engines
// and the README start VMs), through a real agent, libvirtd and QEMU (TCG).
// Every accepted shape runs the whole lifecycle: create, the Up event, the
// guest's boot marker, stats, destroy.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { startAgent, connectClient, StatusWatch, tinyGuest } from '../harness.js';
import { GUEST_DIR, ensureRunDir, guestDomainXml, serialPathFor, waitForSerialMarker } from '../../lab/guest.js';
import { RpcCallError, type HostvisorClient } from '../../../api/client/client.js';
import { Connection } from '../../../agent/libvirt/index.js';
import { ExitReason } from '../../../agent/vm/status.js';

const OUR_NS = 'http://hostvisor.org/xmlns/vm/1.0';
const OVIRT_VM_NS = 'http://ovirt.org/vm/1.0';
const OVIRT_TUNE_NS = 'http://ovirt.org/vm/tune/1.0';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// An independent reader for the checks (not the agent's own XML code): keeps
// prefixes and xmlns attributes, so namespaces are resolved here by hand.
const reader = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false, parseAttributeValue: false });
type Node = Record<string, unknown>;
const asArray = (v: unknown): Node[] => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x) => (typeof x === 'object' && x ? x as Node : { '#text': x })));
const textOf = (n: Node | undefined): string | undefined => (n ? String(n['#text'] ?? '') : undefined);

/** The children of <metadata> in namespace `ns` with local name `local` (declarations on the element, <metadata> or <domain>). */
function metadataElements(xml: string, ns: string, local: string): Node[] {
  const dom = asArray((reader.parse(xml) as Node).domain)[0] ?? {};
  const md = asArray(dom.metadata)[0] ?? {};
  const out: Node[] = [];
  for (const [name, value] of Object.entries(md)) {
    const [prefix, lname] = name.includes(':') ? name.split(':') as [string, string] : ['', name];
    if (lname !== local) continue;
    const decl = prefix ? `@xmlns:${prefix}` : '@xmlns';
    for (const el of asArray(value)) {
      const uri = el[decl] ?? md[decl] ?? dom[decl];
      if (uri === ns) out.push(el);
    }
  }
  return out;
}

function domainField(xml: string, field: string): string | undefined {
  const dom = asArray((reader.parse(xml) as Node).domain)[0];
  return textOf(asArray(dom?.[field])[0]);
}

/** The lab guest's XML as an oVirt engine builds it: declaration, namespaces on <domain>, its own <metadata>. */
function ovirtEngineXml(vmId: string, name: string): string {
  const serial = serialPathFor(name);
  return `<?xml version="1.0" encoding="UTF-8"?><domain type="qemu" xmlns:ovirt-tune="${OVIRT_TUNE_NS}" xmlns:ovirt-vm="${OVIRT_VM_NS}">
  <name>${name}</name>
  <uuid>${vmId}</uuid>
  <memory>131072</memory>
  <currentMemory>131072</currentMemory>
  <maxMemory slots="16">524288</maxMemory>
  <vcpu current="1">2</vcpu>
  <sysinfo type="smbios">
    <system>
      <entry name="manufacturer">oVirt</entry>
      <entry name="product">OS-NAME:</entry>
      <entry name="version">OS-VERSION:</entry>
      <entry name="serialNumber">${vmId}</entry>
      <entry name="uuid">${vmId}</entry>
    </system>
  </sysinfo>
  <cpu match="exact">
    <model>qemu64</model>
    <topology cores="1" threads="1" sockets="2"/>
    <numa>
      <cell id="0" cpus="0-1" memory="131072"/>
    </numa>
  </cpu>
  <clock offset="variable" adjustment="0">
    <timer name="rtc" tickpolicy="catchup"/>
    <timer name="pit" tickpolicy="delay"/>
  </clock>
  <features>
    <acpi/>
  </features>
  <devices>
    <controller type="usb" model="none"/>
    <serial type="file">
      <source path="${serial}" append="off"/>
      <target port="0"/>
    </serial>
    <memballoon model="none"/>
  </devices>
  <pm>
    <suspend-to-disk enabled="no"/>
    <suspend-to-mem enabled="no"/>
  </pm>
  <os>
    <type arch="x86_64" machine="pc">hvm</type>
    <kernel>${join(GUEST_DIR, 'vmlinux')}</kernel>
    <initrd>${join(GUEST_DIR, 'initrd.img')}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline>
    <smbios mode="sysinfo"/>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <metadata>
    <ovirt-tune:qos/>
    <ovirt-vm:vm>
      <ovirt-vm:minGuaranteedMemoryMb type="int">128</ovirt-vm:minGuaranteedMemoryMb>
      <ovirt-vm:clusterVersion>4.7</ovirt-vm:clusterVersion>
      <ovirt-vm:custom>
        <ovirt-vm:sap_agent>false</ovirt-vm:sap_agent>
      </ovirt-vm:custom>
      <ovirt-vm:device mac_address="56:6f:a2:0b:00:01"/>
      <ovirt-vm:launchPaused>false</ovirt-vm:launchPaused>
      <ovirt-vm:resumeBehavior>auto_resume</ovirt-vm:resumeBehavior>
    </ovirt-vm:vm>
  </metadata>
</domain>
`;
}

/** The oVirt engine's metadata elements, for putting into other XML. */
const OVIRT_BLOCK = `<ovirt-vm:vm xmlns:ovirt-vm="${OVIRT_VM_NS}"><ovirt-vm:clusterVersion>4.7</ovirt-vm:clusterVersion>`
  + `<ovirt-vm:custom><ovirt-vm:owner>ovirt-owner</ovirt-vm:owner></ovirt-vm:custom><ovirt-vm:startTime>7</ovirt-vm:startTime></ovirt-vm:vm>`;

/**
 * The lab guest run straight through libvirt and dumped while it runs, as
 * `virsh dumpxml` does it (virDomainGetXMLDesc, flags 0). Done before the
 * agent starts: an agent that saw the domain would keep it as an external VM.
 */
async function dumpRunningDomain(name: string): Promise<{ uuid: string; xml: string }> {
  const conn = await Connection.open('qemu:///system', { callTimeoutMs: 30_000 });
  try {
    // A run killed at its timeout leaves its guests running: their names would clash.
    for (const d of await conn.listAllDomains()) {
      if (d.name.startsWith('hv-it-xml-')) await d.destroy().catch(() => {});
    }
    const dom = await conn.createXML(guestDomainXml({ name }));
    try {
      return { uuid: dom.uuid, xml: await dom.xml() };
    } finally {
      await dom.destroy();
    }
  } finally {
    await conn.close().catch(() => {});
  }
}

ensureRunDir();
const DUMP_NAME = 'hv-it-xml-dumpxml';
const dump = await dumpRunningDomain(DUMP_NAME);
const { agent, config, stop } = await startAgent();
t.teardown(stop);
const client: HostvisorClient = await connectClient(config);
t.teardown(() => client.close());
const watch = new StatusWatch(client);

async function statsOnceSampled(vmID: string): Promise<{ status: string; vmName: string; cpuTimeNs?: number }> {
  for (let i = 0; i < 50; i++) {
    const s = (await client.call('VM.getStats', { vmID })).statsList[0]!;
    if (typeof s.cpuTimeNs === 'number') return s;
    await sleep(200);
  }
  return (await client.call('VM.getStats', { vmID })).statsList[0]!;
}

/** create -> WaitForLaunch, Up event, the guest boots, stats, the running XML; then destroy -> Down. Returns the running XML. */
async function wholeLifecycle(t: Test, vmID: string, name: string, xml: string, checkRunning: (running: string) => void | Promise<void> = () => {}): Promise<void> {
  const serial = serialPathFor(name);
  rmSync(serial, { force: true }); // a boot marker from an earlier run must not count
  t.teardown(() => client.call('VM.destroy', { vmID }).catch(() => {}));
  t.same(await client.call('VM.create', { vmID, xml }), { vmId: vmID, status: 'WaitForLaunch' }, 'create answers WaitForLaunch');
  const launched = await Promise.race([watch.wait(vmID, 'Up', 30_000), watch.wait(vmID, 'Down', 30_000)]);
  if (launched.status !== 'Up') throw new Error(`the launch failed: ${JSON.stringify(launched)}`);
  t.same(watch.statuses(vmID).slice(0, 3), ['WaitForLaunch', 'Powering up', 'Up'], 'status events in order, up to Up');
  await waitForSerialMarker(serial, 'LAB-BOOT-OK', 60_000);
  t.pass('the guest booted (LAB-BOOT-OK on its serial console)');

  const stats = await statsOnceSampled(vmID);
  t.equal(stats.status, 'Up', 'VM.getStats: Up');
  t.equal(stats.vmName, name, 'VM.getStats: the name from the XML');
  t.ok((stats.cpuTimeNs ?? 0) > 0, `VM.getStats: CPU time sampled (${stats.cpuTimeNs} ns)`);
  const listed = (await client.call('Host.getVMList', {})).vmList.find((v) => v.vmId === vmID);
  t.match(listed, { vmId: vmID, vmName: name, status: 'Up', external: false }, 'listed as a managed VM, by the XML name');

  const running = (await client.call('Host.dumpxmls', { vmList: [vmID] })).domxmls[vmID]!;
  t.equal(domainField(running, 'uuid'), vmID, 'the running domain has the vmID as its uuid');
  t.equal(metadataElements(running, OUR_NS, 'vm').length, 1, 'the running domain has exactly one block of our metadata');
  await checkRunning(running);

  await client.call('VM.destroy', { vmID });
  const down = await watch.wait(vmID, 'Down', 15_000);
  t.equal(down.exitReason, ExitReason.DESTROYED, 'destroy -> Down with exitReason DESTROYED');
  t.notOk((await agent.client.connection.listAllDomains()).some((d) => d.uuid === vmID), 'no domain left in libvirt');
  t.notOk((await client.call('Host.getVMList', {})).vmList.some((v) => v.vmId === vmID), 'the agent forgot it');
}

async function refused(xml: string, vmID = randomUUID()): Promise<RpcCallError> {
  const err = await client.call('VM.create', { vmID, xml }).catch((e: unknown) => e);
  if (!(err instanceof RpcCallError)) {
    await client.call('VM.destroy', { vmID }).catch(() => {});
    throw new Error(`VM.create was not refused: ${JSON.stringify(err)}`);
  }
  return err;
}

t.test('XML as virsh dumpxml prints it for a running domain: accepted, and runs the whole lifecycle', async (t) => {
  t.match(dump.xml, /<domain type='qemu' id='\d+'>/, 'the dump is of a running domain (it carries the runtime id)');
  t.match(dump.xml, /<alias name=/, 'with the live-only parts (device aliases)');
  await wholeLifecycle(t, dump.uuid, DUMP_NAME, dump.xml);
});

t.test('XML as an oVirt engine builds it: accepted, runs the whole lifecycle, and its own metadata survives', async (t) => {
  const name = 'hv-it-xml-ovirt';
  const vmID = randomUUID();
  await wholeLifecycle(t, vmID, name, ovirtEngineXml(vmID, name), (running) => {
    const ovirt = metadataElements(running, OVIRT_VM_NS, 'vm');
    t.equal(ovirt.length, 1, 'the engine\'s <ovirt-vm:vm> block is in the running domain');
    t.equal(textOf(asArray(ovirt[0]?.['ovirt-vm:clusterVersion'])[0]), '4.7', 'with its values');
    t.equal(asArray(ovirt[0]?.['ovirt-vm:device'])[0]?.['@mac_address'], '56:6f:a2:0b:00:01', 'and its device element');
    t.equal(metadataElements(running, OVIRT_TUNE_NS, 'qos').length, 1, 'the engine\'s <ovirt-tune:qos> is there too');
    t.match(running, /<entry name='manufacturer'>oVirt<\/entry>/, 'the engine\'s sysinfo reached libvirt');
  });
});

t.test('XML without a <uuid> gets the vmID as its uuid, and runs the whole lifecycle', async (t) => {
  const name = 'hv-it-xml-nouuid';
  const xml = guestDomainXml({ name });
  t.notMatch(xml, /<uuid>/, 'the lab\'s XML has no <uuid>');
  await wholeLifecycle(t, randomUUID(), name, xml);
});

t.test('XML with our metadata block already in it (after another namespace\'s vm element): one block, its custom properties kept, a fresh start time', async (t) => {
  const name = 'hv-it-xml-ourmeta';
  // A VM the agent made from a spec, dumped as libvirt prints it...
  const g = tinyGuest(name, { customProperties: { owner: 'engine-a', tier: 'gold' } });
  t.teardown(() => client.call('VM.destroy', { vmID: g.vmID }).catch(() => {}));
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 30_000);
  const dumped = (await client.call('Host.dumpxmls', { vmList: [g.vmID] })).domxmls[g.vmID]!;
  const before = (await client.call('Host.getVMFullList', { vmList: [g.vmID] })).vmList[0]!;
  await client.call('VM.destroy', { vmID: g.vmID });
  await watch.wait(g.vmID, 'Down', 15_000);
  t.equal(metadataElements(dumped, OUR_NS, 'vm').length, 1, 'the dump carries our metadata block');
  // ...with an oVirt <vm> element put before ours, as an engine that keeps both would send it.
  const xml = dumped.replace(/<metadata>/, `<metadata>${OVIRT_BLOCK}`);
  t.not(xml, dumped, 'the oVirt block was put in');
  await sleep(5); // the new start time must be later than the old one
  await wholeLifecycle(t, g.vmID, name, xml, async (running) => {
    const full = (await client.call('Host.getVMFullList', { vmList: [g.vmID] })).vmList[0]!;
    t.same(full.customProperties, { owner: 'engine-a', tier: 'gold' }, 'the custom properties in our block are the VM\'s, not the oVirt element\'s');
    t.ok((full.startTime ?? 0) > (before.startTime ?? Infinity), `a fresh start time (${before.startTime} -> ${full.startTime})`);
    t.equal(metadataElements(running, OVIRT_VM_NS, 'vm').length, 1, 'the oVirt block survived next to ours');
  });
});

t.test('XML with a <uuid> other than vmID is refused with invalidParams naming the field, and nothing is left', async (t) => {
  const name = 'hv-it-xml-otheruuid';
  const vmID = randomUUID();
  const other = randomUUID();
  const xml = guestDomainXml({ name }).replace('</name>', `</name>\n  <uuid>${other}</uuid>`);
  const err = await refused(xml, vmID);
  t.equal(err.code, -32602, 'invalidParams (-32602)');
  t.match(err.data, { field: 'params.xml' }, 'data.field names the parameter');
  t.match(err.message, /<uuid>/, 'the message names the <uuid> element');
  t.match(err.message, other, 'and the uuid it found');
  t.notOk((await client.call('Host.getVMList', {})).vmList.some((v) => v.vmId === vmID || v.vmId === other), 'no VM registered');
  t.notOk((await agent.client.connection.listAllDomains()).some((d) => d.name === name), 'no domain in libvirt');
  // The same uuid written in capitals is the same uuid: accepted.
  const upper = guestDomainXml({ name }).replace('</name>', `</name>\n  <uuid>${vmID.toUpperCase()}</uuid>`);
  t.same(await client.call('VM.create', { vmID, xml: upper }), { vmId: vmID, status: 'WaitForLaunch' }, 'a <uuid> equal to vmID but in capitals is accepted');
  await watch.wait(vmID, 'Up', 30_000);
  await client.call('VM.destroy', { vmID });
});

t.test('malformed XML is refused with invalidParams (-32602), data.field params.xml and a message that says where; nothing is left', async (t) => {
  const good = guestDomainXml({ name: 'hv-it-xml-malformed' });
  const cases: [string, string, RegExp][] = [
    ['truncated', good.slice(0, good.indexOf('</devices>')), /not well-formed XML/],
    ['mismatched end tag', good.replace('</os>', '</oss>'), /not well-formed XML/],
    ['unquoted attribute', good.replace("type='qemu'", 'type=qemu'), /not well-formed XML/],
    ['two root elements', `${good}<domain type='qemu'><name>second</name></domain>`, /not well-formed XML/],
    ['not XML at all', 'name: hv-it-xml-malformed\nmemory: 128', /not well-formed XML|root element must be <domain>/],
    ['a DOCTYPE (entity expansion)', `<!DOCTYPE domain [<!ENTITY a "aaaaaaaa">]>${good}`, /DOCTYPE/],
    ['root element not <domain>', '<vm><name>hv-it-xml-malformed</name></vm>', /root element must be <domain>/],
    ['<domain> without <name>', good.replace(/<name>[^<]*<\/name>/, ''), /<name> is required/],
    ['an empty <name>', good.replace(/<name>[^<]*<\/name>/, '<name/>'), /<name> is required/],
  ];
  for (const [what, xml, message] of cases) {
    const vmID = randomUUID();
    const err = await refused(xml, vmID);
    t.equal(err.code, -32602, `${what}: invalidParams (-32602)`);
    t.match(err.data, { field: 'params.xml' }, `${what}: data.field is params.xml`);
    t.match(err.message, /^params\.xml: /, `${what}: the message starts with the field`);
    t.match(err.message, message, `${what}: ${err.message}`);
    t.notOk((await client.call('Host.getVMList', {})).vmList.some((v) => v.vmId === vmID), `${what}: no VM registered`);
  }
  const malformed = await refused(good.replace('</os>', '</oss>'));
  t.match(malformed.message, /line \d+/, `a syntax error says its line: ${malformed.message}`);
  t.notOk((await agent.client.connection.listAllDomains()).some((d) => d.name === 'hv-it-xml-malformed'), 'no domain in libvirt');
});
