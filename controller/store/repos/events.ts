// The audit log. Sequence numbers strictly increase and are never reused; the log is bounded by
// count and age (prune), so it cannot grow without end.
import type { Kysely, Selectable } from 'kysely';
import type { Event, NewEvent, Severity } from '../../model/events.js';
import { json, parseJson } from '../codec.js';
import type { Database, EventRow } from '../tables.js';

function toEvent(r: Selectable<EventRow>): Event {
  return {
    seq: Number(r.seq), time: r.time, kind: r.kind, severity: r.severity as Severity, subjectKind: r.subject_kind, subjectId: r.subject_id,
    message: r.message, details: parseJson<Record<string, unknown>>(r.details, {}), correlationId: r.correlation_id,
  };
}

export class EventsRepo {
  constructor(private readonly db: Kysely<Database>, private readonly now: () => number) {}

  async append(e: NewEvent): Promise<Event> {
    const r = await this.db.insertInto('events').values({
      time: this.now(), kind: e.kind, severity: e.severity ?? 'info', subject_kind: e.subjectKind, subject_id: e.subjectId,
      message: e.message, details: json(e.details ?? {}), correlation_id: e.correlationId ?? null,
    }).returningAll().executeTakeFirstOrThrow();
    return toEvent(r);
  }

  /** Events after `since` (exclusive), oldest first, at most `limit`. */
  async list(since: number, limit: number): Promise<Event[]> {
    const rows = await this.db.selectFrom('events').selectAll().where('seq', '>', since).orderBy('seq').limit(limit).execute();
    return rows.map(toEvent);
  }

  async latestSeq(): Promise<number> {
    const r = await this.db.selectFrom('events').select((eb) => eb.fn.max('seq').as('max')).executeTakeFirst();
    return Number(r?.max ?? 0);
  }

  /** Keeps at most `maxRows` events and none older than `maxAgeMs`; returns how many went. */
  async prune(bound: { maxRows: number; maxAgeMs: number }): Promise<number> {
    const latest = await this.latestSeq();
    const r = await this.db.deleteFrom('events')
      .where((eb) => eb.or([eb('seq', '<=', latest - bound.maxRows), eb('time', '<', this.now() - bound.maxAgeMs)]))
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
