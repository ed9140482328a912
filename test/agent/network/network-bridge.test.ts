// networkBridge(): which bridge a VM NIC given `network: NAME` joins, and the
// three refusals (27, naming the field), against real links in a throwaway
// namespace: no such network, a bridgeless one, and one whose bridge is gone
// (the config survived a reboot that restore-networks did not follow).
import t from 'tap';
import { NetworkBadBridgeError } from '../../../agent/network/errors.js';
import { networkBridge } from '../../../agent/network/vm-nics.js';
import { netLab, type NetLab } from './netlab.js';

let lab: NetLab;
t.before(async () => { lab = await netLab('nbr', 2); });
t.teardown(async () => { await lab?.cleanup(); });

const refusal = async (p: Promise<unknown>): Promise<NetworkBadBridgeError> => {
  const e = await p.then(() => undefined, (err: unknown) => err);
  if (!(e instanceof NetworkBadBridgeError)) throw new Error(`expected NetworkBadBridgeError, got ${String(e)}`);
  return e;
};

t.test('a bridged network resolves to its bridge; the others are refused with 27 naming the field', async (t) => {
  const nets = lab.networks();
  await nets.setupNetworks({
    networks: {
      hvbr: { nic: 'hvnic0', ipv4: { bootproto: 'none', ipaddr: '10.250.66.1', prefix: 24 } },
      hvraw: { nic: 'hvnic1', bridged: false },
    },
    bondings: {}, options: { connectivityCheck: false },
  });
  t.equal(await networkBridge(nets, 'hvbr', 'params.nic.network'), 'hvbr', 'the bridge is named after the network');

  const none = await refusal(networkBridge(nets, 'hvnone', 'params.spec.nics[2].network'));
  t.match(none, { code: 27, data: { field: 'params.spec.nics[2].network', network: 'hvnone', reason: 'noNetwork' } });
  t.match(none.message, /^params\.spec\.nics\[2\]\.network: there is no network "hvnone"/);

  const raw = await refusal(networkBridge(nets, 'hvraw', 'params.nic.network'));
  t.match(raw, { code: 27, data: { reason: 'bridgeless' } });
  t.match(raw.message, /bridgeless/);

  await lab.ip.run(['link', 'del', 'dev', 'hvbr']); // as after a reboot without restore-networks
  const gone = await refusal(networkBridge(nets, 'hvbr', 'params.nic.network'));
  t.match(gone, { code: 27, data: { reason: 'bridgeMissing' } });
  t.match(gone.message, /restore-networks/, 'the message says how to get the bridge back');

  await lab.ip.run(['link', 'add', 'name', 'hvbr', 'type', 'veth', 'peer', 'name', 'hvbrpeer']);
  const wrongKind = await refusal(networkBridge(nets, 'hvbr', 'params.nic.network'));
  t.match(wrongKind, { data: { reason: 'bridgeMissing' } }, 'a device of that name that is not a bridge does not count');
});
