// The hook runner with real scripts and processes.
import t from 'tap';
import { chmodSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { HookRunner } from '../../../agent/hooks/runner.js';
import { silentLogger } from '../../../agent/log.js';
import { addHook, hookTree } from './hook-fixtures.js';
import { HookError } from '../../../api/errors.js';

function runner(root: string, timeoutMs = 5000): HookRunner {
  return new HookRunner({ dir: root, timeoutMs, outputCapBytes: 1024, pythonPath: '/nonexistent', runDir: join(root, 'run'), log: silentLogger });
}

t.test('scripts run in sorted order on one file, and the file is read back', async (t) => {
  const root = hookTree();
  addHook(root, 'after_get_caps', '20_b', 'echo "$(cat "$_hook_json") b" > "$_hook_json"');
  addHook(root, 'after_get_caps', '10_a', 'echo "$(cat "$_hook_json") a" > "$_hook_json"');
  addHook(root, 'after_get_caps', '30_not_exec', 'echo never > "$_hook_json"', 0o644);
  const r = await runner(root).run('after_get_caps', { data: 'x' });
  t.equal(r.data.trim(), 'x a b');
  t.equal(r.runs.length, 2, 'a non-executable file is not a hook');
  t.notOk(r.failed);
});

t.test('exit 1 continues the chain, exit 2 stops it, exit >2 is a failure that continues', async (t) => {
  const root = hookTree();
  addHook(root, 'before_vm_pause', '10', 'echo one >> "$_hook_domxml"; exit 1');
  addHook(root, 'before_vm_pause', '20', 'echo two >> "$_hook_domxml"; exit 3');
  addHook(root, 'before_vm_pause', '30', 'echo three >> "$_hook_domxml"; exit 2');
  addHook(root, 'before_vm_pause', '40', 'echo four >> "$_hook_domxml"');
  const r = await runner(root).run('before_vm_pause', { data: '' });
  t.same(r.data.trim().split('\n'), ['one', 'two', 'three']);
  t.same(r.runs.map((x) => x.rc), [1, 3, 2]);
  t.ok(r.failed);
  const err = await runner(root).runRaising('before_vm_pause', { data: '' }).catch((e: unknown) => e);
  t.type(err, HookError);
  t.equal((err as HookError).code, 78);
  t.match((err as HookError).message, /10: exit 1; 20: exit 3; 30: exit 2/);
});

t.test('a hook that sleeps forever is killed at its timeout, with its whole process group', async (t) => {
  const root = hookTree();
  const pidFile = join(root, 'child.pid');
  addHook(root, 'after_vm_start', '10_sleep', `sleep 300 & echo $! > ${pidFile}; wait`);
  const t0 = Date.now();
  const r = await runner(root, 500).run('after_vm_start', { data: '<domain/>' });
  t.ok(Date.now() - t0 < 3000, 'returned soon after the timeout');
  t.equal(r.runs[0]?.timedOut, true);
  t.ok(r.failed);
  const child = Number(readFileSync(pidFile, 'utf8'));
  await new Promise((res) => setTimeout(res, 100));
  // Gone, or a zombie waiting for init to reap it (slow on these machines): not running either way.
  let state = 'gone';
  try { state = readFileSync(`/proc/${child}/status`, 'utf8').match(/^State:\s+(\S)/m)?.[1] ?? 'gone'; } catch { /* gone */ }
  t.ok(state === 'gone' || state === 'Z', `the background sleep it started was killed too (state ${state})`);
});

t.test('a hook that forks a daemon holding its stdout returns at once', async (t) => {
  const root = hookTree();
  const pidFile = join(root, 'daemon.pid');
  addHook(root, 'after_vm_start', '10_daemon', `setsid sleep 30 & echo $! > ${pidFile}; exit 0`);
  const t0 = Date.now();
  const r = await runner(root, 20_000).run('after_vm_start', { data: '<domain/>' });
  t.ok(Date.now() - t0 < 2000, `returned in ${Date.now() - t0} ms`);
  t.equal(r.runs[0]?.rc, 0);
  try { process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); } catch { /* gone */ }
});

t.test('hooks get stdin from /dev/null and no descriptors beyond 0-2', async (t) => {
  const root = hookTree();
  // Python opens nothing at start; the listing's own handle is closed again by the time we readlink.
  addHook(root, 'after_get_stats', '10_fds', `#!/usr/bin/python3
import json, os
fds = {}
for fd in sorted(os.listdir('/proc/self/fd'), key=int):
    try:
        fds[fd] = os.readlink('/proc/self/fd/' + fd)
    except OSError:
        pass
open(os.environ['_hook_json'], 'w').write(json.dumps(fds))
`);
  const r = await runner(root).run('after_get_stats', { data: '' });
  const fds = JSON.parse(r.data) as Record<string, string>;
  t.equal(fds['0'], '/dev/null', 'stdin is /dev/null');
  t.same(Object.keys(fds).filter((fd) => !['0', '1', '2'].includes(fd)).map((fd) => fds[fd]), [], 'no descriptors beyond 0-2');
});

t.test('a hook file with mode 0777, or under a group-writable directory, is refused and logged', async (t) => {
  const root = hookTree();
  addHook(root, 'before_vm_cont', '10_open', 'echo ran > "$_hook_domxml"', 0o777);
  const r = await runner(root).run('before_vm_cont', { data: 'orig' });
  t.equal(r.data, 'orig', 'the insecure hook did not run');
  t.match(r.runs[0]?.refused, /writable by group or others/);
  t.ok(r.failed, 'a refused hook counts as a failure (a before_* point then aborts)');
  const root2 = hookTree();
  const f = addHook(root2, 'before_vm_cont', '10_ok', 'echo ran > "$_hook_domxml"');
  chmodSync(dirname(f), 0o775);
  const r2 = await runner(root2).run('before_vm_cont', { data: 'orig' });
  t.match(r2.runs[0]?.refused, /directory .* is writable by group or others/);
});

t.test('stderr is captured up to the cap; custom properties, vmId and params reach the environment', async (t) => {
  const root = hookTree();
  addHook(root, 'after_vm_destroy', '10', 'head -c 5000 /dev/zero | tr "\\\\0" x >&2; echo "$vmId $owner $ttl" > "$_hook_domxml"; exit 1');
  const r = await runner(root).run('after_vm_destroy', { data: '', vmId: 'v-1', customProperties: { owner: 'ops', 'bad-name': 'x' }, params: { ttl: 30 } });
  t.equal(r.data.trim(), 'v-1 ops 30');
  t.equal(r.runs[0]?.stderr.length, 1024, 'stderr capped');
});

t.test('launch flags go through a launchflags file, as VDSM does it', async (t) => {
  const root = hookTree();
  addHook(root, 'before_vm_start', '10', 'cat "$_hook_launchflags" > "$_hook_domxml"; echo 1 > "$_hook_launchflags"');
  const r = await runner(root).run('before_vm_start', { data: '', vmId: 'v-2', launchFlags: 0 });
  t.equal(r.data.trim(), '0', 'the hook read the offered flags');
  t.equal(r.launchFlags, 1, 'and its flags (START_PAUSED) came back');
});
