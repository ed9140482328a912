// hostvisord.service is the one place the agent's node flags are set: agents
// the harness spawns (tests, benchmarks) and `npm start` run with the same.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, spawnAgent, stopChild, testConfig, unitLaunch } from '../harness.js';

t.test("the unit's ExecStart= gives node flags; scripts/unit-node-flags.sh reads the same ones", async (t) => {
  const { nodeArgs } = unitLaunch();
  t.ok(nodeArgs.includes('--max-semi-space-size=1'), `node flags: ${nodeArgs.join(' ')}`);
  const printed = await new Promise<string>((resolve, reject) => {
    execFile('bash', [join(REPO, 'scripts', 'unit-node-flags.sh')], { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  t.same(printed.trim().split(/\s+/), nodeArgs, 'the shell scripts (npm start, npm run bench:rpc) start the agent with them too');
});

t.test('an agent spawned by the harness runs with the unit\'s node flags and environment', async (t) => {
  const { nodeArgs, env } = unitLaunch();
  const { child } = await spawnAgent(await testConfig());
  t.teardown(() => stopChild(child, 10_000));
  const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
  t.same(argv.slice(1, 1 + nodeArgs.length), nodeArgs, `argv: ${argv.join(' ')}`);
  const environ = readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0');
  for (const [k, v] of Object.entries(env)) t.ok(environ.includes(`${k}=${v}`), `${k}=${v} in its environment`);
});
