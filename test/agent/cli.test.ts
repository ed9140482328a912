// hostvisor-client against a real agent.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { startAgent, REPO } from './harness.js';
import { parseParamArgs } from '../../agent/cli/hostvisor-client.js';

const run = promisify(execFile);
const CLI = join(REPO, 'bin', 'hostvisor-client');

t.test('key=value arguments: @file reads a file, JSON values stay typed', async (t) => {
  t.same(parseParamArgs(['a=1', 'b=true', 'c=x y', 'd={"k":[1]}', 'e=@f', 'f=01x', 'g=@s.json'], (p) => (p === 's.json' ? '{"n":2}' : 'FILE')),
    { a: 1, b: true, c: 'x y', d: { k: [1] }, e: 'FILE', f: '01x', g: { n: 2 } });
  t.throws(() => parseParamArgs(['novalue']), /expected key=value/);
});

t.test('the CLI prints results as JSON and exits 2 with the error code on failure', async (t) => {
  const { config, stop } = await startAgent();
  t.teardown(stop);
  const base = ['--port', String(config['rpc.port']), '--pki', config['pki.dir']];
  const ok = await run(CLI, [...base, 'Host', 'getVMList'], { timeout: 20_000 });
  t.ok(Array.isArray(JSON.parse(ok.stdout).vmList));
  const bad = await run(CLI, [...base, 'VM', 'pause', 'vmID=nope'], { timeout: 20_000 }).catch((e: { code: number; stdout: string }) => e);
  t.equal((bad as { code: number }).code, 2, 'non-zero exit');
  t.equal(JSON.parse((bad as { stdout: string }).stdout).error.code, -32602, 'the error code is printed');
});
