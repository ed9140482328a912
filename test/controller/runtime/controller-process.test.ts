// The controller daemon as it runs: a real hostvisor-controller process (SQLite store, its own
// CA) and a real agent enrolled with a token. The host goes from Installing to Up with its
// stats through the runtime's links and health monitor, each transition in the audit log; after
// a kill -9 and a restart of the controller, the host is followed again from its stored record.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { scratchDir, freePort, startAgent, stopChild } from '../../agent/harness.js';
import { enroll } from '../../../agent/cli/enroll.js';
import { ApiClient, loadCredentials } from '../../../controller/cli/api-client.js';
import type { Host } from '../../../controller/model/hosts.js';
import type { Event } from '../../../controller/model/events.js';

const dir = scratchDir('hv-ctl-proc-');
const port = await freePort();
const url = `https://localhost:${port}`;

function startController(): ChildProcess {
  const child = spawn(process.execPath, ['dist/controller/main.js', '--port', String(port), '--listen', '127.0.0.1', '--db', join(dir, 'c.db'),
    '--pki', join(dir, 'pki'), '--admin-creds', join(dir, 'admin'), '--read-only-creds', join(dir, 'ro'), '--log-level', 'warn'],
  { stdio: ['ignore', 'ignore', process.env.HV_TEST_LOG ? 'inherit' : 'ignore'] });
  return child;
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try { const v = await probe(); if (v !== undefined) return v; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within ${ms} ms${last ? ` (${(last as Error).message})` : ''}`);
}

let controller = startController();
t.teardown(() => stopChild(controller, 5_000));
const api = await until('admin credentials and the API', 30_000, async () => {
  const c = new ApiClient(new URL(url), loadCredentials(join(dir, 'admin')));
  await c.call('GET', '/api/v1/hosts');
  return c;
});

t.test('an enrolled agent turns Up with its stats, and the controller follows it again after kill -9 and restart', async (t) => {
  const agentPort = await freePort();
  const tok = await api.call<{ token: string }>('POST', '/api/v1/hosts', { name: 'h1', address: 'localhost', port: agentPort });
  const pkiDir = join(dir, 'agent-pki');
  await enroll({ controller: url, token: tok.token, pkiDir, name: 'h1' });
  const installing = (await api.call<Host[]>('GET', '/api/v1/hosts')).find((h) => h.name === 'h1');
  t.ok(installing && ['Installing', 'Connecting'].includes(installing.status), `before its agent runs: ${installing?.status}`);
  const agent = await startAgent({ 'pki.dir': pkiDir, 'pki.createDevCa': false, 'libvirt.uri': 'test:///default', 'rpc.port': agentPort });
  t.teardown(agent.stop);
  const up = await until('h1 Up', 30_000, async () => {
    const h = (await api.call<Host[]>('GET', '/api/v1/hosts')).find((x) => x.name === 'h1');
    return h?.status === 'Up' ? h : undefined;
  });
  t.ok(up.lastContact !== null, 'last contact recorded');
  t.ok(up.stats && up.stats.memTotalMiB > 0, `stats recorded (${up.stats?.memTotalMiB} MiB total)`);
  const { events } = await api.call<{ events: Event[] }>('GET', '/api/v1/events?since=0&limit=500');
  const statusEvents = events.filter((e) => e.kind === 'host.status' && e.subjectId === up.id);
  t.ok(statusEvents.length >= 1, `the transition to Up is an event: ${statusEvents.map((e) => e.message).join(' | ')}`);

  controller.kill('SIGKILL');
  await new Promise((r) => controller.once('exit', r));
  controller = startController();
  const again = await until('h1 followed after the restart', 30_000, async () => {
    const h = (await api.call<Host[]>('GET', '/api/v1/hosts')).find((x) => x.name === 'h1');
    return h && h.lastContact !== null && h.lastContact > up.lastContact! && h.status === 'Up' ? h : undefined;
  });
  t.equal(again.status, 'Up', 'Up again, with a newer contact');

  await agent.stop();
  const lost = await until('h1 Connecting after its agent stopped', 30_000, async () => {
    const h = (await api.call<Host[]>('GET', '/api/v1/hosts')).find((x) => x.name === 'h1');
    return h && h.status !== 'Up' ? h : undefined;
  });
  t.equal(lost.status, 'Connecting', 'a stopped agent makes the host Connecting first');
});
