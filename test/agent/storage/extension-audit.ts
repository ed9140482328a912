// Accounts for every thin-volume extension individually: each "drive extended"
// record of the VM host must name (by the mailbox request id it logs) an
// "extend request served" record of the SPM for that request: the same
// request id, from the VM host's host id, for the same volume, to at least
// the size the drive was extended to, served ok. Counting records (served >=
// extended) would let a served retry or another volume's request stand in
// for an extension that never went through the mailbox.

export type LogRecord = Record<string, unknown>;

export interface ExtensionAudit {
  /** Each extension with the served record that accounts for it. */
  matched: Array<{ extended: LogRecord; served: LogRecord }>;
  /** Extensions no served record accounts for, each with why. */
  unmatched: Array<{ extended: LogRecord; why: string }>;
}

/**
 * extended: the VM host's "drive extended" records (field `volume`, `toMiB`, `requestId`);
 * served: the SPM's "extend request served" records (`requestId`, `hostId`, `volumeId`, `sizeMiB`, `status`);
 * vmHostId: the VM host's host id in the pool.
 */
export function auditExtensions(extended: readonly LogRecord[], served: readonly LogRecord[], vmHostId: number): ExtensionAudit {
  const byId = new Map<unknown, LogRecord[]>();
  for (const s of served) {
    const list = byId.get(s['requestId']) ?? [];
    list.push(s);
    byId.set(s['requestId'], list);
  }
  const out: ExtensionAudit = { matched: [], unmatched: [] };
  for (const e of extended) {
    const id = e['requestId'];
    if (typeof id !== 'string' || !id) {
      out.unmatched.push({ extended: e, why: 'the extension logged no request id' });
      continue;
    }
    const candidates = byId.get(id) ?? [];
    if (!candidates.length) {
      out.unmatched.push({ extended: e, why: `no "extend request served" for request ${id}` });
      continue;
    }
    const ok = candidates.find((s) => s['hostId'] === vmHostId && s['volumeId'] === e['volume'] && s['status'] === 'ok'
      && typeof s['sizeMiB'] === 'number' && typeof e['toMiB'] === 'number' && s['sizeMiB'] >= e['toMiB']);
    if (ok) out.matched.push({ extended: e, served: ok });
    else out.unmatched.push({ extended: e, why: `request ${id} was served, but not ok for host ${vmHostId}, volume ${String(e['volume'])}, ${String(e['toMiB'])} MiB: ${JSON.stringify(candidates)}` });
  }
  return out;
}

/** One line per unmatched extension, for a test message or a bench log. */
export function describeUnmatched(a: ExtensionAudit, max = 5): string {
  return a.unmatched.slice(0, max).map((u) => `${u.why} (extension ${JSON.stringify(u.extended)})`).join('; ')
    + (a.unmatched.length > max ? `; and ${a.unmatched.length - max} more` : '');
}
