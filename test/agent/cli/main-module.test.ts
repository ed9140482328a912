// The CLIs run when started through a symlink (as /usr/bin/hostvisor is, or a
// symlinked install folder), not only by their real path: before, the guard
// compared import.meta.url with argv[1] as typed, so `hostvisor` through a
// symlink did nothing and exited 0.
import t from 'tap';
import { execFile } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isMainModule } from '../../../agent/cli/main-module.js';
import { REPO, scratchDir } from '../harness.js';

const CLI = join(REPO, 'dist', 'agent', 'cli');

function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { timeout: 30_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

t.test('hostvisor through a symlink to its file runs: usage on --help, exit 2 without a command', async (t) => {
  const dir = scratchDir('hv-cli-link-');
  const link = join(dir, 'hostvisor');
  symlinkSync(join(CLI, 'hostvisor.js'), link);
  const help = await run([link, '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /usage: hostvisor <command>/, 'it printed its usage');
  const bare = await run([link]);
  t.equal(bare.code, 2, 'no command: exit 2, not a silent 0');
  t.match(bare.stderr, /no command given/);
});

t.test('through a symlinked folder, and hostvisor-client through a symlink, too', async (t) => {
  const dir = scratchDir('hv-cli-link-');
  symlinkSync(CLI, join(dir, 'cli'));
  const viaFolder = await run([join(dir, 'cli', 'hostvisor.js'), '--help']);
  t.match(viaFolder.stdout, /usage: hostvisor <command>/);
  const client = join(dir, 'hostvisor-client');
  symlinkSync(join(CLI, 'hostvisor-client.js'), client);
  const help = await run([client, '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /usage: hostvisor-client/);
});

t.test('isMainModule: the real file, a symlink to it, another file, no argv[1]', async (t) => {
  const file = join(CLI, 'hostvisor.js');
  const url = pathToFileURL(file).href;
  const link = join(scratchDir('hv-cli-link-'), 'hv');
  symlinkSync(file, link);
  t.ok(isMainModule(url, file));
  t.ok(isMainModule(url, link));
  t.notOk(isMainModule(url, join(CLI, 'hostvisor-client.js')));
  t.notOk(isMainModule(url, undefined));
  t.notOk(isMainModule(url, '/nonexistent/hostvisor.js'));
});
