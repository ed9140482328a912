// A hook runs as root with the agent's powers, so a hook file, and every
// directory above it, must be owned by root and not writable by group or
// others. Otherwise another user could swap in code that the agent runs.
// A root-owned sticky directory (like /tmp) is accepted above the hook root:
// the sticky bit stops others replacing entries they do not own.
import { lstat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

export interface SecurityVerdict {
  ok: boolean;
  reason?: string;
}

const S_IWGRP = 0o020;
const S_IWOTH = 0o002;
const S_ISVTX = 0o1000;

export async function checkHookFile(file: string, hookRoot: string, rootUid = 0): Promise<SecurityVerdict> {
  const path = resolve(file);
  const st = await lstat(path);
  if (st.isSymbolicLink()) return { ok: false, reason: `${path} is a symbolic link` };
  if (st.uid !== rootUid) return { ok: false, reason: `${path} is owned by uid ${st.uid}, not root` };
  if (st.mode & (S_IWGRP | S_IWOTH)) return { ok: false, reason: `${path} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)})` };
  const root = resolve(hookRoot);
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const d = await lstat(dir);
    const insideRoot = dir === root || dir.startsWith(root + '/');
    if (d.uid !== rootUid) return { ok: false, reason: `directory ${dir} is owned by uid ${d.uid}, not root` };
    const writable = d.mode & (S_IWGRP | S_IWOTH);
    if (writable && (insideRoot || !(d.mode & S_ISVTX))) {
      return { ok: false, reason: `directory ${dir} is writable by group or others (mode ${(d.mode & 0o7777).toString(8)})` };
    }
    if (dir === '/') break;
  }
  return { ok: true };
}
