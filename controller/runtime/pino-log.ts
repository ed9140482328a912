// The runtime's LogFn over fastify's pino logger (fields first, then the message).
import type { FastifyBaseLogger } from 'fastify';
import type { LogFn } from '../agents/log-fn.js';

export function pinoLogFn(log: FastifyBaseLogger): LogFn {
  return (level, msg, fields) => log[level](fields, msg);
}
