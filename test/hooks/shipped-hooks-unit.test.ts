// The hooks shipped in hooks/<name>/<hook point>/50_<name>, each run as a real
// process the way the agent runs it: /usr/bin/python3 <script>, with the
// domain XML in a temp file named by _hook_domxml, the custom property as an
// env var, vmId, and PYTHONPATH=hooks/lib. Checks the rewritten XML, that the
// XML is untouched without the property, that bad values fail with rc 2, and
// (when virt-xml-validate is installed) that the result is valid libvirt XML.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser } from 'fast-xml-parser';
import { isHookPoint } from '../../agent/hooks/points.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const HOOKS = join(REPO, 'hooks');
const PYTHON = '/usr/bin/python3'; // not the pyenv python3 on PATH
const VALIDATE = '/usr/bin/virt-xml-validate';
const VM_ID = '3f0c6a52-9d1e-4b7a-8c21-5e4d3c2b1a09';
const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';
const SHIPPED = ['qemu_cmdline', 'smbios', 'scratchpad', 'pincpu', 'hugepages'];
const PROPS = [...SHIPPED, 'HOSTVISOR_SCRATCH_DIR', '_hook_domxml', '_hook_json', '_hook_launchflags', 'vmId'];

// Shaped like the agent's own domain XML (agent/vm/domain-xml.ts).
const DOMAIN = `<domain type='kvm'><name>hooktest</name><uuid>${VM_ID}</uuid>`
  + `<metadata><hv:vm xmlns:hv="http://hostvisor.example/vm/1.0"><hv:owner>t</hv:owner></hv:vm></metadata>`
  + `<memory unit='MiB'>64</memory><vcpu>2</vcpu>`
  + `<os><type arch='x86_64' machine='pc'>hvm</type><boot dev="hd"/></os>`
  + '<features><acpi/></features><clock offset="utc"/>'
  + '<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>'
  + `<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none' io='native' error_policy='stop'/>`
  + `<source file='/var/lib/images/root.qcow2'/><target dev='vda' bus='virtio'/><alias name='ua-vda'/></disk>`
  + `<controller type='usb' model='none'/><serial type='pty'><target port='0'/></serial><memballoon model='none'/></devices>`
  + '</domain>';

type El = Record<string, unknown>;
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (_name, _jpath, _leaf, isAttribute) => !isAttribute,
});
function parse(xml: string): El {
  const doc = parser.parse(xml) as El;
  const dom = els(doc, 'domain')[0];
  if (!dom) throw new Error(`no <domain> in ${xml}`);
  return dom;
}
function els(node: El | undefined, name: string): El[] {
  const v = node?.[name];
  return Array.isArray(v) ? v.map((x) => (typeof x === 'object' && x ? (x as El) : { '#text': String(x) })) : [];
}
function el(node: El | undefined, ...path: string[]): El | undefined {
  let cur = node;
  for (const p of path) cur = els(cur, p)[0];
  return cur;
}
const at = (node: El | undefined, name: string) => node?.[`@${name}`] as string | undefined;
const txt = (node: El | undefined) => (node?.['#text'] === undefined ? '' : String(node['#text']));

interface Run { status: number | null; stderr: string; xml: string; file: string }

function newDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'hv-hooks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function script(name: string, point = 'before_vm_start'): string {
  return join(HOOKS, name, point, `50_${name}`);
}

/** Runs one script on `xml` (or on the file `file` when given). */
function runHook(t: Test, path: string, props: Record<string, string>, xml = DOMAIN, file?: string): Run {
  const target = file ?? join(newDir(t), 'domxml');
  if (!file) writeFileSync(target, xml);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of PROPS) delete env[k];
  Object.assign(env, { vmId: VM_ID, PYTHONPATH: join(HOOKS, 'lib'), PYTHONDONTWRITEBYTECODE: '1', _hook_domxml: target }, props);
  const res = spawnSync(PYTHON, [path], { env, encoding: 'utf8', timeout: 60_000 });
  if (res.error) throw res.error;
  return { status: res.status, stderr: res.stderr, xml: readFileSync(target, 'utf8'), file: target };
}

function validates(t: Test, xml: string, what: string): void {
  if (!existsSync(VALIDATE)) return;
  const f = join(newDir(t), 'v.xml');
  writeFileSync(f, xml);
  const res = spawnSync(VALIDATE, [f, 'domain'], { encoding: 'utf8' });
  t.equal(res.status, 0, `${what}: valid libvirt domain XML`, { stderr: res.stderr });
}

function unchangedWithout(t: Test, name: string, point = 'before_vm_start'): void {
  const none = runHook(t, script(name, point), {});
  t.equal(none.status, 0, 'rc 0 without the property');
  t.equal(none.xml, DOMAIN, 'XML byte-identical without the property');
  const blank = runHook(t, script(name, point), { [name]: '  ' });
  t.equal(blank.status, 0, 'rc 0 with an empty property');
  t.equal(blank.xml, DOMAIN, 'XML byte-identical with an empty property');
}

function refused(t: Test, name: string, value: string, message: RegExp, xml = DOMAIN): void {
  const r = runHook(t, script(name), { [name]: value }, xml);
  t.equal(r.status, 2, `${name}=${value}: rc 2`);
  t.match(r.stderr, message, `${name}=${value}: says why`);
  t.equal(r.xml, xml, `${name}=${value}: XML untouched`);
}

function onlineCpus(): number[] {
  const spec = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
  return spec.split(',').flatMap((p) => {
    const [lo, hi] = p.split('-').map(Number);
    return Array.from({ length: (hi ?? lo!) - lo! + 1 }, (_, i) => lo! + i);
  });
}

t.test('layout: every shipped hook has a README and executable 50_<name> scripts', async (t) => {
  const dirs = readdirSync(HOOKS, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== 'lib').map((d) => d.name);
  for (const name of SHIPPED) t.ok(dirs.includes(name), `hooks/${name} exists`);
  for (const name of dirs) {
    const readme = join(HOOKS, name, 'README.md');
    t.ok(existsSync(readme), `${name}: README.md`);
    if (existsSync(readme)) t.match(readFileSync(readme, 'utf8'), name, `${name}: README names its custom property`);
    const points = readdirSync(join(HOOKS, name), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    t.ok(points.length > 0, `${name}: has hook points`);
    for (const point of points) {
      t.ok(isHookPoint(point), `${name}/${point} is a hook point`);
      const files = readdirSync(join(HOOKS, name, point));
      t.same(files, [`50_${name}`], `${name}/${point}: one script, 50_${name}`);
      const path = join(HOOKS, name, point, `50_${name}`);
      if (!existsSync(path)) continue;
      const st = statSync(path);
      t.ok(st.isFile() && (st.mode & 0o111) === 0o111, `${name}/${point}: executable regular file`);
      t.ok((st.mode & 0o022) === 0, `${name}/${point}: not group/other writable (the agent refuses those)`);
      const src = readFileSync(path, 'utf8');
      t.ok(src.startsWith('#!/usr/bin/python3\n'), `${name}/${point}: #!/usr/bin/python3`);
      t.match(src, /^import hooking$/m, `${name}/${point}: imports hooking`);
      const compiled = spawnSync(PYTHON, ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read())', path], { encoding: 'utf8' });
      t.equal(compiled.status, 0, `${name}/${point}: parses`, { stderr: compiled.stderr });
    }
  }
});

t.test('the sample domain XML is valid to begin with', async (t) => {
  validates(t, DOMAIN, 'sample');
});

t.test('qemu_cmdline', async (t) => {
  t.test('absent or empty: nothing changes', async (t) => unchangedWithout(t, 'qemu_cmdline'));

  t.test('a JSON list becomes qemu:arg elements, in order, with the namespace on <domain>', async (t) => {
    const r = runHook(t, script('qemu_cmdline'), { qemu_cmdline: '["-global", "PIIX4_PM.disable_s3=1", "-set", "a=b c"]' });
    t.equal(r.status, 0, r.stderr);
    const dom = parse(r.xml);
    t.equal(at(dom, 'xmlns:qemu'), QEMU_NS);
    const cmd = els(dom, 'qemu:commandline');
    t.equal(cmd.length, 1);
    t.same(els(cmd[0], 'qemu:arg').map((a) => at(a, 'value')), ['-global', 'PIIX4_PM.disable_s3=1', '-set', 'a=b c']);
    t.equal(txt(el(dom, 'name')), 'hooktest', 'the rest is kept');
    t.equal(at(el(dom, 'metadata', 'hv:vm'), 'xmlns:hv'), 'http://hostvisor.example/vm/1.0', 'other namespaces are kept');
    validates(t, r.xml, 'qemu_cmdline');
  });

  t.test('an existing QEMU namespace (any prefix) and commandline are reused', async (t) => {
    const xml = DOMAIN.replace("<domain type='kvm'>", `<domain type='kvm' xmlns:q='${QEMU_NS}'>`)
      .replace('</domain>', "<q:commandline><q:arg value='-S'/></q:commandline></domain>");
    const r = runHook(t, script('qemu_cmdline'), { qemu_cmdline: '["-no-hpet"]' }, xml);
    t.equal(r.status, 0, r.stderr);
    const dom = parse(r.xml);
    t.equal(at(dom, 'xmlns:qemu'), undefined, 'no second declaration');
    t.equal(els(dom, 'q:commandline').length, 1, 'one commandline');
    t.same(els(el(dom, 'q:commandline'), 'q:arg').map((a) => at(a, 'value')), ['-S', '-no-hpet']);
    validates(t, r.xml, 'qemu_cmdline (existing)');
  });

  t.test('a namespace declared but no commandline yet; a taken qemu prefix', async (t) => {
    const declared = DOMAIN.replace("<domain type='kvm'>", `<domain type='kvm' xmlns:qemu='${QEMU_NS}'>`);
    const r1 = runHook(t, script('qemu_cmdline'), { qemu_cmdline: '["-S"]' }, declared);
    t.equal(r1.status, 0, r1.stderr);
    t.same(els(el(parse(r1.xml), 'qemu:commandline'), 'qemu:arg').map((a) => at(a, 'value')), ['-S']);
    const clash = DOMAIN.replace("<domain type='kvm'>", "<domain type='kvm' xmlns:qemu='urn:other'>");
    const r2 = runHook(t, script('qemu_cmdline'), { qemu_cmdline: '["-S"]' }, clash);
    t.equal(r2.status, 0, r2.stderr);
    const dom = parse(r2.xml);
    t.equal(at(dom, 'xmlns:qemu'), 'urn:other', 'the other binding is left alone');
    t.equal(at(dom, 'xmlns:qemu1'), QEMU_NS, 'a free prefix is used');
    t.same(els(el(dom, 'qemu1:commandline'), 'qemu1:arg').map((a) => at(a, 'value')), ['-S']);
  });

  t.test('bad values fail with rc 2', async (t) => {
    refused(t, 'qemu_cmdline', '-S', /not valid JSON/);
    refused(t, 'qemu_cmdline', '{"a":1}', /JSON list of strings/);
    refused(t, 'qemu_cmdline', '["-m", 5]', /JSON list of strings/);
  });
});

t.test('smbios', async (t) => {
  t.test('absent or empty: nothing changes', async (t) => unchangedWithout(t, 'smbios'));

  t.test('plain keys fill the system table; os/smbios mode is sysinfo', async (t) => {
    const r = runHook(t, script('smbios'), { smbios: '{"manufacturer":"ACME","product":"X","serial":"123"}' });
    t.equal(r.status, 0, r.stderr);
    const dom = parse(r.xml);
    const sysinfo = els(dom, 'sysinfo');
    t.equal(sysinfo.length, 1);
    t.equal(at(sysinfo[0], 'type'), 'smbios');
    const entries = els(el(sysinfo[0], 'system'), 'entry').map((e) => [at(e, 'name'), txt(e)]);
    t.same(entries, [['manufacturer', 'ACME'], ['product', 'X'], ['serial', '123']]);
    t.equal(at(el(dom, 'os', 'smbios'), 'mode'), 'sysinfo');
    t.equal(txt(el(dom, 'os', 'type')), 'hvm', 'the rest of <os> is kept');
    validates(t, r.xml, 'smbios');
  });

  t.test('tables, OEM strings, and merging into an existing sysinfo', async (t) => {
    const xml = DOMAIN.replace('<os>', "<sysinfo type='smbios'><system><entry name='manufacturer'>oVirt</entry>"
      + "<entry name='family'>KVM</entry></system></sysinfo><os>")
      .replace('<boot dev="hd"/>', '<boot dev="hd"/><smbios mode="host"/>');
    const r = runHook(t, script('smbios'), {
      smbios: JSON.stringify({ manufacturer: 'ACME', uuid: VM_ID.toUpperCase(), bios: { vendor: 'ACME BIOS', version: '1.2' }, baseBoard: { product: 'B1' }, chassis: { asset: 'A-7' }, oemStrings: ['env:prod', 'rack:4'] }),
    }, xml);
    t.equal(r.status, 0, r.stderr);
    const dom = parse(r.xml);
    t.equal(els(dom, 'sysinfo').length, 1, 'still one sysinfo');
    const sys = el(dom, 'sysinfo');
    const system = Object.fromEntries(els(el(sys, 'system'), 'entry').map((e) => [at(e, 'name'), txt(e)]));
    t.same(system, { manufacturer: 'ACME', family: 'KVM', uuid: VM_ID.toUpperCase() }, 'replaced, kept, added');
    t.same(els(el(sys, 'bios'), 'entry').map((e) => [at(e, 'name'), txt(e)]), [['vendor', 'ACME BIOS'], ['version', '1.2']]);
    t.same(els(el(sys, 'baseBoard'), 'entry').map((e) => [at(e, 'name'), txt(e)]), [['product', 'B1']]);
    t.same(els(el(sys, 'chassis'), 'entry').map((e) => [at(e, 'name'), txt(e)]), [['asset', 'A-7']]);
    t.same(els(el(sys, 'oemStrings'), 'entry').map(txt), ['env:prod', 'rack:4']);
    t.equal(els(el(dom, 'os'), 'smbios').length, 1);
    t.equal(at(el(dom, 'os', 'smbios'), 'mode'), 'sysinfo', 'mode switched to sysinfo');
    t.ok(r.xml.indexOf('<bios>') < r.xml.indexOf('<system>') && r.xml.indexOf('<system>') < r.xml.indexOf('<baseBoard>'), 'libvirt order');
    validates(t, r.xml, 'smbios (merged)');
  });

  t.test('text is escaped, not injected', async (t) => {
    const r = runHook(t, script('smbios'), { smbios: '{"product":"<x> & \\"y\\""}' });
    t.equal(r.status, 0, r.stderr);
    t.equal(txt(el(parse(r.xml), 'sysinfo', 'system', 'entry')).replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"'), '<x> & "y"');
    validates(t, r.xml, 'smbios (escaped)');
  });

  t.test('bad values fail with rc 2', async (t) => {
    refused(t, 'smbios', 'ACME', /not valid JSON/);
    refused(t, 'smbios', '["a"]', /JSON object/);
    refused(t, 'smbios', '{"colour":"red"}', /unknown key/);
    refused(t, 'smbios', '{"bios":{"serial":"1"}}', /unknown bios entry/);
    refused(t, 'smbios', '{"serial":{"a":1}}', /must be a string/);
    refused(t, 'smbios', '{"uuid":"00000000-0000-4000-8000-000000000000"}', /must equal the domain uuid/);
  });
});

t.test('pincpu', async (t) => {
  const cpus = onlineCpus();
  const first = cpus[0]!;
  const second = cpus[1];

  t.test('absent or empty: nothing changes', async (t) => unchangedWithout(t, 'pincpu'));

  t.test('one cpuset pins every vCPU', async (t) => {
    const r = runHook(t, script('pincpu'), { pincpu: String(first) });
    t.equal(r.status, 0, r.stderr);
    const pins = els(el(parse(r.xml), 'cputune'), 'vcpupin').map((p) => [at(p, 'vcpu'), at(p, 'cpuset')]);
    t.same(pins, [['0', String(first)], ['1', String(first)]]);
    validates(t, r.xml, 'pincpu');
  });

  t.test('ranges and lists', { skip: second === undefined ? 'needs two online CPUs' : false }, async (t) => {
    for (const spec of [`${first}-${second}`, `${first},${second}`, `${first}-${second},^${second}`]) {
      const r = runHook(t, script('pincpu'), { pincpu: spec });
      t.equal(r.status, 0, r.stderr);
      t.same(els(el(parse(r.xml), 'cputune'), 'vcpupin').map((p) => at(p, 'cpuset')), [spec, spec], spec);
    }
  });

  t.test("per-vCPU pinning in oVirt's vcpu#cpuset_... form", async (t) => {
    const other = second ?? first;
    const r = runHook(t, script('pincpu'), { pincpu: `1#${other}_0#${first}` });
    t.equal(r.status, 0, r.stderr);
    const pins = els(el(parse(r.xml), 'cputune'), 'vcpupin').map((p) => [at(p, 'vcpu'), at(p, 'cpuset')]);
    t.same(pins, [['0', String(first)], ['1', String(other)]]);
    validates(t, r.xml, 'pincpu (per vCPU)');
  });

  t.test('an existing cputune keeps its other settings', async (t) => {
    const xml = DOMAIN.replace('<os>', "<cputune><vcpupin vcpu='0' cpuset='9'/><shares>2048</shares><emulatorpin cpuset='0'/></cputune><os>");
    const r = runHook(t, script('pincpu'), { pincpu: `0#${first}` }, xml);
    t.equal(r.status, 0, r.stderr);
    const dom = parse(r.xml);
    t.equal(els(dom, 'cputune').length, 1);
    const tune = el(dom, 'cputune');
    t.same(els(tune, 'vcpupin').map((p) => [at(p, 'vcpu'), at(p, 'cpuset')]), [['0', String(first)]], 'the old pin of vCPU 0 is replaced');
    t.equal(txt(el(tune, 'shares')), '2048');
    t.equal(at(el(tune, 'emulatorpin'), 'cpuset'), '0');
    validates(t, r.xml, 'pincpu (existing cputune)');
  });

  t.test('bad values fail with rc 2', async (t) => {
    refused(t, 'pincpu', 'a-b', /bad cpuset/);
    refused(t, 'pincpu', '3-1', /bad cpuset/);
    refused(t, 'pincpu', '0,^0', /names no CPU/);
    refused(t, 'pincpu', '5#0', /vCPU 5 does not exist/);
    refused(t, 'pincpu', '0:1', /bad cpuset/);
    refused(t, 'pincpu', '99999', /not online/);
  });
});

t.test('scratchpad', async (t) => {
  const qemuImg = (file: string) => JSON.parse(spawnSync('qemu-img', ['info', '--output=json', '-U', file], { encoding: 'utf8' }).stdout) as { format: string; 'virtual-size': number };

  t.test('absent or empty: nothing changes and no directory is made', async (t) => {
    const scratch = join(newDir(t), 'scratch');
    for (const value of [undefined, '']) {
      const r = runHook(t, script('scratchpad'), { HOSTVISOR_SCRATCH_DIR: scratch, ...(value === undefined ? {} : { scratchpad: value }) });
      t.equal(r.status, 0, r.stderr);
      t.equal(r.xml, DOMAIN);
    }
    t.notOk(existsSync(scratch));
  });

  t.test('creates qcow2 images and adds them on free vdX targets', async (t) => {
    const scratch = join(newDir(t), 'scratch');
    const xml = DOMAIN.replace('<controller', "<disk type='file' device='disk'><source file='/x/b.qcow2'/><target dev='vdc' bus='virtio'/></disk>"
      + "<disk type='file' device='cdrom'><source file='/x/c.iso'/><target dev='sda' bus='sata'/><readonly/></disk><controller");
    const r = runHook(t, script('scratchpad'), { scratchpad: '64M, 1g,512k', HOSTVISOR_SCRATCH_DIR: scratch }, xml);
    t.equal(r.status, 0, r.stderr);
    const disks = els(el(parse(r.xml), 'devices'), 'disk');
    t.same(disks.map((d) => at(el(d, 'target'), 'dev')), ['vda', 'vdc', 'sda', 'vdb', 'vdd', 'vde'], 'gaps filled first, never a used target');
    const added = disks.slice(3);
    const dir = join(scratch, VM_ID);
    t.same(added.map((d) => at(el(d, 'source'), 'file')), [0, 1, 2].map((n) => join(dir, `scratchpad${n}.qcow2`)));
    for (const d of added) {
      t.equal(at(d, 'type'), 'file');
      t.equal(at(d, 'device'), 'disk');
      t.equal(at(el(d, 'driver'), 'type'), 'qcow2');
      t.equal(at(el(d, 'target'), 'bus'), 'virtio');
    }
    t.same(added.map((d) => at(el(d, 'alias'), 'name')), ['ua-scratchpad0', 'ua-scratchpad1', 'ua-scratchpad2']);
    t.same([0, 1, 2].map((n) => qemuImg(join(dir, `scratchpad${n}.qcow2`))).map((i) => [i.format, i['virtual-size']]),
      [['qcow2', 64 << 20], ['qcow2', 1 << 30], ['qcow2', 512 << 10]], 'images have the asked sizes');
    validates(t, r.xml, 'scratchpad');

    // The same XML through the hook again (a restart with the saved XML):
    // no second copy of the disks, and the images are fresh.
    writeFileSync(join(dir, 'scratchpad0.qcow2'), 'junk');
    const again = runHook(t, script('scratchpad'), { scratchpad: '64M,1G,512K', HOSTVISOR_SCRATCH_DIR: scratch }, r.xml);
    t.equal(again.status, 0, again.stderr);
    t.equal(els(el(parse(again.xml), 'devices'), 'disk').length, 6, 'no duplicate disks');
    t.equal(qemuImg(join(dir, 'scratchpad0.qcow2')).format, 'qcow2', 'image recreated');
  });

  t.test('targets run past vdz to vdaa', async (t) => {
    const scratch = join(newDir(t), 'scratch');
    const many = Array.from({ length: 26 }, (_, i) => `<disk type='file' device='disk'><source file='/x/${i}'/><target dev='vd${String.fromCharCode(97 + i)}' bus='virtio'/></disk>`).join('');
    const xml = DOMAIN.replace(/<disk[\s\S]*<\/disk>/, many);
    const r = runHook(t, script('scratchpad'), { scratchpad: '1M', HOSTVISOR_SCRATCH_DIR: scratch }, xml);
    t.equal(r.status, 0, r.stderr);
    t.equal(at(el(els(el(parse(r.xml), 'devices'), 'disk')[26], 'target'), 'dev'), 'vdaa');
  });

  t.test('bad sizes fail with rc 2 and create nothing', async (t) => {
    const scratch = join(newDir(t), 'scratch');
    for (const bad of ['64X', '0', '-1M', '64M,,1G', '1.5G']) {
      const r = runHook(t, script('scratchpad'), { scratchpad: bad, HOSTVISOR_SCRATCH_DIR: scratch });
      t.equal(r.status, 2, `${bad}: rc 2`);
      t.match(r.stderr, /bad size/);
      t.equal(r.xml, DOMAIN);
    }
    t.notOk(existsSync(scratch));
  });

  t.test('an unusable scratch dir or a qemu-img failure fails the hook', async (t) => {
    const dir = newDir(t);
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    const r = runHook(t, script('scratchpad'), { scratchpad: '1M', HOSTVISOR_SCRATCH_DIR: file });
    t.equal(r.status, 2);
    t.match(r.stderr, /scratchpad: cannot create/);
    t.equal(r.xml, DOMAIN);
    const huge = runHook(t, script('scratchpad'), { scratchpad: '99999999T', HOSTVISOR_SCRATCH_DIR: join(dir, 'scratch') });
    t.equal(huge.status, 2);
    t.match(huge.stderr, /qemu-img create .* failed/);
    t.equal(huge.xml, DOMAIN);
  });

  t.test('after_vm_destroy deletes only this VM\'s images', async (t) => {
    const scratch = join(newDir(t), 'scratch');
    const start = runHook(t, script('scratchpad'), { scratchpad: '1M,2M', HOSTVISOR_SCRATCH_DIR: scratch });
    t.equal(start.status, 0, start.stderr);
    const other = join(scratch, '11111111-2222-4333-8444-555555555555');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'scratchpad0.qcow2'), 'x');
    const destroy = runHook(t, script('scratchpad', 'after_vm_destroy'), { scratchpad: '1M,2M', HOSTVISOR_SCRATCH_DIR: scratch }, start.xml);
    t.equal(destroy.status, 0, destroy.stderr);
    t.equal(destroy.xml, start.xml, 'XML untouched');
    t.notOk(existsSync(join(scratch, VM_ID)), 'the VM\'s scratch dir is gone');
    t.ok(existsSync(join(other, 'scratchpad0.qcow2')), 'another VM\'s image is kept');
    const again = runHook(t, script('scratchpad', 'after_vm_destroy'), { scratchpad: '1M', HOSTVISOR_SCRATCH_DIR: scratch });
    t.equal(again.status, 0, 'nothing to delete is fine');
    const none = runHook(t, script('scratchpad', 'after_vm_destroy'), { HOSTVISOR_SCRATCH_DIR: scratch });
    t.equal(none.status, 0);
    t.equal(none.xml, DOMAIN);
  });

  t.test('after_vm_destroy keeps files it did not make', async (t) => {
    const scratch = join(newDir(t), 'scratch');
    const dir = join(scratch, VM_ID);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'scratchpad0.qcow2'), 'x');
    writeFileSync(join(dir, 'notes.txt'), 'keep');
    const r = runHook(t, script('scratchpad', 'after_vm_destroy'), { scratchpad: '1M', HOSTVISOR_SCRATCH_DIR: scratch });
    t.equal(r.status, 0, r.stderr);
    t.notOk(existsSync(join(dir, 'scratchpad0.qcow2')));
    t.ok(existsSync(join(dir, 'notes.txt')));
  });
});

t.test('hugepages', async (t) => {
  const sizes = existsSync('/sys/kernel/mm/hugepages') ? readdirSync('/sys/kernel/mm/hugepages').map((d) => Number(/(\d+)kB/.exec(d)?.[1])) : [];
  const defaultKiB = Number(/Hugepagesize:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);

  t.test('absent, empty or false: nothing changes', async (t) => {
    unchangedWithout(t, 'hugepages');
    const off = runHook(t, script('hugepages'), { hugepages: 'false' });
    t.equal(off.xml, DOMAIN);
  });

  t.test('a page size becomes memoryBacking/hugepages/page', { skip: sizes.length ? false : 'no huge page support' }, async (t) => {
    const xml = DOMAIN.replace('<os>', "<memoryBacking><hugepages/><access mode='shared'/></memoryBacking><os>");
    const forms: [string, number][] = [[String(defaultKiB), defaultKiB], ['true', defaultKiB], [`${defaultKiB / 1024}M`, defaultKiB]];
    for (const [value, kib] of forms) {
      const r = runHook(t, script('hugepages'), { hugepages: value }, xml);
      t.equal(r.status, 0, r.stderr);
      const dom = parse(r.xml);
      t.equal(els(dom, 'memoryBacking').length, 1);
      const backing = el(dom, 'memoryBacking');
      t.equal(els(backing, 'hugepages').length, 1, `${value}: one hugepages`);
      t.same([at(el(backing, 'hugepages', 'page'), 'size'), at(el(backing, 'hugepages', 'page'), 'unit')], [String(kib), 'KiB'], value);
      t.equal(at(el(backing, 'access'), 'mode'), 'shared', 'other backing settings kept');
      validates(t, r.xml, `hugepages=${value}`);
    }
  });

  t.test('bad values fail with rc 2', async (t) => {
    refused(t, 'hugepages', 'lots', /bad page size/);
    if (sizes.length) refused(t, 'hugepages', '3M', /no 3072 KiB huge pages/);
  });
});

t.test('all hooks chained on one file, as the agent runs a hook point', async (t) => {
  const scratch = join(newDir(t), 'scratch');
  const file = join(newDir(t), 'domxml');
  writeFileSync(file, DOMAIN);
  const props = {
    qemu_cmdline: '["-no-user-config"]',
    smbios: '{"manufacturer":"ACME"}',
    pincpu: String(onlineCpus()[0]),
    scratchpad: '16M',
    HOSTVISOR_SCRATCH_DIR: scratch,
  };
  // sorted by path, like the agent: each hook's script on the same file
  for (const name of ['pincpu', 'qemu_cmdline', 'scratchpad', 'smbios']) {
    const r = runHook(t, script(name), props, undefined, file);
    t.equal(r.status, 0, `${name}: ${r.stderr}`);
  }
  const xml = readFileSync(file, 'utf8');
  const dom = parse(xml);
  t.ok(el(dom, 'qemu:commandline') && el(dom, 'sysinfo') && el(dom, 'cputune'), 'every hook left its mark');
  t.equal(els(el(dom, 'devices'), 'disk').length, 2);
  t.equal(txt(el(dom, 'uuid')), VM_ID, 'the uuid is unchanged');
  validates(t, xml, 'chained');
  const destroy = runHook(t, script('scratchpad', 'after_vm_destroy'), props, undefined, file);
  t.equal(destroy.status, 0);
  t.notOk(existsSync(join(scratch, VM_ID)));
});
