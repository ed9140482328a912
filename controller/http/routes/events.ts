// /events: the audit log, paged by sequence number, and the same as a live WebSocket stream.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { WebSocket } from 'ws';
import type {} from '@fastify/websocket'; // its route options (websocket: true)
import { Event } from '../../model/events.js';
import type { Event as EventT } from '../../model/events.js';
import type { ApiContext } from '../context.js';
import { errors } from '../schemas.js';

const PAGE = 500;
/** A reader this far behind is dropped (close 1013) rather than buffered without end. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

const Since = Type.Integer({ minimum: 0, description: 'the last sequence number seen; events after it are returned' });

export function eventRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;

  /** Backlog after `since`, then live events, in order and without gaps or repeats. */
  async function stream(socket: WebSocket, since: number): Promise<void> {
    let last = since;
    let live = false;
    const held: EventT[] = [];
    const send = (e: EventT) => {
      if (e.seq <= last || socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) { socket.close(1013, 'reader too slow'); return; }
      last = e.seq;
      socket.send(JSON.stringify(e));
    };
    const off = store.onEvent((e) => (live ? send(e) : held.push(e)));
    socket.on('close', off);
    for (;;) {
      const page = await store.eventLog.list(last, PAGE);
      page.forEach(send);
      if (page.length < PAGE || socket.readyState !== socket.OPEN) break;
    }
    held.forEach(send);
    live = true;
  }

  return async (app) => {
    app.get('/events', { schema: { summary: 'The audit log after a sequence number, oldest first', tags: ['events'],
      querystring: Type.Object({ since: Type.Optional(Since), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ events: Type.Array(Event), last: Type.Integer({ description: 'pass as since for the next page' }) }), ...errors(400) } } },
    async (req) => {
      const since = req.query.since ?? 0;
      const events = await store.eventLog.list(since, req.query.limit ?? 100);
      return { events, last: events.at(-1)?.seq ?? since };
    });

    app.get('/events/stream', { websocket: true, schema: { summary: 'WebSocket: one JSON event per message, the backlog after `since` (default: none) then live', tags: ['events'],
      querystring: Type.Object({ since: Type.Optional(Since) }, { additionalProperties: false }), response: { ...errors(400) } } },
    (socket, req) => {
      const q = req.query as { since?: number };
      void (async () => stream(socket, q.since ?? await store.eventLog.latestSeq()))().catch((e: unknown) => {
        req.log.error({ err: e }, 'event stream failed');
        socket.close(1011, 'internal error');
      });
    });
  };
}
