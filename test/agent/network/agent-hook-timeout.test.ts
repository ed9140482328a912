// A before_network_setup hook that raises connectivityTimeout, through a real
// agent: the call's RPC timeout follows the rewritten request, so the engine
// gets the call's real outcome (10: rolled back after the longer wait), not
// 1007 at the bound computed from the request as sent.
//
// The agent runs with a short request timeout (2 s) and DHCP timeout (0.5 s),
// so the bound from the request as sent (connectivityTimeout 1 s) is 2 + 1 +
// 2 × 0.5 = 4 s, and the rewritten one (8 s) is 11 s.
import t from 'tap';
import { agentNetLab, within, PeerCallError, type AgentNetLab } from './agent-lab.js';
import { captureState, diff, formatDiff } from '../../../agent/network/state.js';

const HOST = '10.250.216.1';
const GW = '10.250.216.254';
const HOOK_TIMEOUT_S = 8;
const DEVICES = ['hvslow', 'hvnic0', 'hvnic1'];

// Networks named hvslow* get a longer connectivityTimeout.
const RAISE_TIMEOUT_HOOK = `#!/usr/bin/python3
import hooking
data = hooking.read_json()
if any(name.startswith('hvslow') for name in data['request'].get('networks', {})):
    data['request'].setdefault('options', {})['connectivityTimeout'] = ${HOOK_TIMEOUT_S}
hooking.write_json(data)
`;

let env: AgentNetLab;
t.before(async () => {
  env = await agentNetLab('agto', {
    nics: 2,
    prepare: async (lab) => {
      await lab.inHost(['ip', 'addr', 'add', `${HOST}/24`, 'dev', 'hvnic0']);
      await lab.inPeer(['ip', 'addr', 'add', `${GW}/24`, 'dev', 'peer0']);
    },
    hooks: { before_network_setup: { '50_raise': RAISE_TIMEOUT_HOOK } },
    overrides: { 'rpc.requestTimeoutMs': 2000, 'network.dhcpTimeoutMs': 500 },
  });
  await env.client.connect('engine', HOST);
});
t.teardown(async () => { await env?.cleanup(); });

t.test('before_network_setup raises connectivityTimeout: the call answers with its outcome after the longer wait, not 1007', async (t) => {
  const before = await captureState(env.lab.ip, DEVICES);
  const t0 = performance.now();
  // No other request on any connection until it answers: each would confirm.
  const err = await env.client.call('engine', 'Host.setupNetworks', { networks: { hvslow: { nic: 'hvnic1' } }, bondings: {}, options: { connectivityTimeout: 1 } }, 30_000)
    .then(() => undefined, (e: unknown) => e);
  const ms = Math.round(performance.now() - t0);
  t.type(err, PeerCallError);
  const e = err as PeerCallError;
  t.comment(`answered ${e.code} after ${ms} ms: ${e.message}`);
  t.equal(e.code, 10, 'lost connection (rolled back), not 1007 at the bound of the request as sent');
  t.match(e.message, new RegExp(`no connectivity confirmation within ${HOOK_TIMEOUT_S * 1000} ms; rolled back and verified`), 'the wait was the one the hook set');
  t.ok(ms >= HOOK_TIMEOUT_S * 1000, `not before the rewritten timeout (${ms} ms)`);
  t.ok(await within(async () => formatDiff(diff(before, await captureState(env.lab.ip, DEVICES))).length === 0, 5000, 100) !== undefined, 'the host is as before');
});
