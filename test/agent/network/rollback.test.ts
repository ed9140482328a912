// The rollback path, for real, in throwaway namespaces.
// A "client" in the peer namespace pings the host network's address every
// 300 ms; each answer stands for an engine request reaching the agent
// (connectivity.touch()). Moving the address away cuts the client off, no
// confirmation comes, and the change is rolled back and verified.
import t from 'tap';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetworkLostConnectionError, NetworkRollbackError, NetworkSetupError, NetworkCommandError } from '../../../agent/network/errors.js';
import { Ip } from '../../../agent/network/ip.js';
import { runCommand, type Runner } from '../../../agent/network/exec.js';
import type { RollbackReport } from '../../../agent/network/rollback.js';
import { captureState, diff, formatDiff } from '../../../agent/network/state.js';
import type { HostNetworks } from '../../../agent/network/index.js';
import { netLab, testLog, type NetLab } from './netlab.js';

let lab: NetLab;
t.before(async () => {
  lab = await netLab('rb', 1);
  await lab.inPeer(['ip', 'addr', 'add', '10.250.204.254/24', 'dev', 'peer0']);
});
t.teardown(async () => { await lab?.cleanup(); });

const net = (ipaddr: string, mtu = 1500, nameservers: string[] = []) => ({
  nic: 'hvnic0', mtu, defaultRoute: true, nameservers,
  ipv4: { bootproto: 'none' as const, ipaddr, prefix: 24, gateway: ipaddr.replace(/\.\d+$/, '.254') },
});
const DEVICES = ['hvnet1', 'hvnic0'];

/** The client: pings TARGET() from the peer namespace until stopped; each answer touches the watch. */
function client(nets: HostNetworks, target: () => string): { stop: () => Promise<void>; answers: () => number } {
  let run = true;
  let answers = 0;
  const loop = (async () => {
    for (let i = 0; run && i < 400; i++) { // bounded: at most ~400 pings
      if (await lab.ping(target(), 1)) { answers++; nets.connectivity.touch(); }
      await sleep(300);
    }
  })();
  return { stop: async () => { run = false; await loop; }, answers: () => answers };
}

t.test('no confirmation: the change is rolled back and the rollback verified', async (t) => {
  const nets = lab.networks({ probeAfterRollback: () => lab.ping('10.250.204.1') });
  await nets.setupNetworks({ networks: { hvnet1: net('10.250.204.1') }, bondings: {}, options: { connectivityCheck: false } });
  t.ok(await lab.ping('10.250.204.1'), 'the client reaches the host');
  const before = await captureState(lab.ip, DEVICES);

  const c = client(nets, () => '10.250.204.1');
  const t0 = performance.now();
  const err = await nets.setupNetworks({
    networks: { hvnet1: net('10.250.209.1', 1500, ['10.250.209.53']) }, bondings: {}, options: { connectivityTimeout: 2 },
  }).catch((e: unknown) => e);
  const ms = Math.round(performance.now() - t0);
  await c.stop();
  t.type(err, NetworkLostConnectionError, 'lost connection');
  const e = err as NetworkLostConnectionError;
  const rb = e.data?.['rollback'] as RollbackReport;
  t.comment(`message: ${e.message}`);
  t.comment(`call took ${ms} ms; rollback ${rb.ms} ms in ${rb.attempts} pass(es): ${rb.steps.join('; ')}`);
  t.equal(e.data?.['reason'], 'connectivityLost');
  t.equal(rb.verified, true, 'rollback verified');
  t.same(rb.diff, []);
  t.same(rb.errors, []);
  t.equal(rb.probe, true, 'post-rollback probe: the client reaches the host again');
  t.ok(ms >= 2000 && ms < 8000, `rolled back within the timeout plus a bounded rollback (${ms} ms)`);
  t.match(e.message, /rolled back and verified/);

  const after = await captureState(lab.ip, DEVICES);
  t.same(formatDiff(diff(before, after)), [], 'links, addresses and routes are as before');
  t.ok(await lab.ping('10.250.204.1'), 'the client reaches the host again');
  t.equal((await nets.store.running()).networks['hvnet1']?.ipv4.ipaddr, '10.250.204.1', 'running config unchanged');
  t.ok(rb.steps.includes(`restore /etc/netns/${lab.host}/resolv.conf`), 'the nameservers written by the change were undone');
  t.notOk(existsSync(`/etc/netns/${lab.host}/resolv.conf`), 'resolv.conf as before (absent)');
});

t.test('confirmation in time keeps the change', async (t) => {
  const nets = lab.networks();
  let target = '10.250.204.1';
  const c = client(nets, () => target);
  target = '10.250.204.2'; // the engine knows the new address and talks to it
  const r = await nets.setupNetworks({ networks: { hvnet1: net('10.250.204.2') }, bondings: {}, options: { connectivityTimeout: 4 } });
  await c.stop();
  t.equal(r.confirmed, true);
  t.comment(`confirmed after ${r.phasesMs['confirm']} ms`);
  const s = await captureState(lab.ip, DEVICES);
  t.same(s.addrs['hvnet1'], ['10.250.204.2/24'], 'the new address stays');
  t.ok(await lab.ping('10.250.204.2'));
  t.equal((await nets.store.running()).networks['hvnet1']?.ipv4.ipaddr, '10.250.204.2');
});

t.test('an apply that fails midway is rolled back and verified', async (t) => {
  // A runner that fails the new address's `addr add`: by then the MTUs have
  // changed and the old address is gone, so the rollback has work to do.
  const failing: Runner = async (argv, opts) => {
    if (argv.includes('addr') && argv.includes('add') && argv.includes('10.250.204.7/24')) {
      throw new NetworkCommandError(argv, 2, 'injected failure');
    }
    return runCommand(argv, opts);
  };
  const nets = lab.networks({ ip: new Ip({ netns: lab.host, runner: failing, log: testLog }) });
  const before = await captureState(lab.ip, DEVICES);
  const err = await nets.setupNetworks({ networks: { hvnet1: net('10.250.204.7', 1400) }, bondings: {}, options: { connectivityCheck: false } })
    .catch((e: unknown) => e);
  t.type(err, NetworkSetupError);
  const e = err as NetworkSetupError;
  const rb = e.data?.['rollback'] as RollbackReport;
  t.comment(`message: ${e.message}`);
  t.comment(`rollback: ${rb.steps.join('; ')}`);
  t.equal(e.data?.['reason'], 'applyFailed');
  t.match(e.message, /injected failure.*rolled back and verified/);
  t.equal(rb.verified, true);
  t.ok(rb.steps.some((s) => s.includes('mtu 1500')), 'the MTU change was undone');
  t.same(formatDiff(diff(before, await captureState(lab.ip, DEVICES))), [], 'state as before');
  t.ok(await lab.ping('10.250.204.2'));
});

t.test('a rollback that cannot restore everything is reported as NOT verified, with the diff', async (t) => {
  // Both the new address (apply) and the old one (rollback) fail to be added.
  const failing: Runner = async (argv, opts) => {
    if (argv.includes('addr') && argv.includes('add') && (argv.includes('10.250.204.8/24') || argv.includes('10.250.204.2/24'))) {
      throw new NetworkCommandError(argv, 2, 'injected failure');
    }
    return runCommand(argv, opts);
  };
  const nets = lab.networks({ ip: new Ip({ netns: lab.host, runner: failing, log: testLog }), probeAfterRollback: () => lab.ping('10.250.204.2', 1) });
  const err = await nets.setupNetworks({ networks: { hvnet1: net('10.250.204.8') }, bondings: {}, options: { connectivityCheck: false } })
    .catch((e: unknown) => e);
  t.type(err, NetworkRollbackError, 'never reported as a success');
  const e = err as NetworkRollbackError;
  const rb = e.data?.['rollback'] as RollbackReport;
  t.comment(`message: ${e.message}`);
  t.equal(e.data?.['reason'], 'applyFailed', 'the original failure is kept');
  t.match(e.message, /apply failed: .*injected failure.*the rollback could not be verified: addrs\.hvnet1/);
  t.equal(rb.verified, false);
  t.equal(rb.attempts, 2, 'bounded retries');
  t.ok(rb.diff.some((d) => d.includes('10.250.204.2/24')), 'the diff names the missing address');
  t.ok(rb.errors.some((x) => x.includes('injected failure')), 'the rollback step failure is listed');
  t.equal(rb.probe, false, 'the failed post-rollback probe is reported');
  // Repair with a working runner: re-applying the running config converges.
  const fixed = lab.networks();
  await fixed.setupNetworks({ networks: { hvnet1: net('10.250.204.2') }, bondings: {}, options: { connectivityCheck: false } });
  t.ok(await lab.ping('10.250.204.2'), 'repaired');
});

t.test('the agent stopping while a change applies: no further step runs, the change is rolled back (verified), and no new change starts', async (t) => {
  // The first step of this change sets the MTU; the agent "receives SIGTERM" (the daemon's stop() aborts the watch) right then.
  let nets: HostNetworks | undefined;
  const stopsMidway: Runner = async (argv, opts) => {
    if (argv.includes('mtu') && argv.includes('1400')) nets?.connectivity.abort('the agent is stopping');
    return runCommand(argv, opts);
  };
  nets = lab.networks({ ip: new Ip({ netns: lab.host, runner: stopsMidway, log: testLog }) });
  const before = await captureState(lab.ip, DEVICES);
  const t0 = performance.now();
  const err = await nets.setupNetworks({ networks: { hvnet1: net('10.250.204.9', 1400) }, bondings: {}, options: { connectivityTimeout: 120 } })
    .catch((e: unknown) => e);
  const ms = Math.round(performance.now() - t0);
  t.type(err, NetworkSetupError);
  const e = err as NetworkSetupError;
  t.comment(`message: ${e.message} (${ms} ms)`);
  t.equal(e.code, 29);
  t.match(e.message, /not run: the agent is stopping.*rolled back and verified/, 'the steps after the abort did not run');
  t.equal((e.data?.['rollback'] as RollbackReport).verified, true);
  t.ok(ms < 10_000, `no wait for the 120 s confirmation (${ms} ms)`);
  t.same(formatDiff(diff(before, await captureState(lab.ip, DEVICES))), [], 'state as before');
  t.match(nets.lastSetup, { outcome: 'rolledBack', code: 29, reason: 'applyFailed' });
  const refused = await nets.setupNetworks({ networks: { hvnet1: net('10.250.204.9') }, bondings: {}, options: { connectivityCheck: false } }).catch((x: unknown) => x);
  t.equal((refused as { code?: number }).code, 1006, 'a stopping agent starts no new change (1006)');
  t.match(nets.lastSetup, { outcome: 'refused', code: 1006 });
  t.same(formatDiff(diff(before, await captureState(lab.ip, DEVICES))), [], 'nothing changed');
});

t.test('a rollback past its deadline starts nothing more and is reported NOT verified, within its bound', async (t) => {
  // The rollback re-adds the old address slowly (2.5 s, as a wedged driver would); its deadline is 2 s.
  // The deadline also covers the state reads before that step: 0.5 s was passed before the first
  // step on a loaded machine, so the deadline leaves room for them and the slow step still crosses it.
  const [DEADLINE_MS, SLOW_MS] = [2_000, 2_500];
  const slow: Runner = async (argv, opts) => {
    if (argv.includes('addr') && argv.includes('add') && argv.includes('10.250.204.2/24')) await sleep(SLOW_MS);
    return runCommand(argv, opts);
  };
  const nets = lab.networks({ ip: new Ip({ netns: lab.host, runner: slow, log: testLog }), rollbackTimeoutMs: DEADLINE_MS });
  const t0 = performance.now();
  const err = await nets.setupNetworks({ networks: { hvnet1: net('10.250.204.11') }, bondings: {}, options: { connectivityTimeout: 0 } })
    .catch((e: unknown) => e);
  const ms = Math.round(performance.now() - t0);
  t.type(err, NetworkRollbackError, 'never reported as verified');
  const rb = (err as NetworkRollbackError).data?.['rollback'] as RollbackReport;
  t.comment(`rollback ${rb.ms} ms: ${rb.steps.join('; ')}; errors: ${rb.errors.join('; ')}; diff: ${rb.diff.join('; ')}`);
  t.ok(rb.errors.some((x) => new RegExp(`rollback deadline \\(${DEADLINE_MS} ms\\) passed: ip .*route.* and what follows not run`).test(x)), 'the deadline is reported with the first step it skipped');
  t.equal(rb.attempts, 1, 'no second pass after the deadline');
  t.ok(rb.diff.some((d) => d.includes('default')), 'the default route the rollback did not get to is in the diff');
  t.ok(rb.ms < DEADLINE_MS + SLOW_MS + 2000, `the rollback stopped near its deadline plus the command in flight (${rb.ms} ms)`);
  t.ok(nets.settleBoundMs() >= DEADLINE_MS, 'the stop wait covers the rollback deadline');
  t.comment(`whole call ${ms} ms`);
  // Repair with a working runner.
  await lab.networks().setupNetworks({ networks: { hvnet1: net('10.250.204.2') }, bondings: {}, options: { connectivityCheck: false } });
  t.ok(await lab.ping('10.250.204.2'), 'repaired');
});
