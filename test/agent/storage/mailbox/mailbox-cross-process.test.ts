// HSM and SPM in separate node processes on one pair of shared area files: an
// SPM child serves requests from this process's HSM and from an HSM child.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ExtendReply } from '../../../../agent/storage/mailbox/hsm-mailbox.js';
import { Fleet, areaFiles, labDir, removeDir, volume, waitFor, within, MAX_HOSTS } from './helpers.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'mailbox-child.js');

interface Child { proc: ChildProcess; lines: Record<string, unknown>[]; exited: Promise<number | null> }

function child(cfg: Record<string, unknown>): Child {
  const proc = spawn(process.execPath, [CHILD], { env: { ...process.env, MBOX_CHILD: JSON.stringify(cfg) }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => { try { lines.push(JSON.parse(l) as Record<string, unknown>); } catch { /* not ours */ } });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, lines, exited };
}

t.test('SPM in one process, HSMs in others', async (t) => {
  const dir = await labDir('xproc');
  const paths = await areaFiles(dir);
  const fleet = new Fleet(paths);
  const kids: Child[] = [];
  t.teardown(async () => {
    await fleet.stopAll();
    for (const k of kids) if (k.proc.exitCode === null && k.proc.signalCode === null) k.proc.kill('SIGKILL');
    await removeDir(dir);
  });

  const spm = child({ role: 'spm', ...paths, maxHosts: MAX_HOSTS, hostId: 1 });
  kids.push(spm);
  await waitFor(() => spm.lines.some((l) => l.ready), 10_000, 'SPM child ready');
  const spmPid = spm.lines.find((l) => l.ready)!.pid;

  const childReqs = Array.from({ length: 5 }, (_, i) => ({ ...volume(), sizeMiB: 1000 + i }));
  const hsmChild = child({ role: 'hsm', ...paths, maxHosts: MAX_HOSTS, hostId: 3, requests: childReqs });
  kids.push(hsmChild);

  const hsm = await fleet.hsm(2);
  const mine = Array.from({ length: 10 }, (_, i) => ({ ...volume(), sizeMiB: 2000 + i }));
  const replies = await within(Promise.all(mine.map((r) => hsm.requestExtend(r))), 20_000, 'replies to this process');
  t.ok(replies.every((r, i) => r.status === 'ok' && r.spmHostId === 1 && r.volumeId === mine[i]!.volumeId), 'this process: 10 replies from the SPM child');

  t.equal(await within(hsmChild.exited, 20_000, 'HSM child exits'), 0);
  const childReplies = hsmChild.lines.filter((l) => l.reply).map((l) => l.reply as ExtendReply);
  t.equal(childReplies.length, 5);
  t.ok(childReplies.every((r, i) => r.status === 'ok' && r.hostId === 3 && r.volumeId === childReqs[i]!.volumeId), 'HSM child: 5 replies');

  const calls = spm.lines.filter((l) => l.call).map((l) => l.call as { volumeId: string; sizeMiB: number; pid: number });
  t.equal(calls.length, 15, 'the SPM child ran the handler for every request');
  t.ok(calls.every((c) => c.pid === spmPid));
  t.same(new Set(calls.map((c) => c.volumeId)), new Set([...mine, ...childReqs].map((r) => r.volumeId)));
  const totals = replies.map((r) => r.totalMs).sort((a, b) => a - b);
  t.comment(`cross-process round trips: min ${totals[0]} ms, max ${totals.at(-1)} ms`);

  spm.proc.kill('SIGTERM');
  t.equal(await within(spm.exited, 10_000, 'SPM child stops'), 0, 'the SPM child stopped cleanly');
  t.match(spm.lines.find((l) => l.stopped), { stats: { served: 15, failed: 0 } });
});
