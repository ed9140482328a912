// Must-show 7, controller side: GET /vms/{id} of a running VM shows what its guest agent reports
// (the address and host name set inside the guest, the OS), read from the VM's host; a VM that
// does not run shows none. A controller built as main.ts builds it, a real agent process on the
// machine's libvirtd, the tiny guest with its qemu-ga.
//
// The guest has no NIC here (a controller network needs a host network set up): its address,
// 10.250.77.20/32, is put on its loopback device, where qemu-ga reports it like any other
// (test/agent/vm/guest-agent.test.ts shows the NIC case through the agent's API).
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { AgentProcess } from '../../api/client/agent-process.js';
import { tinyGuest } from '../../agent/harness.js';
import { credentialsOf } from '../agents/test-hosts.js';
import { addLocalHosts, startController } from './controller-harness.js';

t.setTimeout(240_000);
const run = promisify(execFile);
const settings = resolveDecisionSettings({
  pollIntervalMs: 500, pollTimeoutMs: 500, nonResponsiveGraceMs: 3_000, vmListIntervalMs: 1_000,
  agentKeepaliveMs: 1_000, agentReconnectMaxMs: 500, agentConnectTimeoutMs: 2_000, agentCallTimeoutMs: 10_000, vmStartTimeoutMs: 30_000,
});
const GUEST_IP = '10.250.77.20';
const HOSTNAME = `ga-ctl-${process.pid}`;

const agent = await AgentProcess.start({ overrides: { 'libvirt.uri': 'qemu:///system', 'guest.pollIntervalMs': 1000 } });
const c = await startController({ settings, credentials: credentialsOf(agent) });
const NAME = `hv-ctl-guest-${process.pid}`;
let vmId = '';
// The guest goes with libvirt itself (whatever the controller got to), then the controller, then the agent.
t.teardown(async () => {
  await run('virsh', ['-c', 'qemu:///system', 'destroy', NAME], { timeout: 30_000 }).catch(() => {});
  await c.close();
  await agent.stop();
});
const { api, jobEnd } = c;
await addLocalHosts(c, [agent.config['rpc.port']]);

const script = `ip link set lo up; ip addr add ${GUEST_IP}/32 dev lo`;
const { spec } = tinyGuest(NAME, { cmdline: [`lab.hostname=${HOSTNAME}`, `lab.sh=${Buffer.from(script).toString('base64')}`] });
const defined = await api.call('POST', '/api/v1/vms', { body: { name: NAME, spec } });
if (defined.status !== 201) throw new Error(`define: ${defined.status} ${defined.text}`);
vmId = defined.body.id as string;

t.test('a VM not running shows no guest report', async (t) => {
  const r = await api.call('GET', `/api/v1/vms/${vmId}`);
  t.equal(r.status, 200);
  t.equal(r.body.guest, undefined, 'no guest field');
});

t.test("GET /vms/{id} shows the guest's address and host name as set inside the guest", async (t) => {
  const started = await api.call('POST', `/api/v1/vms/${vmId}/start`, { body: {} });
  const job = await jobEnd(started.headers.location as string, 60_000);
  t.equal(job.state, 'succeeded', 'started');
  type Guest = { guestFQDN?: string; guestIPs?: string; guestOsInfo?: { distribution: string }; guestAgentConnected?: boolean };
  let guest: Guest | undefined;
  let took = 0;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const asked = performance.now();
    const r = await api.call('GET', `/api/v1/vms/${vmId}`);
    took = Math.max(took, performance.now() - asked);
    guest = r.body.guest as Guest | undefined;
    if (guest?.guestFQDN === HOSTNAME && String(guest.guestIPs ?? '').split(' ').includes(GUEST_IP)) break;
    await sleep(500);
  }
  t.equal(guest?.guestFQDN, HOSTNAME, 'the host name set inside the guest');
  t.ok(String(guest?.guestIPs ?? '').split(' ').includes(GUEST_IP), `guestIPs has the address set inside the guest (${guest?.guestIPs})`);
  t.equal(guest?.guestAgentConnected, true);
  t.equal(guest?.guestOsInfo?.distribution, 'Hostvisor lab guest', "the guest's OS");
  t.ok(took < 3000, `every GET answered within ${Math.round(took)} ms`);
});
