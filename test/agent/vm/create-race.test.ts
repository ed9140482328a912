// Two (or three) VM.create calls with one vmID at the same moment, through a
// real agent: exactly one is accepted, the others get VDSM's "exists" (4), and
// no domain is left behind. The NICs name a host network, so each create
// awaits the network's bridge (running config, `ip link`) before it registers
// the VM: the window in which both used to pass the "exists" check.
//
// The agent runs in a throwaway host namespace against libvirt's in-process
// test:///default driver (agent-lab.ts); the engine stand-in sends the calls
// on separate connections from the peer namespace.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { agentNetLab, setupConfirmed, within, PeerCallError, type AgentNetLab } from '../network/agent-lab.js';

const HOST = '10.250.217.1';
const GW = '10.250.217.254';
const NET = 'hvrace';

let env: AgentNetLab;
t.before(async () => {
  env = await agentNetLab('race', {
    nics: 2,
    prepare: async (lab) => {
      await lab.inHost(['ip', 'addr', 'add', `${HOST}/24`, 'dev', 'hvnic0']);
      await lab.inPeer(['ip', 'addr', 'add', `${GW}/24`, 'dev', 'peer0']);
    },
  });
  await env.client.connect('engine', HOST);
  const { result } = await setupConfirmed(env.client, 'engine', { networks: { [NET]: { nic: 'hvnic1' } }, bondings: {}, options: { connectivityCheck: false } });
  if (result['status'] !== 'applied') throw new Error(`could not create network ${NET}`);
  for (const c of ['c1', 'c2', 'c3']) await env.client.connect(c, HOST);
});
t.teardown(async () => { await env?.cleanup(); });

type Vm = { vmId: string; status: string; exitReason?: number; exitMessage?: string };
const spec = (name: string, nics: unknown[] = [{ network: NET }]) => ({
  name, memoryMiB: 128, vcpus: 1, domainType: 'qemu', kernel: '/nonexistent/vmlinux', nics,
});
const vmList = async (): Promise<Vm[]> => (await env.client.call<{ vmList: Vm[] }>('engine', 'Host.getVMList', {}))['vmList'];
const create = (conn: string, vmID: string, name: string, nics?: unknown[]) => env.client.call(conn, 'VM.create', { vmID, spec: spec(name, nics) }, 20_000)
  .then((r) => ({ ok: r as Record<string, unknown> }), (e: unknown) => ({ err: e as PeerCallError }));

/** Waits until VM.destroy has forgotten VMID; true if gone. */
async function destroyed(vmID: string): Promise<boolean> {
  await env.client.call('engine', 'VM.destroy', { vmID }).catch(() => undefined);
  return (await within(async () => !(await vmList()).some((v) => v.vmId === vmID), 10_000, 100)) !== undefined;
}

t.test('concurrent creates of one vmID: exactly one is accepted, the others get 4 (exists), one domain', async (t) => {
  const vmID = randomUUID();
  const answers = await Promise.all(['c1', 'c2', 'c3'].map((c, i) => create(c, vmID, `hv-race-${i}`)));
  const ok = answers.filter((a) => 'ok' in a);
  const refused = answers.flatMap((a) => ('err' in a ? [a.err] : []));
  t.comment(`answers: ${JSON.stringify(answers.map((a) => ('ok' in a ? a.ok : { code: a.err.code, message: a.err.message })))}`);
  t.equal(ok.length, 1, 'exactly one create is accepted');
  t.same(refused.map((e) => e.code), [4, 4], 'the others get exists (4)');
  t.ok(refused.every((e) => /already exists/.test(e.message)));
  const up = await within(async () => (await vmList()).some((v) => v.vmId === vmID && v.status === 'Up'), 15_000, 100);
  t.ok(up !== undefined, 'the accepted VM is launched and Up');
  t.equal((await vmList()).filter((v) => v.vmId === vmID).length, 1, 'listed once');
  t.ok(await destroyed(vmID), 'destroyed and forgotten');
  // A domain left in libvirt with this uuid would make this launch fail (the test driver refuses a second active uuid).
  t.match((await create('c1', vmID, 'hv-race-again')), { ok: { status: 'WaitForLaunch' } });
  const again = await within(async () => (await vmList()).some((v) => v.vmId === vmID && v.status === 'Up'), 15_000, 100);
  t.ok(again !== undefined, 'the same vmID launches again: no domain was left behind by the refused creates');
  t.ok(await destroyed(vmID));
});

t.test('a create that fails releases the vmID: the next create of it is accepted', async (t) => {
  const vmID = randomUUID();
  const bad = await create('c1', vmID, 'hv-race-bad', [{ network: NET }, { network: 'hvnosuchnet' }]);
  t.equal('err' in bad ? bad.err.code : undefined, 27, 'a NIC on a missing network: 27');
  t.notOk((await vmList()).some((v) => v.vmId === vmID), 'nothing registered');
  t.match(await create('c2', vmID, 'hv-race-good'), { ok: { vmId: vmID, status: 'WaitForLaunch' } }, 'the id is free again');
  t.ok(await destroyed(vmID));
});
