// What a killed agent leaves running: its storage helpers (qemu-img, lvm, dd,
// ...) run in their own process groups, and systemd's KillMode=process kills
// only the agent. Before recovery undoes a create, the helpers still working
// on that volume must be gone, or one could finish after the undo (an LV
// created, a file written) and leave the half volume behind.
import { readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from '../../log.js';

/** Programs the storage layer runs; nothing else is ever killed here. */
const HELPERS = new Set(['qemu-img', 'lvm', 'lvcreate', 'lvremove', 'lvextend', 'lvchange', 'dd', 'truncate', 'losetup']);

async function helpersNaming(needle: string): Promise<Array<{ pid: number; argv: string[] }>> {
  const out: Array<{ pid: number; argv: string[] }> = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    if (argv.length && HELPERS.has(basename(argv[0]!)) && argv.some((a) => a.includes(needle))) out.push({ pid: Number(name), argv });
  }
  return out;
}

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

/** Kills (SIGKILL, by pid) the helpers whose arguments name `needle` (a volume UUID); waits at most timeoutMs for them to go. */
export async function killLeftoverHelpers(needle: string, log: Logger, timeoutMs = 10_000): Promise<number> {
  const found = await helpersNaming(needle);
  if (!found.length) return 0;
  for (const p of found) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone already */ } }
  const end = Date.now() + timeoutMs;
  while (found.some((p) => alive(p.pid)) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  log.warn('killed storage helpers a previous agent left running', { needle, helpers: found.map((p) => ({ pid: p.pid, argv: p.argv.slice(0, 4) })) });
  return found.length;
}
