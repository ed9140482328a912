// hostvisor-ctl events …: the audit log, paged, or followed live over the WebSocket.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { Event } from '../../model/events.js';
import { table } from '../table.js';
import type { RegisterCommands } from './cli-env.js';

function line(e: Event): string {
  return `${new Date(e.time).toISOString()} ${String(e.seq).padStart(6)} ${e.severity.padEnd(7)} ${e.kind} ${e.subjectKind} ${e.subjectId}: ${e.message}\n`;
}

export const registerEvents: RegisterCommands = (program, env) => {
  const events = program.command('events').description('the audit log');
  events.command('list').description('events after a sequence number, oldest first')
    .option('--since <seq>', 'after this sequence number', (v) => Number(v), 0)
    .option('--limit <n>', 'at most this many', (v) => Number(v), 100)
    .action(async (o: { since: number; limit: number }) => {
      const { client } = env.ctx();
      const r = await client.call<{ events: Event[]; last: number }>('GET', `/api/v1/events?since=${o.since}&limit=${o.limit}`);
      env.print(r, () => table(['SEQ', 'TIME', 'SEVERITY', 'KIND', 'SUBJECT', 'MESSAGE'],
        r.events.map((e) => [e.seq, new Date(e.time).toISOString(), e.severity, e.kind, `${e.subjectKind} ${e.subjectId}`, e.message])));
    });
  events.command('watch').description('follow events as they happen (Ctrl-C ends)')
    .option('--since <seq>', 'first the backlog after this sequence number', (v) => Number(v))
    .option('--count <n>', 'end after this many events', (v) => Number(v))
    .action(async (o: { since?: number; count?: number }) => {
      const { g } = env.ctx();
      const url = new URL(`/api/v1/events/stream${o.since !== undefined ? `?since=${o.since}` : ''}`, g.url.replace(/^http/, 'ws'));
      const ws = new WebSocket(url, { cert: readFileSync(join(g.creds, 'cert.pem')), key: readFileSync(join(g.creds, 'key.pem')), ca: readFileSync(join(g.creds, 'ca.pem')), handshakeTimeout: 30_000 });
      let seen = 0;
      await new Promise<void>((resolve, reject) => {
        ws.on('message', (data) => {
          if (o.count !== undefined && seen >= o.count) return; // frames already under way when we closed
          const e = JSON.parse(String(data)) as Event;
          env.io.out.write(g.json ? JSON.stringify(e) + '\n' : line(e));
          if (o.count !== undefined && ++seen >= o.count) ws.close(1000);
        });
        ws.on('close', () => resolve());
        ws.on('error', (e) => reject(e));
      }).catch((e: Error) => { env.io.err.write(`hostvisor-ctl: event stream: ${e.message}\n`); env.setCode(1); });
    });
};
