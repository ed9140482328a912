// `hostvisor restore-networks`, the real command (bin/hostvisor) run as a
// child process inside a throwaway "host" namespace (`ip netns exec`), as the
// boot oneshot runs it: two networks persisted after a third was removed, an
// unpersisted network and MTU change on top, a simulated reboot (links deleted,
// nics bare), then the command brings back exactly the persisted state and the
// unpersisted network is gone. Also: a run cut short by its timeout, a nic
// that vanished (exit 1, no marker), nothing persisted, a bad config file.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SETTINGS } from '../../../agent/config/settings.js';
import { devicesOf } from '../../../agent/network/apply.js';
import { captureState, diff, formatDiff } from '../../../agent/network/state.js';
import type { RestoreNetworksReport } from '../../../agent/cli/restore-networks.js';
import { REPO } from '../harness.js';
import { netLab, type NetLab } from '../network/netlab.js';

const BIN = join(REPO, 'bin', 'hostvisor');
const NO_CHECK = { connectivityCheck: false };
const v4 = (ipaddr: string, gateway?: string) => ({ bootproto: 'none' as const, ipaddr, prefix: 24, ...(gateway ? { gateway } : {}) });

let lab: NetLab;
t.before(async () => {
  lab = await netLab('rcli', 3);
  for (const [i, p] of lab.peers.entries()) await lab.inPeer(['ip', 'addr', 'add', `10.250.6${3 + i}.254/24`, 'dev', p]);
});
t.teardown(async () => { await lab?.cleanup(); });

interface Run { code: number | null; report: RestoreNetworksReport; stderr: string; ms: number }

/** The agent.toml the command reads: this lab's netconf, run dir and resolv.conf. */
async function configFile(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const cfg: Record<string, unknown> = {
    'network.confDir': join(lab.dir, 'netconf'), 'network.runDir': join(lab.dir, 'run'),
    'network.resolvConf': join(lab.dir, 'resolv.conf'), ...extra,
  };
  const file = join(lab.dir, name);
  await writeFile(file, Object.entries(cfg).map(([k, v]) => `"${k}" = ${JSON.stringify(v)}`).join('\n') + '\n');
  return file;
}

/** bin/hostvisor ARGS inside the host namespace; bounded. */
function hostvisor(args: string[], inHost = true): Promise<Run> {
  const argv = inHost ? ['ip', 'netns', 'exec', lab.host, BIN, ...args] : [BIN, ...args];
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: 60_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      let report = {} as RestoreNetworksReport;
      try { report = JSON.parse(stdout) as RestoreNetworksReport; } catch { /* not JSON: the assertions say so */ }
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, report, stderr, ms: Math.round(performance.now() - t0) });
    });
  });
}

/** A reboot as far as networking goes: our bridges gone, nics down and bare at the default MTU. */
async function simulateReboot(bridges: string[]): Promise<void> {
  for (const br of bridges) await lab.ip.run(['link', 'del', 'dev', br]);
  for (const nic of lab.nics) {
    await lab.ip.run(['addr', 'flush', 'dev', nic]);
    await lab.ip.run(['link', 'set', 'dev', nic, 'mtu', '1500']);
    await lab.ip.run(['link', 'set', 'dev', nic, 'down']);
  }
}

t.test('restore-networks brings back exactly the persisted state and removes what was not persisted', async (t) => {
  const nets = lab.networks();
  const marker = join(lab.dir, 'nets_restored');
  const config = await configFile('agent.toml');
  // Three networks, persisted; then one removed, and that persisted too.
  await nets.setupNetworks({
    networks: {
      hvnet1: { nic: 'hvnic0', defaultRoute: true, ipv4: v4('10.250.63.1', '10.250.63.254') },
      hvnet2: { nic: 'hvnic1', bridged: false, mtu: 1400, ipv4: v4('10.250.64.1') },
      hvnet3: { nic: 'hvnic2', ipv4: v4('10.250.65.1') },
    },
    bondings: {}, options: NO_CHECK,
  });
  await nets.setSafeNetworkConfig();
  await nets.setupNetworks({ networks: { hvnet3: { remove: true } }, bondings: {}, options: NO_CHECK });
  await nets.setSafeNetworkConfig();
  const safe = (await nets.store.safe())!;
  t.same(Object.keys(safe.networks).sort(), ['hvnet1', 'hvnet2'], 'the removal is persisted');
  const scope = devicesOf(safe);
  const persisted = await captureState(lab.ip, scope);
  t.ok(persisted.routes.some((r) => r.dst === 'default' && r.gateway === '10.250.63.254' && r.dev === 'hvnet1'), 'the persisted state has the default route');

  // Not persisted: a network on the freed nic, and a new MTU on hvnet1.
  await nets.setupNetworks({
    networks: {
      hvnet4: { nic: 'hvnic2', ipv4: v4('10.250.65.1') },
      hvnet1: { nic: 'hvnic0', defaultRoute: true, mtu: 1300, ipv4: v4('10.250.63.1', '10.250.63.254') },
    },
    bondings: {}, options: NO_CHECK,
  });
  t.ok(await nets.netConfigDirty(), 'dirty before the reboot');
  t.ok(await lab.ping('10.250.65.1'), 'the unpersisted network works before the reboot');

  await simulateReboot(['hvnet1', 'hvnet4']);
  await writeFile(marker, 'stale\n'); // a marker from an earlier boot must not survive a failed run
  t.notOk(await lab.ping('10.250.63.1', 1), 'the host is unreachable after the "reboot"');

  // 1. A run cut short by network.restoreTimeoutMs: exit 1, the reason, no marker.
  const short = await hostvisor(['restore-networks', '--config', await configFile('short.toml', { 'network.restoreTimeoutMs': 1 }), '--marker', marker]);
  t.equal(short.code, 1, 'exit 1 when the restore does not finish in time');
  t.match(short.report, { ok: false, error: { message: /network\.restoreTimeoutMs/ } }, 'the report says why');
  t.notOk(existsSync(marker), 'no marker after a failed run');

  // 2. The real run.
  const t0 = Date.now();
  const run = await hostvisor(['restore-networks', '--config', config, '--marker', marker]);
  t.equal(run.code, 0, `exit 0${run.code ? `: ${run.stderr.slice(-2000)}` : ''}`);
  const r = run.report;
  t.comment(`restore-networks: ${r.ms} ms in the command, ${run.ms} ms with process start; ${r.steps.length} steps; phases ${JSON.stringify(r.phasesMs)}`);
  t.match(r, { ok: true, restored: true, confDir: join(lab.dir, 'netconf'), marker }, 'report: ok, restored');
  t.same(r.removedNetworks, ['hvnet4'], 'report: the unpersisted network is removed');
  t.same(r.networks, ['hvnet1', 'hvnet2'], 'report: the persisted networks are restored');
  t.ok(r.steps.includes('ip link add name hvnet1 type bridge stp_state 0'), 'report: the steps, as command lines (hvnet1 recreated)');
  t.ok(r.steps.some((s) => /route .*default.*10\.250\.63\.254/.test(s)), 'report: the default route step');
  t.ok(run.stderr.split('\n').some((l) => l.includes('"msg":"restore-networks done"')), 'structured log on stderr');

  const restored = await captureState(lab.ip, scope);
  t.same(formatDiff(diff(persisted, restored)), [], 'exactly the persisted state: links, MTUs, masters, addresses, routes');
  t.match(restored.links['hvnet1'], { kind: 'bridge', mtu: 1500, up: true }, 'hvnet1: the bridge is back with the persisted MTU, not the unpersisted 1300');
  t.match(restored.links['hvnic1'], { mtu: 1400, master: null }, 'hvnet2: bridgeless, MTU 1400');
  t.same(restored.addrs['hvnic1'], ['10.250.64.1/24']);
  const extra = await captureState(lab.ip, ['hvnet3', 'hvnet4', 'hvnic2']);
  t.notOk(extra.links['hvnet4'], 'no bridge for the unpersisted network');
  t.notOk(extra.links['hvnet3'], 'the removed network stays removed');
  t.same(extra.addrs['hvnic2'] ?? [], [], 'its nic has no address');
  t.equal(extra.links['hvnic2']?.master, null, 'its nic is in no bridge');
  t.ok(await lab.ping('10.250.63.1'), 'hvnet1 answers from the peer');
  t.ok(await lab.ping('10.250.64.1'), 'hvnet2 answers from the peer');
  t.notOk(await lab.ping('10.250.65.1', 1), 'the unpersisted address is gone');

  const booted = lab.networks(); // what the agent will read when it starts
  t.notOk(await booted.netConfigDirty(), 'running = safe after the restore');
  t.same(Object.keys((await booted.store.running()).networks).sort(), ['hvnet1', 'hvnet2']);
  const m = await readFile(marker, 'utf8');
  t.ok(Date.parse(m.trim()) >= t0 - 1000, `marker written by this run (${m.trim()})`);

  // 3. Run again at once: nothing to do, same state (the unit may be restarted).
  const again = await hostvisor(['restore-networks', '--config', config, '--marker', marker]);
  t.equal(again.code, 0);
  t.same(again.report.removedNetworks, []);
  t.same(formatDiff(diff(persisted, await captureState(lab.ip, scope))), [], 'a second run changes nothing');
});

t.test('a nic that vanished across the reboot: exit 1 with the error, no marker', async (t) => {
  const marker = join(lab.dir, 'nets_restored');
  t.ok(existsSync(marker), 'the marker of the previous good run is there');
  await simulateReboot(['hvnet1']);
  await lab.ip.run(['link', 'del', 'dev', 'hvnic1']); // takes its peer with it
  const run = await hostvisor(['restore-networks', '--config', await configFile('agent.toml'), '--marker', marker]);
  t.equal(run.code, 1, 'exit 1');
  t.match(run.report, { ok: false, error: { code: 29, message: /hvnic1/ } }, `the error names the nic: ${run.report.error?.message}`);
  t.notOk(existsSync(marker), 'no marker');
  t.ok(run.stderr.includes('"msg":"restore-networks failed"'), 'logged as a failure');
});

t.test('nothing persisted: the host is left alone, exit 0, marker written', async (t) => {
  const marker = join(lab.dir, 'empty-marker');
  const before = await captureState(lab.ip, ['hvnet1', 'hvnic0', 'hvnic2']);
  const run = await hostvisor(['restore-networks', '--config', await configFile('empty.toml', { 'network.confDir': join(lab.dir, 'none') }), '--marker', marker]);
  t.equal(run.code, 0);
  t.match(run.report, { ok: true, restored: false, steps: [], removedNetworks: [] });
  t.same(formatDiff(diff(before, await captureState(lab.ip, ['hvnet1', 'hvnic0', 'hvnic2']))), [], 'nothing changed');
  t.ok((await stat(marker)).isFile(), 'marker written');
});

t.test('usage and config errors exit 2 with the reason', async (t) => {
  const bad = join(lab.dir, 'bad.toml');
  await writeFile(bad, '"network.confDirr" = "/x"\n');
  const r1 = await hostvisor(['restore-networks', '--config', bad], false);
  t.equal(r1.code, 2);
  t.match(r1.stderr, /unknown setting "network\.confDirr"/);
  const r2 = await hostvisor(['restore-nets'], false);
  t.equal(r2.code, 2);
  t.match(r2.stderr, /unknown command "restore-nets"[\s\S]*usage: hostvisor/);
  const r3 = await hostvisor(['--help'], false);
  t.equal(r3.code, 0);
});

/** KEY=VALUE lines of a unit file; repeated keys are joined with a space. */
async function unitFile(name: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const line of (await readFile(join(REPO, 'packaging', 'systemd', name), 'utf8')).split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = out[m[1]!] ? `${out[m[1]!]} ${m[2]}` : m[2]!;
  }
  return out;
}

t.test('the oneshot unit runs this command before hostvisord, which wants it', async (t) => {
  const net = await unitFile('hostvisor-network.service');
  const agent = await unitFile('hostvisord.service');
  t.match(net, { Type: 'oneshot', RemainAfterExit: 'yes', KillMode: 'process' });
  const exec = /^\/usr\/bin\/node \/usr\/lib\/hostvisor\/(\S+) (.*)$/.exec(net['ExecStart'] ?? '');
  t.ok(exec, `ExecStart runs node on the installed tree: ${net['ExecStart']}`);
  t.ok(existsSync(join(REPO, exec![1]!)), `${exec![1]} exists in the build`);
  t.equal(exec![2], 'restore-networks --config /etc/hostvisor/agent.toml', 'the same config file as the agent');
  t.equal(agent['ExecStart']?.split(' ').slice(-2).join(' '), '--config /etc/hostvisor/agent.toml');
  t.match(net['Before'], /\bhostvisord\.service\b/);
  t.match(net['Before'], /\blibvirtd\.service\b/, 'before libvirtd: autostarted guests find their bridges');
  t.match(agent['Wants'], /\bhostvisor-network\.service\b/);
  t.match(agent['After'], /\bhostvisor-network\.service\b/);
  t.ok(Number(net['TimeoutStartSec']) * 1000 > SETTINGS['network.restoreTimeoutMs'].default, 'systemd waits longer than the command\'s own timeout');
  const verify = await new Promise<{ code: number | null; out: string } | undefined>((resolve) => {
    execFile('systemd-analyze', ['verify', '--man=no', join(REPO, 'packaging', 'systemd', 'hostvisor-network.service'), join(REPO, 'packaging', 'systemd', 'hostvisord.service')],
      { timeout: 30_000 }, (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') resolve(undefined);
        else resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: stdout + stderr });
      });
  });
  if (!verify) { t.comment('systemd-analyze is not installed: unit syntax not checked'); return; }
  t.equal(verify.code, 0, 'systemd-analyze verify accepts both units');
  t.equal(verify.out.trim(), '', `no warnings${verify.out.trim() ? `: ${verify.out.trim()}` : ''}`);
});
