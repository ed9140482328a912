// POST /vms/{id}/console: a one-time ticket for the VM's VNC display (controller/vms/console-tickets.ts).
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { RpcCallError } from '../../../api/client/errors.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { errors, IdParams, MUTATING_ERRORS, optionalBody } from '../schemas.js';

const ConsoleRequest = Type.Object({
  ttlSeconds: Type.Optional(Type.Integer({ minimum: 5, maximum: 3600, description: "how long the password opens the display; default the controller's consoleTicketTtlMs (120 s)" })),
}, { additionalProperties: false });

const ConsoleTicket = Type.Object({
  vmId: Type.String(),
  hostId: Type.String(),
  host: Type.String({ description: 'address the viewer connects to' }),
  port: Type.Integer(),
  password: Type.String({ description: 'one-time VNC password; not stored by the controller' }),
  expiresAt: Type.String({ format: 'date-time', description: 'after this the password no longer opens the display; a viewer already connected stays' }),
  url: Type.String({ description: 'vnc://host:port' }),
}, { $id: 'ConsoleTicket' });

/** agent codes that are the VM's state, not a fault: wrongState (no display, not running), noVM */
const VM_STATE_CODES = new Set([1003, 1]);

export function consoleRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/vms/:id/console', {
      schema: {
        summary: "A one-time ticket for the VM's VNC console: host, port and password, valid for a TTL", tags: ['vms'], params: IdParams,
        body: optionalBody(ConsoleRequest), response: { 200: ConsoleTicket, ...errors(...MUTATING_ERRORS, 404, 409, 503) },
      },
    }, async (req) => {
      if (!ctx.consoles) throw new ApiError(503, 'Unavailable', 'consoles are not served by this controller (no runtime)');
      try {
        return await ctx.consoles.open(req.params.id, req.body?.ttlSeconds, req.id);
      } catch (e) {
        if (e instanceof RpcCallError && !(e.name === 'CallTimeoutError') && VM_STATE_CODES.has(e.code)) {
          throw new ApiError(409, 'Conflict', `the VM's host refused a console: ${e.message}`, { agentCode: e.code }, { cause: e });
        }
        if (e instanceof Error && /^(NoAgentLinkError|NotConnectedError|ConnectionLostError|CallTimeoutError|ConnectFailedError)$/.test(e.name)) {
          throw new ApiError(503, 'HostUnavailable', `the VM's host does not answer: ${e.message}`, {}, { cause: e });
        }
        throw e;
      }
    });
  };
}
