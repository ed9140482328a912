// A change that was applied but could not be recorded is rolled back, in
// throwaway namespaces with real file-system failures: the store's folder
// bind-mounted read-only (EROFS), or safe.json a folder (rename fails). The
// host, running.json and lastSetup then agree: the call answers 29 with
// reason persistFailed, never "refused" over a network that changed.
import t, { type Test } from 'tap';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetworkSetupError } from '../../../agent/network/errors.js';
import type { HostNetworks } from '../../../agent/network/index.js';
import type { RollbackReport } from '../../../agent/network/rollback.js';
import { captureState, diff, formatDiff } from '../../../agent/network/state.js';
import { netLab, sh, type NetLab } from './netlab.js';

const OLD = '10.250.215.1';
const DEVICES = ['hvpf', 'hvnic0'];

let lab: NetLab;
t.before(async () => {
  lab = await netLab('pf', 1);
  await lab.inPeer(['ip', 'addr', 'add', '10.250.215.254/24', 'dev', 'peer0']);
  await lab.networks().setupNetworks({ networks: { hvpf: net(OLD) }, bondings: {}, options: { connectivityCheck: false } });
});
t.teardown(async () => { await lab?.cleanup(); });

function net(ipaddr: string) {
  return { nic: 'hvnic0', defaultRoute: true, ipv4: { bootproto: 'none', ipaddr, prefix: 24, gateway: '10.250.215.254' } };
}

/** Bind-mounts DIR read-only over itself (even root gets EROFS); the returned undo unmounts it, and never throws. */
async function readOnly(dir: string): Promise<() => Promise<void>> {
  for (const argv of [['mount', '--bind', dir, dir], ['mount', '-o', 'remount,bind,ro', dir]]) {
    const r = await sh(argv);
    if (r.rc !== 0) { await sh(['umount', dir]); throw new Error(`${argv.join(' ')}: ${r.stderr}`); }
  }
  let mounted = true;
  return async () => { if (mounted) { mounted = false; await sh(['umount', dir]); } };
}

/** safe.json as a non-empty folder: writing it (rename over it) fails; the undo removes it. */
function unwritableSafe(nets: HostNetworks): () => void {
  mkdirSync(join(nets.store.safePath, 'blocker'), { recursive: true });
  writeFileSync(join(nets.store.safePath, 'blocker', 'x'), '');
  return () => rmSync(nets.store.safePath, { recursive: true, force: true });
}

const state = () => captureState(lab.ip, DEVICES);

async function expectRolledBack(t: Test, nets: HostNetworks, err: unknown, before: Awaited<ReturnType<typeof state>>): Promise<NetworkSetupError> {
  t.type(err, NetworkSetupError, 'a setup error, not a bare file-system error');
  const e = err as NetworkSetupError;
  t.comment(`message: ${e.message}`);
  t.equal(e.code, 29);
  t.equal(e.data?.['reason'], 'persistFailed');
  t.match(e.message, /applied, but recording it failed: .*rolled back and verified/);
  t.match(e.data?.['rollback'] as RollbackReport, { verified: true, diff: [] }, 'the rollback ran and was verified');
  t.same(formatDiff(diff(before, await state())), [], 'links, addresses and routes are as before the change');
  t.ok(await lab.ping(OLD), 'the old address answers');
  t.match(nets.lastSetup, { outcome: 'rolledBack', code: 29, reason: 'persistFailed', networks: { changed: ['hvpf'] } }, 'lastSetup: rolled back because it could not be recorded');
  t.type((nets.lastSetup?.phasesMs ?? {})['persist'], 'number', 'the persist phase is timed');
  return e;
}

t.test('running.json cannot be written (read-only file system): the applied change is rolled back (verified), 29 persistFailed', async (t) => {
  const nets = lab.networks();
  const before = await state();
  const recorded = await nets.store.running();
  const undo = await readOnly(nets.store.dir);
  t.teardown(undo);
  const err = await nets.setupNetworks({ networks: { hvpf: net('10.250.215.2') }, bondings: {}, options: { connectivityCheck: false } }).catch((e: unknown) => e);
  await undo();
  const e = await expectRolledBack(t, nets, err, before);
  t.match(e.message, /read-only file system/i, 'the message names the file-system failure');
  t.same(await nets.store.running(), recorded, 'running.json still names the config the host runs');
  t.equal((await nets.capabilities()).networks['hvpf']?.addr, OLD, 'the agent reports the old address');
});

t.test('commitOnSuccess whose safe.json cannot be written: rolled back (verified), and running.json (already written) is put back', async (t) => {
  const nets = lab.networks();
  const before = await state();
  const recorded = await nets.store.running();
  const undo = unwritableSafe(nets);
  t.teardown(undo);
  const err = await nets.setupNetworks({ networks: { hvpf: net('10.250.215.3') }, bondings: {}, options: { connectivityCheck: false, commitOnSuccess: true } }).catch((e: unknown) => e);
  await expectRolledBack(t, nets, err, before);
  t.same(await nets.store.running(), recorded, 'running.json names the old config again');
  undo();
  t.same(await nets.runningConfig(), recorded);
});

t.test('when running.json cannot be put back either, the agent keeps the running config in memory until it can write it', async (t) => {
  const before = await state();
  const recorded = await lab.networks().store.running();
  let undoReadOnly: (() => Promise<void>) | undefined;
  // safe.json fails the commit after running.json was written; the post-rollback
  // probe (which runs after the rollback's passes) then makes the folder read-only,
  // so running.json cannot be put back.
  const nets = lab.networks({ probeAfterRollback: async () => { undoReadOnly = await readOnly(nets.store.dir); return true; } });
  const undoSafe = unwritableSafe(nets);
  t.teardown(async () => { await undoReadOnly?.(); undoSafe(); });
  const err = await nets.setupNetworks({ networks: { hvpf: net('10.250.215.4') }, bondings: {}, options: { connectivityCheck: false, commitOnSuccess: true } }).catch((e: unknown) => e);
  t.ok(undoReadOnly, 'the folder was made read-only during the rollback');
  const e = await expectRolledBack(t, nets, err, before);
  t.match(e.message, /running\.json could not be put back .*keeps the running config in memory/);
  t.equal(e.data?.['runningRecorded'], false);
  t.equal((await nets.store.running()).networks['hvpf']?.ipv4.ipaddr, '10.250.215.4', 'the file still names the change (written before the commit failed)');
  t.same(await nets.runningConfig(), recorded, 'but the agent uses the config the host runs');
  t.match(nets.lastSetup?.message, /running\.json could not be put back/, 'lastSetup says so too');
  await undoReadOnly!();
  undoSafe();
  t.equal((await nets.capabilities()).networks['hvpf']?.addr, OLD, 'the agent reports the running config');
  t.ok(await nets.netConfigDirty(), 'nothing persisted as safe: dirty');
  await nets.setSafeNetworkConfig();
  t.same(await nets.store.running(), recorded, 'setSafeNetworkConfig writes the true running config first');
  t.same(await nets.store.safe(), recorded, 'and persists it');
  t.notOk(await nets.netConfigDirty());
  const r = await nets.setupNetworks({ networks: { hvpf: net(OLD) }, bondings: {}, options: { connectivityCheck: false } });
  t.same(r.apply.steps, [], 'the next setupNetworks starts from the true running config: nothing to do');
});
