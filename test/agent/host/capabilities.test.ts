// Host capabilities: the pure parsers on a small hand-written XML, the assembly with a stub
// connection, and the whole of Host.getCapabilities but its hooks (capabilitiesWithNetworks:
// libvirt's facts merged with the host networks') on the real libvirtd (qemu:///system).
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Value } from '@sinclair/typebox/value';
import { Methods } from '../../../api/schema.js';
import { Connection } from '../../../agent/libvirt/index.js';
import {
  capabilitiesWithNetworks, cpuTotals, formatLibvirtVersion, hostCapabilities, parseCapabilitiesXml, toMiB,
} from '../../../agent/host/capabilities.js';
import { HostvisorError } from '../../../api/errors.js';
import { HostNetworks } from '../../../agent/network/index.js';
import { NetConfStore } from '../../../agent/network/persist.js';
import { scratchDir } from '../harness.js';

// Two NUMA cells, 2 sockets x 2 cores x 2 threads, CPU 7 offline; an i686 guest that must be
// ignored, and two x86_64 guests (the second only for kvm, with its own machines).
const XML = `<capabilities>
  <host>
    <uuid>11111111-2222-3333-4444-555555555555</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>Skylake-Client-IBRS</model>
      <vendor>Intel</vendor>
      <topology sockets='1' dies='1' cores='2' threads='2'/>
      <feature name='vmx'/>
      <feature name='ds'/>
      <feature name='vmx'/>
      <pages unit='KiB' size='4'/>
    </cpu>
    <topology>
      <cells num='2'>
        <cell id='0'>
          <memory unit='KiB'>4194304</memory>
          <cpus num='4'>
            <cpu id='0' socket_id='0' die_id='0' core_id='0' siblings='0,2'/>
            <cpu id='2' socket_id='0' die_id='0' core_id='0' siblings='0,2'/>
            <cpu id='1' socket_id='0' die_id='0' core_id='1' siblings='1,3'/>
            <cpu id='3' socket_id='0' die_id='0' core_id='1' siblings='1,3'/>
          </cpus>
        </cell>
        <cell id='1'>
          <memory unit='GiB'>2</memory>
          <cpus num='4'>
            <cpu id='4' socket_id='1' die_id='0' core_id='0' siblings='4,6'/>
            <cpu id='6' socket_id='1' die_id='0' core_id='0' siblings='4,6'/>
            <cpu id='5' socket_id='1' die_id='0' core_id='1' siblings='5'/>
            <cpu id='7'/>
          </cpus>
        </cell>
      </cells>
    </topology>
  </host>
  <guest>
    <os_type>hvm</os_type>
    <arch name='i686'>
      <machine>pc-i686-only</machine>
      <domain type='xen'/>
    </arch>
  </guest>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <emulator>/usr/bin/qemu-system-x86_64</emulator>
      <machine maxCpus='288'>pc-q35-7.2</machine>
      <machine canonical='pc-q35-7.2' maxCpus='288'>q35</machine>
      <machine>pc-i440fx-7.2</machine>
      <domain type='qemu'/>
    </arch>
  </guest>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <machine>pc-q35-7.2</machine>
      <domain type='kvm'>
        <emulator>/usr/libexec/qemu-kvm</emulator>
        <machine canonical='pc-i440fx-rhel9'>pc</machine>
      </domain>
    </arch>
  </guest>
</capabilities>`;

t.test('parseCapabilitiesXml reads uuid, cpu model/vendor, deduplicated flags, topology and NUMA cells', async (t) => {
  const p = parseCapabilitiesXml(XML);
  t.equal(p.uuid, '11111111-2222-3333-4444-555555555555');
  t.equal(p.cpuArch, 'x86_64');
  t.equal(p.cpuModel, 'Skylake-Client-IBRS');
  t.equal(p.cpuVendor, 'Intel');
  t.strictSame(p.cpuFlags, ['vmx', 'ds'], 'feature names in libvirt order, each once');
  t.strictSame(p.topology, { sockets: 1, dies: 1, cores: 2, threads: 2 });
  t.strictSame(p.cells.map((c) => [c.id, c.memoryMiB, c.cpus.map((x) => x.id)]),
    [['0', 4096, [0, 2, 1, 3]], ['1', 2048, [4, 6, 5, 7]]], 'memory converted from KiB and GiB to MiB');
  t.strictSame(p.cells[1]?.cpus[3], { id: 7 }, 'an offline CPU has only its id');
});

t.test('parseCapabilitiesXml offers the domain types and machines of every x86_64 guest only, deduplicated and sorted', async (t) => {
  const p = parseCapabilitiesXml(XML);
  t.strictSame(p.domainTypes, ['kvm', 'qemu'], "the i686 guest's xen is not offered for x86_64");
  t.strictSame(p.emulatedMachines, ['pc', 'pc-i440fx-7.2', 'pc-i440fx-rhel9', 'pc-q35-7.2', 'q35'],
    'machine names and canonical names, per-arch and per-domain, once each');
  t.strictSame(parseCapabilitiesXml(XML, 'i686').domainTypes, ['xen'], 'another guest arch can be asked for');
});

t.test('cpuTotals counts sockets, physical cores and online threads over all NUMA cells', async (t) => {
  t.strictSame(cpuTotals(parseCapabilitiesXml(XML)), { sockets: 2, cores: 4, threads: 7 });
});

t.test('cpuTotals multiplies out the topology when the cells list no CPU placement', async (t) => {
  const xml = `<capabilities><host><uuid>u</uuid><cpu><topology sockets='2' dies='1' cores='4' threads='2'/></cpu>
    <topology><cells num='2'><cell id='0'><memory unit='KiB'>1024</memory></cell><cell id='1'/></cells></topology>
    </host></capabilities>`;
  t.strictSame(cpuTotals(parseCapabilitiesXml(xml)), { sockets: 4, cores: 16, threads: 32 }, 'libvirt topology sockets are per NUMA node');
});

t.test('parseCapabilitiesXml of a host without guests offers no domain types and no machines', async (t) => {
  const p = parseCapabilitiesXml('<capabilities><host><uuid>u</uuid><cpu><arch>x86_64</arch></cpu></host></capabilities>');
  t.strictSame([p.domainTypes, p.emulatedMachines, p.cpuFlags, p.cells], [[], [], [], []]);
  t.strictSame(p.topology, { sockets: 1, dies: 1, cores: 1, threads: 1 });
  t.throws(() => parseCapabilitiesXml('<capabilities/>'), /no <host>/);
});

t.test('formatLibvirtVersion turns major*1e6+minor*1e3+micro into "major.minor.micro"', async (t) => {
  t.equal(formatLibvirtVersion(9_000_000), '9.0.0');
  t.equal(formatLibvirtVersion(7_002_022), '7.2.22');
  t.equal(formatLibvirtVersion(10_010_001), '10.10.1');
  t.throws(() => formatLibvirtVersion(-1));
  t.throws(() => formatLibvirtVersion(1.5));
});

t.test('toMiB converts libvirt scaled sizes (KiB by default) to whole MiB', async (t) => {
  t.equal(toMiB('6252760'), 6106);
  t.equal(toMiB('1', 'GiB'), 1024);
  t.equal(toMiB('1048576', 'bytes'), 1);
  t.throws(() => toMiB('x'), /unparsable/);
  t.throws(() => toMiB('1', 'furlongs'), /unparsable/);
});

t.test('hostCapabilities assembles totals, MiB sizes, versions, and kvmEnabled only when /dev/kvm exists', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-caps-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kvm = join(dir, 'kvm');
  writeFileSync(kvm, '');
  const stub = {
    capabilities: async () => XML,
    hostname: async () => 'host1.example',
    nodeInfo: async () => ({ model: 'x86_64', memoryKiB: 6_252_760, cpus: 7, mhz: 2000, nodes: 2, sockets: 1, cores: 2, threads: 2 }),
    versions: async () => ({ hypervisor: 7_002_022, libvirt: 9_000_000, type: 'QEMU' }),
  } as unknown as Connection;
  const caps = await hostCapabilities(stub, { softwareVersion: '0.1.0', defaultDomainType: 'kvm', kvmDevice: kvm });
  t.strictSame(caps, {
    uuid: '11111111-2222-3333-4444-555555555555',
    hostname: 'host1.example',
    cpuModel: 'Skylake-Client-IBRS',
    cpuVendor: 'Intel',
    cpuFlags: ['vmx', 'ds'],
    cpuSockets: 2, cpuCores: 4, cpuThreads: 7,
    cpuTopology: { sockets: 2, dies: 1, cores: 2, threads: 2 },
    onlineCpus: 7,
    memSize: 6106,
    numaNodes: { 0: { cpus: [0, 1, 2, 3], totalMemory: 4096 }, 1: { cpus: [4, 5, 6, 7], totalMemory: 2048 } },
    kvmEnabled: true,
    domainTypes: ['kvm', 'qemu'],
    defaultDomainType: 'kvm',
    emulatedMachines: ['pc', 'pc-i440fx-7.2', 'pc-i440fx-rhel9', 'pc-q35-7.2', 'q35'],
    libvirtVersion: '9.0.0',
    qemuVersion: '7.2.22',
    software_version: '0.1.0',
  });
  const noKvm = await hostCapabilities(stub, { softwareVersion: '0.1.0', defaultDomainType: 'qemu', kvmDevice: join(dir, 'absent') });
  t.equal(noKvm.kvmEnabled, false, 'kvm offered by libvirt but no device node: not enabled');
});

const execFileP = promisify(execFile);

t.test('capabilitiesWithNetworks refuses with 1001 (libvirtUnavailable) while libvirt is not connected, without reading the networks', async (t) => {
  let networkReads = 0;
  const err = await capabilitiesWithNetworks(
    () => { throw new Error('not connected'); },
    { capabilities: async () => { networkReads++; return {} as never; } },
    { softwareVersion: '0.1.0', defaultDomainType: 'qemu' },
  ).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof HostvisorError && err.code === 1001, `error 1001 (${String(err)})`);
  t.equal((err as Error).cause instanceof Error && ((err as Error).cause as Error).message, 'not connected', 'the cause is kept');
  t.equal(networkReads, 0);
});

t.test('on the real libvirtd, hostCapabilities reports a sane host consistent with nodeInfo and virsh', async (t) => {
  // libvirtd is part of the lab: failing to reach it is a failure, not a skip.
  const conn = await Connection.open('qemu:///system', { callTimeoutMs: 30_000 });
  t.teardown(() => conn.close());
  // The agent folds in the host's network capabilities (read-only here) and its hook inventory.
  const networks = new HostNetworks({ store: new NetConfStore(scratchDir('hv-netconf-')) });
  const [caps, nodeInfo, net] = await Promise.all([
    capabilitiesWithNetworks(() => conn, networks, { softwareVersion: '0.1.0', defaultDomainType: 'qemu' }), conn.nodeInfo(), networks.capabilities(),
  ]);
  t.same(Object.keys(net).filter((k) => !(k in caps)), [], 'every network capability is merged in');
  t.same(caps.nics, net.nics, 'the nics as the host networks report them');
  const full = { ...caps, hooks: {} };
  t.ok(Value.Check(Methods['Host.getCapabilities'].result, full),
    `the result (with the networks and hook inventory the agent adds) matches the API schema ${JSON.stringify([...Value.Errors(Methods['Host.getCapabilities'].result, full)].slice(0, 3).map((e) => `${e.path}: ${e.message}`))}`);
  t.match(caps.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'uuid is a UUID');
  t.ok(caps.hostname.length > 0, 'hostname is not empty');
  t.ok(caps.cpuModel.length > 0 && caps.cpuVendor.length > 0, `cpu ${caps.cpuVendor} ${caps.cpuModel}`);
  t.ok(caps.cpuFlags.length > 0, `${caps.cpuFlags.length} cpu flags`);
  t.equal(caps.onlineCpus, nodeInfo.cpus);
  t.equal(caps.cpuThreads, nodeInfo.cpus, 'logical CPUs counted from the NUMA cells match nodeInfo');
  t.ok(caps.cpuSockets >= 1 && caps.cpuSockets <= caps.cpuCores && caps.cpuCores <= caps.cpuThreads,
    `1 <= sockets ${caps.cpuSockets} <= cores ${caps.cpuCores} <= threads ${caps.cpuThreads}`);
  const numaCpus = Object.values(caps.numaNodes).flatMap((n) => n.cpus);
  t.equal(new Set(numaCpus).size, numaCpus.length, 'no CPU in two NUMA cells');
  t.ok(numaCpus.length >= nodeInfo.cpus, 'every online CPU is in a NUMA cell');
  t.equal(caps.memSize, Math.floor(nodeInfo.memoryKiB / 1024));
  const numaMem = Object.values(caps.numaNodes).reduce((s, n) => s + n.totalMemory, 0);
  t.ok(numaMem > 0 && numaMem <= caps.memSize + Object.keys(caps.numaNodes).length,
    `NUMA memory ${numaMem} MiB adds up to at most memSize ${caps.memSize} MiB`);
  t.ok(caps.domainTypes.includes('qemu'), `domain types ${caps.domainTypes.join(',')} include qemu`);
  t.ok(caps.emulatedMachines.length > 0, `${caps.emulatedMachines.length} machine types`);
  t.strictSame(caps.emulatedMachines, [...new Set(caps.emulatedMachines)].sort(), 'machines sorted and unique');
  t.equal(caps.kvmEnabled, caps.domainTypes.includes('kvm') && existsSync('/dev/kvm'));

  const { stdout } = await execFileP('virsh', ['-c', 'qemu:///system', 'version'], { timeout: 30_000 });
  t.equal(caps.libvirtVersion, /Using library: libvirt (\S+)/.exec(stdout)?.[1], 'libvirtVersion as virsh reports it');
  t.equal(caps.qemuVersion, /Running hypervisor: QEMU (\S+)/.exec(stdout)?.[1], 'qemuVersion as virsh reports it');
});
