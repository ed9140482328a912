// Must-show 7 (agent side), on the real tiny guest with a real qemu-ga: the
// IP address and host name set inside the guest appear in VM.getStats; the
// guest stopping its qemu-ga is a VM_guest_agent {connected:false} event,
// and VM.getStats right after answers at once (it never waits on a guest).
//
// The guest's address (10.250.77.0/24) sits on a bridge with no address and
// no uplink: nothing can leave it.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAgent, connectClient, StatusWatch, tinyGuest } from '../harness.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import { enums } from '../../../agent/libvirt/index.js';

const BRIDGE = 'hvtest-ga0';
const GUEST_IP = '10.250.77.10';
const HOSTNAME = `ga-guest-${process.pid}`;

type AgentEvent = { vmId: string; connected: boolean; at: number };

t.test('guest IP and host name reach VM.getStats; qemu-ga stopping in the guest is a disconnect event and getStats stays prompt', async (t) => {
  execFileSync('ip', ['link', 'add', BRIDGE, 'type', 'bridge'], { timeout: 10_000 });
  t.teardown(() => { try { execFileSync('ip', ['link', 'del', BRIDGE], { timeout: 10_000 }); } catch { /* already gone */ } });
  execFileSync('ip', ['link', 'set', BRIDGE, 'up'], { timeout: 10_000 });

  const { config, stop, agent } = await startAgent({ 'guest.pollIntervalMs': 1000 });
  t.teardown(stop);
  const client = await connectClient(config);
  t.teardown(() => client.close());
  const watch = new StatusWatch(client);
  const events: AgentEvent[] = [];
  client.onEvent((method, params) => {
    const m = method.match(/^\|virt\|VM_guest_agent\|(.+)$/);
    if (m) events.push({ vmId: m[1]!, connected: (params[m[1]!] as { connected: boolean }).connected, at: performance.now() });
  });
  const waitEvent = async (vmId: string, connected: boolean, since: number, ms: number): Promise<AgentEvent> => {
    const end = performance.now() + ms;
    for (;;) {
      const e = events.find((x) => x.vmId === vmId && x.connected === connected && x.at >= since);
      if (e) return e;
      if (performance.now() > end) throw new Error(`no VM_guest_agent {connected: ${connected}} within ${ms} ms; saw ${JSON.stringify(events)}`);
      await sleep(50);
    }
  };

  const g = tinyGuest('hv-it-guest-agent', {
    cmdline: [`lab.ip=${GUEST_IP}/24`, `lab.hostname=${HOSTNAME}`, 'lab.acpi=qga'],
    nics: [{ bridge: BRIDGE, mac: '52:54:00:77:00:10' }],
  });
  t.teardown(() => client.call('VM.destroy', { vmID: g.vmID }).catch(() => {}));
  const t0 = performance.now();
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 60_000);
  await waitForSerialMarker(g.serial, 'LAB-NET-UP', 60_000);
  const qga = await waitForSerialMarker(g.serial, /LAB-QGA-(UP|NONE|FAIL)/, 30_000);
  t.match(qga.line, /LAB-QGA-UP dev=\/dev\/vport/, 'qemu-ga runs in the guest on the agent port');
  await waitEvent(g.vmID, true, t0, 30_000);
  t.pass('VM_guest_agent {connected: true} once qemu-ga opened its port');

  // The poller asks every category at each poll for the first two minutes: a bounded wait.
  let stats: Record<string, unknown> = {};
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    stats = (await client.call('VM.getStats', { vmID: g.vmID })).statsList[0] as Record<string, unknown>;
    if (String(stats.guestIPs ?? '').split(' ').includes(GUEST_IP) && stats.guestFQDN === HOSTNAME && stats.guestOsInfo) break;
    await sleep(500);
  }
  t.equal(stats.guestFQDN, HOSTNAME, 'the host name set inside the guest');
  t.ok(String(stats.guestIPs).split(' ').includes(GUEST_IP), `guestIPs has the address set inside the guest (${String(stats.guestIPs)})`);
  const eth0 = (stats.netIfaces as { name: string; hw: string; inet: string[] }[] | undefined)?.find((f) => f.name === 'eth0');
  t.same(eth0 && { hw: eth0.hw, inet: eth0.inet }, { hw: '52:54:00:77:00:10', inet: [GUEST_IP] }, 'netIfaces: eth0 with its MAC and address');
  t.equal(stats.guestAgentConnected, true);
  t.match(stats.guestOsInfo, { distribution: 'Hostvisor lab guest', version: '1', arch: 'x86_64', type: 'linux' }, "guestOsInfo from the guest's /etc/os-release");
  t.match(String(stats.guestOs), /^\d+\.\d+/, 'guestOs is the kernel release');
  t.same(stats.guestTimezone, { offset: 0, zone: 'UTC' });
  t.equal(stats.username, '', 'no one logged in');

  // The guest stops qemu-ga (its power button handler under lab.acpi=qga).
  const dom = await agent.client.connection.lookupByUUID(g.vmID);
  const pressed = performance.now();
  await dom.shutdown({ flags: enums.DomainShutdownFlagValues.ACPI_POWER_BTN });
  await waitForSerialMarker(g.serial, 'LAB-QGA-STOPPED', 30_000);
  const gone = await waitEvent(g.vmID, false, pressed, 30_000);
  t.ok(gone, `VM_guest_agent {connected: false} ${Math.round(gone.at - pressed)} ms after the button`);
  const asked = performance.now();
  const after = (await client.call('VM.getStats', { vmID: g.vmID })).statsList[0] as Record<string, unknown>;
  const tookMs = performance.now() - asked;
  t.ok(tookMs < 2000, `VM.getStats answered in ${Math.round(tookMs)} ms with the agent gone`);
  t.equal(after.guestAgentConnected, false, 'getStats says the agent is disconnected');
  t.equal(after.status, 'Up', 'the VM itself runs on');
  // Polls go on at 1 s: none may hang the agent's API for a VM without an agent.
  await sleep(3000);
  const asked2 = performance.now();
  await client.call('VM.getStats', { vmID: g.vmID });
  t.ok(performance.now() - asked2 < 2000, 'still prompt after a few polls');

  // Pressed again, the guest starts qemu-ga again: a new connect.
  const again = performance.now();
  await dom.shutdown({ flags: enums.DomainShutdownFlagValues.ACPI_POWER_BTN });
  await waitEvent(g.vmID, true, again, 30_000);
  t.pass('VM_guest_agent {connected: true} again after qemu-ga restarted in the guest');
});
