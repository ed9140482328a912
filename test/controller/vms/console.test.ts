// Issue 13, console: POST /vms/{id}/console on a controller built as main.ts builds it, with a
// real agent on the machine's libvirtd and the tiny guest with a VNC display. The answer's host,
// port and one-time password open the display with an RFB handshake before the TTL and not after;
// the event names the ticket but not its password; a VM not running is 409, an unknown one 404,
// a bad TTL 400; hostvisor-ctl vms console prints the vnc:// URL and password, or hands them to
// remote-viewer in a connection file only the user can read.
import t from 'tap';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { AgentProcess } from '../../api/client/agent-process.js';
import { tinyGuest } from '../../agent/harness.js';
import { rfbHandshake } from '../../lab/rfb-client.js';
import { credentialsOf } from '../agents/test-hosts.js';
import { startController } from './controller-harness.js';

t.setTimeout(180_000);
const run = promisify(execFile);
const CTL = join(import.meta.dirname, '..', '..', '..', '..', 'bin', 'hostvisor-ctl');
const settings = resolveDecisionSettings({
  pollIntervalMs: 500, pollTimeoutMs: 500, nonResponsiveGraceMs: 3_000, vmListIntervalMs: 1_000,
  agentKeepaliveMs: 1_000, agentReconnectMaxMs: 500, agentConnectTimeoutMs: 2_000, agentCallTimeoutMs: 10_000, vmStartTimeoutMs: 30_000,
});

// The production default vm.displayListen (0.0.0.0): the controller answers the host's address.
const agent = await AgentProcess.start({ overrides: { 'libvirt.uri': 'qemu:///system' } });
const c = await startController({ settings, credentials: credentialsOf(agent) });
const NAME = `hv-ctl-console-${process.pid}`;
// One teardown, in order: the VM (through the API, else libvirt itself), then the controller, then the agent.
t.teardown(async () => {
  const r = await c.api.call('POST', `/api/v1/vms/${vmId}/stop`, { body: {} }).catch(() => undefined);
  if (r?.status === 202) await c.jobEnd(r.headers.location as string, 30_000).catch(() => {});
  await run('virsh', ['-c', 'qemu:///system', 'destroy', NAME], { timeout: 30_000 }).catch(() => {});
  await c.close();
  await agent.stop();
});
const { api, until, jobEnd } = c;
const cluster = await api.store.clusters.get('default');
const host = await api.store.hosts.create({ name: 'console-host', address: '127.0.0.1', port: agent.config['rpc.port'], clusterId: cluster.id, certFingerprint: 'test' });
c.runtime.kick();
await until(`/api/v1/hosts/${host.id}`, (a) => a.body.status === 'Up', 15_000, 'the host Up');

async function defineVm(name: string): Promise<string> {
  const { spec } = tinyGuest(name, { graphics: 'vnc' });
  const r = await api.call('POST', '/api/v1/vms', { body: { name, spec } });
  if (r.status !== 201) throw new Error(`define ${name}: ${r.status} ${r.text}`);
  return r.body.id as string;
}

let vmId = '';
vmId = await defineVm(NAME);
const started = await api.call('POST', `/api/v1/vms/${vmId}/start`, { body: {} });
const startJob = await jobEnd(started.headers.location as string, 60_000);
if (startJob.state !== 'succeeded') throw new Error(`start: ${JSON.stringify(startJob.error)}`);

t.test('a console ticket opens the VM display before its TTL and not after; the event keeps no password', async (t) => {
  const ttl = 5;
  const r = await api.call('POST', `/api/v1/vms/${vmId}/console`, { body: { ttlSeconds: ttl } });
  const at = Date.now();
  t.equal(r.status, 200, 'answered 200');
  const tk = r.body as { host: string; port: number; password: string; expiresAt: string; url: string; hostId: string };
  t.same([tk.host, tk.hostId, tk.url], ['127.0.0.1', host.id, `vnc://127.0.0.1:${tk.port}`], 'the host\'s address (the display listens on every address), its port, a vnc:// URL');
  t.equal(tk.password.length, 8, 'an 8-character password (VNC\'s limit)');
  t.ok(Math.abs(Date.parse(tk.expiresAt) - (at + ttl * 1000)) < 2_000, `expires at ${tk.expiresAt}`);
  const ok = await rfbHandshake(tk.host, tk.port, tk.password);
  t.ok(ok.ok, `RFB handshake with the ticket succeeds ${Date.now() - at} ms after it was issued (desktop "${ok.desktop?.name}")`);
  t.notOk((await rfbHandshake(tk.host, tk.port, 'nope')).ok, 'a wrong password fails');
  await new Promise((res) => setTimeout(res, Math.max(0, at + (ttl + 1.5) * 1000 - Date.now())));
  const late = await rfbHandshake(tk.host, tk.port, tk.password);
  t.notOk(late.ok, `after the TTL the same password fails (${late.reason})`);
  const { events } = (await api.call('GET', '/api/v1/events?limit=1000')).body as { events: Array<{ kind: string; subjectId: string; message: string }> };
  const ev = events.find((e) => e.kind === 'vm.console-opened' && e.subjectId === vmId);
  t.ok(ev, `an event says a console was opened: ${ev?.message}`);
  t.notMatch(JSON.stringify(ev ?? {}), tk.password, 'without the password');
});

t.test('refusals: a VM not running is 409, an unknown VM 404, a TTL out of range 400', async (t) => {
  const down = await defineVm(`${NAME}-down`);
  const r = await api.call('POST', `/api/v1/vms/${down}/console`, { body: {} });
  t.same([r.status, r.body.code], [409, 'Conflict'], r.body.message);
  const unknown = await api.call('POST', '/api/v1/vms/00000000-0000-4000-8000-000000000000/console', { body: {} });
  t.equal(unknown.status, 404);
  const bad = await api.call('POST', `/api/v1/vms/${vmId}/console`, { body: { ttlSeconds: 1 } });
  t.same([bad.status, bad.body.details.field], [400, 'body.ttlSeconds'], bad.body.message);
});

t.test('hostvisor-ctl vms console prints the URL and password, or starts remote-viewer on a private connection file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-console-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const base = ['--url', `https://localhost:${api.port}`, '--creds', join(api.dir, 'admin')];
  const printed = await run(CTL, [...base, 'vms', 'console', NAME, '--no-viewer', '--ttl', '60'], { timeout: 60_000 });
  const url = /vnc:\/\/127\.0\.0\.1:(\d+)/.exec(printed.stdout);
  const pw = /password: (\S+)/.exec(printed.stdout)?.[1];
  t.ok(url && pw, `prints the URL and password:\n${printed.stdout}`);
  t.ok((await rfbHandshake('127.0.0.1', Number(url![1]), pw!)).ok, 'and they open the console');

  // A remote-viewer of our own on PATH records what it was given.
  const seen = join(dir, 'seen');
  // Like virt-viewer with delete-this-file=1, it deletes the file once read.
  writeFileSync(join(dir, 'remote-viewer'), `#!/bin/sh\nstat -c %a "$1" > ${seen}.mode\necho "$1" > ${seen}.path\ncat "$1" > ${seen}.tmp\nrm -f "$1"\nmv ${seen}.tmp ${seen}\n`);
  chmodSync(join(dir, 'remote-viewer'), 0o755);
  const launched = await run(CTL, [...base, 'vms', 'console', NAME, '--ttl', '60'], { timeout: 60_000, env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
  t.match(launched.stdout, /remote-viewer started on vnc:\/\/127\.0\.0\.1:\d+/);
  t.notMatch(launched.stdout, /password/, 'the password is not printed when a viewer takes it');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) { try { statSync(seen); break; } catch { await new Promise((r) => setTimeout(r, 100)); } }
  const vv = readFileSync(seen, 'utf8');
  t.match(vv, /^\[virt-viewer\]\ntype=vnc\nhost=127\.0\.0\.1\nport=\d+\npassword=\S{8}\n/, 'a virt-viewer connection file');
  t.equal(readFileSync(`${seen}.mode`, 'utf8').trim(), '600', 'readable by the user only');
  const vvPath = readFileSync(`${seen}.path`, 'utf8').trim();
  t.equal(dirname(vvPath), tmpdir(), 'the file is straight in the temp directory: once the viewer deletes it, nothing is left behind');
  const vvPw = /password=(\S+)/.exec(vv)![1]!;
  t.ok((await rfbHandshake('127.0.0.1', Number(/port=(\d+)/.exec(vv)![1]), vvPw)).ok, 'its password opens the console');
});
