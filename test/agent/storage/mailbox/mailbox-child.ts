/**
 * A mailbox peer in its own node process, for mailbox-cross-process.test.ts.
 * Not a test file. Configured by MBOX_CHILD (JSON):
 *   { role: 'spm', requestsPath, repliesPath, maxHosts, hostId }  serves until SIGTERM; prints one JSON line per handler call
 *   { role: 'hsm', requestsPath, repliesPath, maxHosts, hostId, requests: [{domainId, volumeId, sizeMiB}] }  prints each reply, exits
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { HsmMailbox, type ExtendRequest } from '../../../../agent/storage/mailbox/hsm-mailbox.js';
import { SpmMailbox } from '../../../../agent/storage/mailbox/spm-mailbox.js';

interface Config { role: 'spm' | 'hsm'; requestsPath: string; repliesPath: string; maxHosts: number; hostId: number; requests?: ExtendRequest[] }

if (!process.env.MBOX_CHILD) {
  // `tap <this dir>` runs every file in it: say this is no test.
  console.log('1..0 # SKIP not a test: the child process of mailbox-cross-process.test.ts');
  process.exit(0);
}
const cfg = JSON.parse(process.env.MBOX_CHILD) as Config;
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
const guard = setTimeout(() => { out({ error: 'child ran too long' }); process.exit(3); }, 60_000); // every child is bounded

if (cfg.role === 'spm') {
  const spm = new SpmMailbox({
    requestsPath: cfg.requestsPath, repliesPath: cfg.repliesPath, maxHosts: cfg.maxHosts, spmHostId: cfg.hostId,
    stillSpm: () => true,
    extend: async (domainId, volumeId, sizeMiB) => {
      out({ call: { domainId, volumeId, sizeMiB, pid: process.pid } });
      await sleep(5);
    },
  });
  await spm.start();
  out({ ready: true, pid: process.pid });
  process.on('SIGTERM', () => {
    void spm.stop().then(() => { out({ stopped: true, stats: spm.stats }); clearTimeout(guard); process.exit(0); });
  });
} else {
  const hsm = new HsmMailbox({ requestsPath: cfg.requestsPath, repliesPath: cfg.repliesPath, maxHosts: cfg.maxHosts, hostId: cfg.hostId, timeoutMs: 20_000 });
  await hsm.start();
  out({ ready: true, pid: process.pid });
  const replies = await Promise.all((cfg.requests ?? []).map((r) => hsm.requestExtend(r).catch((e: unknown) => ({ error: String(e) }))));
  for (const r of replies) out({ reply: r, pid: process.pid });
  await hsm.stop();
  clearTimeout(guard);
}
