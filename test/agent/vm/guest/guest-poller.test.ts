// The guest agent poller's rules, with a scripted domain and clock: VDSM's periods per category,
// everything at each poll right after the agent connects, a late call dropped at its timeout and
// the VM then left alone for the throttle interval, never two calls at once on one VM (a hung
// agent holds one thread), and libvirt's flat keys turned into VDSM's fields.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { GuestPoller, type GuestDomain } from '../../../../agent/vm/guest/guest-poller.js';
import { dueCategories, type GuestCategory } from '../../../../agent/vm/guest/schedule.js';
import { fromInterfaceAddresses, parseDisks, parseFilesystems, parseOs, parseUsers } from '../../../../agent/vm/guest/guest-info-parse.js';
import { agentChannelState } from '../../../../agent/vm/guest/channel-state.js';
import { silentLogger } from '../../../../agent/log.js';
import { enums } from '../../../../agent/libvirt/index.js';

const SCHEDULE = { pollMs: 5_000, usersMs: 10_000, sysinfoMs: 120_000, diskInfoMs: 300_000, initialWindowMs: 120_000 };
const VM = '6b1c6b3e-3f0e-4c52-9a70-0f4c0e6f1a11';
const G = enums.DomainGuestInfoTypes;

t.test("VDSM's periods: all at each poll in the first 120 s, then users 10 s, sysinfo 120 s, disks 300 s", async (t) => {
  const all: GuestCategory[] = ['users', 'hostname', 'os', 'timezone', 'interfaces', 'filesystems', 'disks'];
  t.same(dueCategories(119_000, 0, new Map(all.map((c) => [c, 118_000])), SCHEDULE), all, 'within the window: everything, even just asked');
  const last = new Map<GuestCategory, number>(all.map((c) => [c, 200_000]));
  t.same(dueCategories(205_000, 0, last, SCHEDULE), [], '5 s later: nothing');
  t.same(dueCategories(210_000, 0, last, SCHEDULE), ['users'], '10 s: users');
  t.same(dueCategories(320_000, 0, last, SCHEDULE), ['users', 'hostname', 'os', 'timezone', 'interfaces'], '120 s: users and sysinfo');
  t.same(dueCategories(500_000, 0, last, SCHEDULE), all, '300 s: disks and file systems too');
  t.same(dueCategories(500_000, 0, new Map(), SCHEDULE), all, 'never answered: due');
});

/** A domain whose calls answer as scripted; counts calls and how many run at once. */
function fakeDomain(answer: (types: number) => Promise<Record<string, string | number | boolean>>) {
  const calls: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const track = async <T>(what: string, p: () => Promise<T>): Promise<T> => {
    calls.push(what);
    running++;
    maxRunning = Math.max(maxRunning, running);
    try { return await p(); } finally { running--; }
  };
  const dom: GuestDomain = {
    guestInfo: (types) => track(`info:${types}`, () => answer(types)),
    interfaceAddresses: () => track('ifaces', async () => [{ name: 'eth0', hwaddr: '52:54:00:00:00:01', addrs: [{ type: 0, addr: '10.250.1.2', prefix: 24 }, { type: 1, addr: 'fe80::1', prefix: 64 }] }]),
    xml: async () => "<domain><devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0' state='connected'/></channel></devices></domain>",
  };
  return { dom, calls, maxRunning: () => maxRunning };
}

function poller(dom: GuestDomain, clock: { now: number }, callTimeoutMs = 50) {
  let listener: (vmId: string, state: number, reason: number) => void = () => {};
  const p = new GuestPoller({
    schedule: SCHEDULE, callTimeoutMs, throttleMs: 60_000,
    vms: () => [{ id: VM, running: true, hasGuestAgent: true }],
    domain: async () => dom,
    subscribe: async (l) => { listener = l; },
    log: silentLogger, now: () => clock.now,
  });
  return { p, event: (state: number) => listener(VM, state, 2) };
}

const settle = () => sleep(20);

t.test('a connect event polls every category; the answers become VDSM fields; disconnect is an agent event', async (t) => {
  const answers: Record<number, Record<string, string>> = {
    [G.HOSTNAME]: { hostname: 'g1' },
    [G.OS]: { 'os.id': 'debian', 'os.name': 'Debian', 'os.kernel-release': '6.1.0', 'os.machine': 'x86_64', 'os.version-id': '12' },
  };
  const f = fakeDomain(async (types) => answers[types] ?? {});
  const clock = { now: 1_000 };
  const { p, event } = poller(f.dom, clock);
  const seen: [string, boolean][] = [];
  p.on('agent', (vm, c) => seen.push([vm, c]));
  await p.start();
  t.teardown(() => p.stop());
  event(enums.ConnectDomainEventAgentLifecycleState.CONNECTED);
  await settle();
  t.equal(f.calls.length, 7, 'one call per category');
  const info = p.info(VM);
  t.match(info, { guestAgentConnected: true, guestFQDN: 'g1', guestOs: '6.1.0', guestIPs: '10.250.1.2' }, 'link-local addresses are not guest IPs');
  t.match(info.guestOsInfo, { distribution: 'Debian', version: '12', arch: 'x86_64', type: 'linux' });
  event(enums.ConnectDomainEventAgentLifecycleState.DISCONNECTED);
  t.same(seen, [[VM, true], [VM, false]], 'connect and disconnect events');
  t.equal(p.info(VM).guestAgentConnected, false);
  const before = f.calls.length;
  clock.now += 200_000;
  p.tick();
  await settle();
  t.equal(f.calls.length, before, 'a disconnected agent is not asked');
});

t.test('a late call is dropped at its timeout, the VM skipped for the throttle interval, and never two calls at once', async (t) => {
  let release: () => void = () => {};
  const hung = new Promise<Record<string, string>>((resolve) => { release = () => resolve({ hostname: 'late' }); });
  const f = fakeDomain(() => hung);
  const clock = { now: 0 };
  const { p, event } = poller(f.dom, clock, 50);
  await p.start();
  t.teardown(() => p.stop());
  const t0 = performance.now();
  event(enums.ConnectDomainEventAgentLifecycleState.CONNECTED);
  await sleep(120);
  t.equal(f.calls.length, 1, 'the round stopped at the call that did not answer');
  t.ok(performance.now() - t0 < 1000, 'given up after its timeout');
  t.equal(p.info(VM).guestFQDN, undefined, 'nothing from a late call');
  clock.now += 61_000; // past the throttle, but the hung call still holds its thread
  p.tick();
  await settle();
  t.equal(f.calls.length, 1, 'no second call while the first has not ended');
  release();
  await settle();
  t.equal(p.info(VM).guestFQDN, undefined, 'the late answer is not used');
  clock.now += 1_000;
  p.tick();
  await settle();
  t.ok(f.calls.length > 1, 'asked again once the call ended and the throttle passed');
  t.equal(f.maxRunning(), 1, 'at most one call at a time');
});

t.test('a failing call skips the VM for 60 s', async (t) => {
  const f = fakeDomain(async () => { throw new Error('Guest agent is not responding'); });
  const clock = { now: 0 };
  const { p, event } = poller(f.dom, clock);
  await p.start();
  t.teardown(() => p.stop());
  event(enums.ConnectDomainEventAgentLifecycleState.CONNECTED);
  await settle();
  t.equal(f.calls.length, 1, 'the round stops at the failure');
  clock.now += 59_000;
  p.tick();
  await settle();
  t.equal(f.calls.length, 1, 'skipped within 60 s');
  clock.now += 2_000;
  p.tick();
  await settle();
  t.equal(f.calls.length, 2, 'asked again after 60 s');
});

t.test('a VM found running learns its agent state from the live XML', async (t) => {
  const f = fakeDomain(async () => ({}));
  const { p } = poller(f.dom, { now: 0 });
  p.tick();
  await settle();
  t.equal(p.info(VM).guestAgentConnected, true);
  t.equal(agentChannelState("<domain><devices><channel><target name='org.qemu.guest_agent.0' state='disconnected'/></channel></devices></domain>"), 'disconnected');
  t.equal(agentChannelState('<domain><devices/></domain>'), undefined, 'no channel: unknown');
});

t.test("libvirt's flat keys to VDSM's fields", async (t) => {
  t.same(parseUsers({ 'user.count': 2, 'user.0.name': 'root', 'user.1.name': 'bob', 'user.1.domain': 'CORP' }), { username: 'root,bob@CORP' });
  t.same(parseFilesystems({ 'fs.count': 2, 'fs.0.mountpoint': '/', 'fs.0.fstype': 'ext4', 'fs.0.total-bytes': 1000, 'fs.0.used-bytes': 10, 'fs.1.mountpoint': '/proc', 'fs.1.fstype': 'proc' }),
    { disksUsage: [{ path: '/', fs: 'ext4', total: 1000, used: 10 }] }, 'a file system without sizes is left out');
  t.same(parseDisks({ 'disk.count': 2, 'disk.0.name': '/dev/vda', 'disk.0.serial': 'S1', 'disk.0.partition': false, 'disk.1.name': '/dev/vda1', 'disk.1.serial': 'S1', 'disk.1.partition': true }),
    { guestDiskMapping: { S1: { name: '/dev/vda' } } }, 'partitions are not disks');
  t.same(parseOs({ 'os.id': 'mswindows', 'os.kernel-release': '19041' }).guestOsInfo?.type, 'windows');
  t.same(fromInterfaceAddresses([{ name: 'lo', hwaddr: '00:00:00:00:00:00', addrs: [{ type: 0, addr: '127.0.0.1', prefix: 8 }, { type: 1, addr: '::1', prefix: 128 }] }]),
    { netIfaces: [{ name: 'lo', hw: '00:00:00:00:00:00', inet: ['127.0.0.1'], inet6: ['::1'] }], guestIPs: '' }, 'loopback is listed but not a guest IP');
});
