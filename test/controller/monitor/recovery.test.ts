// A recovering agent (it answers mutating calls with 99) shows Initializing, and Up once it has
// recovered. Recovery is made to last: the agent's libvirt is the test driver served by the lab's
// libvirtd through a unix socket this test owns (test+unix:///node.xml?socket=...). While no one
// listens there the agent cannot reconcile its VMs, so it serves RPC but stays recovering; once
// the test forwards the socket to libvirtd, the agent connects, finds its two domains, and ends
// its recovery.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AgentLinks } from '../../../controller/agents/agent-links.js';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { enrolledHost } from '../../../controller/health/host-status.js';
import { HealthMonitor } from '../../../controller/monitor/health-monitor.js';
import { RpcCallError } from '../../../api/client/errors.js';
import { scratchDir } from '../../agent/harness.js';
import { agentOnNode, credentialsOf, endpointOf, fixedVmsNode } from '../agents/test-hosts.js';
import { RecordingSink } from './recording-sink.js';

const LIBVIRTD_SOCKET = '/var/run/libvirt/libvirt-sock';
const noLibvirtd = existsSync(LIBVIRTD_SOCKET) ? false : `no libvirtd socket at ${LIBVIRTD_SOCKET} (run test/lab/setup.sh)`;

const POLL_MS = 500;
const settings = resolveDecisionSettings({ pollIntervalMs: POLL_MS, pollTimeoutMs: POLL_MS, agentReconnectMaxMs: 500, agentConnectTimeoutMs: 2_000 });

/** A unix socket that forwards to libvirtd once opened; until then nothing listens on it. */
class Gate {
  readonly path = join(scratchDir('hv-gate-'), 'libvirt.sock');
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  open(): Promise<void> {
    this.server = createServer((inbound) => {
      const outbound = connect(LIBVIRTD_SOCKET);
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('error', () => { inbound.destroy(); outbound.destroy(); });
        s.on('close', () => { this.sockets.delete(s); });
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    return new Promise((resolve, reject) => { this.server!.once('error', reject).listen(this.path, () => resolve()); });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => { if (this.server) this.server.close(() => r()); else r(); });
  }
}

t.test('an agent that cannot finish recovering shows Initializing; once it has recovered, Up with its VMs', { skip: noLibvirtd }, async (t) => {
  const gate = new Gate();
  t.teardown(() => gate.close());
  const node = fixedVmsNode();
  const agent = await agentOnNode(node.nodeFile, {
    readyMsg: 'listening',
    overrides: { 'libvirt.uri': `test+unix://${node.nodeFile}?socket=${gate.path}`, 'libvirt.reconnectInitialMs': 100, 'libvirt.reconnectMaxMs': 500 },
  });
  t.teardown(() => agent.stop());

  const links = new AgentLinks({ credentials: credentialsOf(agent), settings });
  const sink = new RecordingSink();
  const monitor = new HealthMonitor({ agents: links, sink, settings });
  t.teardown(async () => { await monitor.close(); await links.close(); });
  links.set(endpointOf('host-r', agent));
  monitor.track(enrolledHost('host-r', Date.now()));
  monitor.start();

  const init = await sink.waitHealth('Initializing', (o) => o.host.status === 'Initializing', 10_000);
  t.match(init.o.events[0], { kind: 'host.status', data: { from: 'Installing', to: 'Initializing' } }, `Installing -> Initializing: ${init.o.events[0]?.reason ?? ''}`);
  t.equal(init.o.stats?.recovering, true, 'Host.getStats answered, saying recovering: true');
  const refused = await links.call('host-r', 'VM.destroy', { vmID: randomUUID() }).catch((e: unknown) => e);
  t.ok(refused instanceof RpcCallError && refused.code === 99, 'meanwhile a mutating call is refused with 99: the field and the 99 agree');
  await new Promise((r) => setTimeout(r, 4 * POLL_MS));
  t.same(sink.statuses('host-r'), ['Initializing'], 'still Initializing 4 polls later: never Connecting or Up while recovering');
  t.ok(sink.healths.filter((h) => h.at > init.at).length >= 3, `polled meanwhile (${sink.healths.filter((h) => h.at > init.at).length} more polls)`);
  const early = sink.vmObs.filter((x) => x.o.report.hostId === 'host-r').at(-1);
  t.equal(early?.o.report.status, 'Initializing', 'the VM report handed on says Initializing (reconcile does not trust its list)');

  const openedAt = performance.now();
  await gate.open();
  const up = await sink.waitHealth('Up', (o) => o.host.status === 'Up', 10_000, openedAt);
  t.comment(`Up ${Math.round(up.at - openedAt)} ms after libvirt became reachable`);
  t.match(up.o.events[0], { kind: 'host.status', data: { from: 'Initializing', to: 'Up' }, reason: 'the agent finished recovering' }, 'Initializing -> Up: the agent finished recovering');
  t.equal(up.o.stats?.recovering, false, 'Host.getStats says recovering: false');
  const list = await sink.waitVms('the list after recovery', (o) => o.source === 'list' && o.report.status === 'Up', 2_000, up.at);
  t.same([list.o.report.vms.get(node.running)?.status, list.o.report.vms.get(node.paused)?.status], ['Up', 'Paused'], 'the recovered VMs: Up and Paused');
});
