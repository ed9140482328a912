// test/lab/programs.tsv is the one list of the external programs we run: the
// source runs nothing that is not on it, setup.sh installs its packages, and
// scripts/check-programs.sh stops `npm test` naming the package of a missing one.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseProgramList, scanFile, scanTree, unlisted, type Use } from './programs/scan.js';
import { basename } from './programs/shell-scan.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const LIST_FILE = join(REPO, 'test', 'lab', 'programs.tsv');
const list = parseProgramList(readFileSync(LIST_FILE, 'utf8'));
const names = (uses: readonly Use[]): string[] => [...new Set(uses.map((u) => u.program))].sort();

function bash(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ rc: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', args, { cwd: REPO, timeout: 30_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ rc: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

t.test('the list is well formed: one row per program, a Debian package name or "-" each', async (t) => {
  t.ok(list.length > 50, `${list.length} rows`);
  const problems: string[] = [];
  const seen = new Map<string, number>();
  for (const row of list) {
    if (seen.has(row.program)) problems.push(`line ${row.line}: ${row.program} again (first on line ${seen.get(row.program)})`);
    seen.set(row.program, row.line);
    if (!/^(-|[a-z0-9][a-z0-9+.-]+)$/.test(row.package)) problems.push(`line ${row.line}: package "${row.package}"`);
    if (!/^(\/\S+|[A-Za-z0-9][A-Za-z0-9._+-]*)$/.test(row.program)) problems.push(`line ${row.line}: "${row.program}" is neither a name nor an absolute path`);
  }
  t.same(problems, []);
  const pkgOf = (p: string): string | undefined => list.find((r) => r.program === p)?.package;
  t.equal(pkgOf('xmllint'), 'libxml2-utils', 'xmllint (virt-xml-validate needs it) is on the list, from libxml2-utils');
  t.equal(pkgOf('node'), '-', 'Node.js is a prerequisite, not a package setup.sh installs');
});

t.test('every program the source runs is on the list', async (t) => {
  const uses = scanTree(REPO);
  // The scan must see the programs we know are run, or a broken scan would pass by finding nothing.
  const files = (p: string): string[] => uses.filter((u) => basename(u.program) === p).map((u) => u.file);
  t.ok(files('qemu-img').includes('agent/storage/qemu-img.ts'), 'qemu-img in the agent');
  t.ok(files('lvm').includes('agent/storage/lvm.ts'), 'lvm in the agent');
  t.ok(files('openssl').includes('agent/pki/dev-ca.ts'), 'openssl in the dev CA');
  t.ok(files('virt-xml-validate').includes('test/hooks/shipped-hooks-unit.test.ts'), 'virt-xml-validate in the hook tests');
  t.ok(files('apt-get').includes('test/lab/setup.sh'), 'apt-get in setup.sh');
  t.ok(files('ip').includes('agent/network/dhcp.ts'), 'ip in the DHCP lease script embedded in the agent');
  t.ok(files('ps').includes('test/hooks/hooking_test.py'), "ps in a Python test's sh -c");
  t.ok(files('pkg-config').includes('agent/libvirt/native/binding.gyp'), 'pkg-config in binding.gyp');
  t.ok(names(uses).length > 60, `${names(uses).length} programs found in the source`);
  const missing = unlisted(uses, list);
  t.same(missing.map((u) => `${u.file}:${u.line}: ${u.program}`), [], 'not on test/lab/programs.tsv (add a row with its Debian package)');
});

t.test('the scan reads TypeScript spawns: child_process, the runner, argv methods, embedded scripts', async (t) => {
  const src = `
import { spawn, execFile as ef, execSync } from 'node:child_process';
import * as cp from 'node:child_process';
import { promisify } from 'node:util';
import { run, runProcess as rp } from '../process.js';
const P = promisify(ef);
const TOOL = 'tool-g';
spawn('tool-a', ['x']);
ef('/usr/bin/tool-b', []);
await P('tool-c', ['--version']);
cp.spawnSync('tool-d');
execSync('tool-e --flag | tool-f');
spawn(TOOL);
await run(['tool-h', 'arg'], { timeoutMs: 1 });
await rp(['tool-i'], { timeoutMs: 1 });
await this.runner(['tool-j'], opts);
await (o.runner ?? run)(['tool-k'], opts);
host.spawn(['tool-l', 'x']);
lab.spawnInPeer(['tool-m'], log);
resolveTool('tool-n');
spawn('ip', ['netns', 'exec', 'ns1', 'tool-o', '-x']);
spawn('/bin/sh', ['-c', 'tool-p a && tool-q b']);
const hook = '#!/bin/bash\\ntool-r "$1"\\n'; // a script: its interpreter and its commands
const py = \`#!/usr/bin/python3
import os\`;
await run('tool-s', ['info']);
// Not programs:
spawn(process.execPath, ['x.js']);
await hooks.run('before_vm_start', { data: '' });
await ip.run(['link', 'del', 'dev', 'x']);
await probes.run('read', 5, () => 1);
execFile('tool-t');
`;
  t.same(names(scanFile('x.ts', src)),
    ['/bin/bash', '/bin/sh', '/usr/bin/python3', '/usr/bin/tool-b', 'ip', ...'acdefghijklmnopqrs'.split('').map((c) => `tool-${c}`)].sort(),
    'tool-t: execFile was not imported in this file, so it is not child_process');
});

t.test('the scan reads shell scripts: commands, not builtins, functions, keywords or data', async (t) => {
  const script = `#!/bin/bash
set -euo pipefail
PY=/usr/bin/python3
ARR=(not-a-cmd1 not-a-cmd2
     not-a-cmd3)
say() { echo "$*"; }
trap 'cmd-trap -f "$x"' EXIT
if ! out=$(cmd-subst a | cmd-pipe b); then say no; fi
for f in not-a-cmd4 not-a-cmd5; do cmd-loop "$f"; done
case "$1" in
  not-a-pattern|other) cmd-case ;;
  *) [ -x "$PY" ] && [[ $1 =~ ^(a|b)$ ]] ;;
esac
(( n = 1 + 2 ))
cat <<EOF | cmd-after-heredoc
not-a-cmd6 inside the here-document
EOF
exec 8>/tmp/lock
command -v not-a-cmd7 >/dev/null 2>&1
timeout -k 1 5 cmd-timed --x
setsid -f "$PY" x.py </dev/null >>log 2>&1 8>&-
nsenter --net="/run/netns/$ns" unshare --mount=x --propagation private /bin/bash y
x=\`cmd-backtick\` ; VAR=1 cmd-env-prefix
local v; v=$(( 3 + 4 ))
{ cmd-group; } >&2
"$undefined_var" arg
say done
`;
  t.same(names(scanFile('x.sh', script)), ['/bin/bash', '/usr/bin/python3', 'cat', 'cmd-after-heredoc', 'cmd-backtick', 'cmd-case',
    'cmd-env-prefix', 'cmd-group', 'cmd-loop', 'cmd-pipe', 'cmd-subst', 'cmd-timed', 'cmd-trap', 'nsenter', 'setsid', 'timeout', 'unshare'].sort());
  const lines = scanFile('x.sh', script).filter((u) => u.program === 'cmd-timed').map((u) => u.line);
  t.same(lines, [20], 'with the line it is on (here-document lines counted)');
});

t.test('the scan reads Python, systemd units and gyp files; a marked use is left out', async (t) => {
  const py = `#!/usr/bin/python3
import subprocess, os
subprocess.run(['py-a', '-x'])
rc, out, err = hooking.execCmd(['py-b'])
argv = ['py-c'] + argv
os.execvp('py-d', args)
hooking.execCmd(['sh', '-c', 'py-e -o sid= -p $$; echo $$'])
argv = ['py-f'] + argv  # not in programs.tsv: only for a test of the marker
`;
  t.same(names(scanFile('x.py', py)), ['/usr/bin/python3', 'py-a', 'py-b', 'py-c', 'py-d', 'py-e', 'sh']);
  t.same(names(scanFile('x.service', '[Service]\nExecStart=/usr/bin/unit-a --x\nExecStopPost=-unit-b\n')), ['/usr/bin/unit-a', 'unit-b']);
  t.same(names(scanFile('b.gyp', '{ "libraries": ["<!@(gyp-a --libs x)"], "x": ["<!(gyp-b -p \\"1\\")"] }')), ['gyp-a', 'gyp-b']);
});

t.test('setup.sh installs the packages of the list', async (t) => {
  const r = await bash(['test/lab/packages.sh']);
  t.equal(r.rc, 0, r.stderr);
  const want = [...new Set(list.map((row) => row.package).filter((p) => p !== '-'))];
  t.same(r.stdout.trim().split('\n'), want, 'packages.sh prints every package of the list once, in order');
  const setup = readFileSync(join(REPO, 'test', 'lab', 'setup.sh'), 'utf8');
  t.match(setup, /mapfile -t PACKAGES < <\(bash "\$HERE\/packages\.sh"\)/, 'setup.sh takes its packages from packages.sh');
});

t.test('check-programs.sh passes on this machine and stops naming the package of a missing program', async (t) => {
  const ok = await bash(['scripts/check-programs.sh']);
  t.equal(ok.rc, 0, `every program resolves here: ${ok.stderr}`);
  t.match(ok.stdout, /programs: all \d+ on test\/lab\/programs.tsv resolve/);

  const dir = mkdtempSync(join(tmpdir(), 'hv-programs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bad = join(dir, 'programs.tsv');
  writeFileSync(bad, '# a list with one program that is not installed\nsh\tdash\tshells\nhv-no-such-program\thv-no-such-package\tthis test\n' +
    '/nonexistent/*/file\thv-other-package\tthis test\nhv-no-such-prerequisite\t-\tthis test\n');
  const r = await bash(['scripts/check-programs.sh'], { HOSTVISOR_PROGRAMS: bad });
  t.equal(r.rc, 1, 'a non-zero exit');
  t.match(r.stderr, 'MISSING hv-no-such-program from the Debian package hv-no-such-package');
  t.match(r.stderr, 'MISSING /nonexistent/*/file from the Debian package hv-other-package');
  t.match(r.stderr, 'MISSING hv-no-such-prerequisite (a prerequisite, not installed by setup.sh');
  t.match(r.stderr, /3 of 4 programs .* missing; install: apt-get install --no-install-recommends hv-no-such-package hv-other-package/);
  const test = readFileSync(join(REPO, 'scripts', 'test.sh'), 'utf8');
  t.ok(test.indexOf('bash scripts/check-programs.sh') > test.indexOf('bash test/lab/setup.sh') &&
    test.indexOf('bash scripts/check-programs.sh') < test.indexOf('scripts/run-tests.sh'), 'npm test checks right after setup, before any test runs');
});
