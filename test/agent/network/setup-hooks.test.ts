// The setupNetworks hook adapter and the call timeout, without namespaces:
// real hook scripts run by the real runner (a Hooks with its inventory).
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hooks } from '../../../agent/hooks/hooks.js';
import { silentLogger } from '../../../agent/log.js';
import { networkSetupHooks } from '../../../agent/network/hooks.js';
import { setupNetworksTimeoutMs } from '../../../agent/network/handlers.js';
import { HookError } from '../../../api/errors.js';

async function hooksWith(scripts: Record<string, string>): Promise<{ hooks: Hooks; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'hv-nethook-'));
  chmodSync(dir, 0o755);
  for (const [point, text] of Object.entries(scripts)) {
    mkdirSync(join(dir, point), { mode: 0o755 });
    writeFileSync(join(dir, point, '50_x'), text, { mode: 0o755 });
  }
  const hooks = new Hooks({ dir, timeoutMs: 10_000, outputCapBytes: 4096, pythonPath: '/nonexistent', runDir: join(dir, 'run'), log: silentLogger });
  await hooks.start();
  t.teardown(async () => { await hooks.stop(); rmSync(dir, { recursive: true, force: true }); });
  return { hooks, dir };
}

const request = { networks: { n1: { nic: 'eth9' } }, bondings: {} };

t.test('no before_network_setup scripts: no before step (the request is not validated twice)', async (t) => {
  const { hooks } = await hooksWith({});
  t.equal(networkSetupHooks(hooks).before, undefined);
});

t.test('before_network_setup: what the script leaves under "request" is the new request', async (t) => {
  const { hooks } = await hooksWith({ before_network_setup: '#!/bin/sh\nsed -i \'s/eth9/eth7/\' "$_hook_json"\n' });
  t.same(await networkSetupHooks(hooks).before!(request), { networks: { n1: { nic: 'eth7' } }, bondings: {} });
});

t.test('before_network_setup that leaves no request object, or fails, aborts with 78', async (t) => {
  const { hooks } = await hooksWith({ before_network_setup: '#!/bin/sh\necho \'{"networks": {}}\' > "$_hook_json"\n' });
  const e = await networkSetupHooks(hooks).before!(request).catch((x: unknown) => x);
  t.type(e, HookError);
  t.match((e as HookError).message, /left no "request" object/);
  const failing = await hooksWith({ before_network_setup: '#!/bin/sh\nexit 2\n' });
  const f = await networkSetupHooks(failing.hooks).before!(request).catch((x: unknown) => x);
  t.equal((f as HookError).code, 78);
});

t.test('after hooks get {"request": ...}; a failing one does not throw', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'hv-nethook-out-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const { hooks } = await hooksWith({
    after_network_setup: `#!/bin/sh\ncp "$_hook_json" ${out}/ok.json\n`,
    after_network_setup_fail: `#!/bin/sh\ncp "$_hook_json" ${out}/fail.json\nexit 1\n`,
  });
  await networkSetupHooks(hooks).after!(true, request);
  await networkSetupHooks(hooks).after!(false, request);
  t.same(JSON.parse(readFileSync(join(out, 'ok.json'), 'utf8')), { request });
  t.same(JSON.parse(readFileSync(join(out, 'fail.json'), 'utf8')), { request });
});

t.test('a setupNetworks may run for its connectivity wait and two DHCP waits beyond the request timeout', async (t) => {
  t.equal(setupNetworksTimeoutMs({ networks: {}, bondings: {} }, 60_000, 30_000), 60_000 + 4_000 + 60_000, 'the 4 s default');
  t.equal(setupNetworksTimeoutMs({ options: { connectivityTimeout: '120' } }, 60_000, 30_000), 60_000 + 120_000 + 60_000, 'VDSM engines send strings');
  t.equal(setupNetworksTimeoutMs({ options: { connectivityTimeout: 1e9 } }, 60_000, 0), 60_000 + 3_600_000, 'capped at an hour');
});
