// Who may call: every route except the public ones (health, enrollment) wants a client
// certificate that chains to the controller CA (else 401). The role is the certificate's OU:
// admin may do anything, read-only only GET; any other OU (an agent's "host" certificate, the
// controller's own) gets 403.
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { ROLES, type Role } from '../pki/ca.js';
import { ForbiddenError, UnauthenticatedError } from './errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Answers without a client certificate. */
    public?: boolean;
  }
  interface FastifyRequest {
    role?: Role;
    clientName?: string;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export async function authenticate(req: FastifyRequest): Promise<void> {
  if (req.routeOptions.config?.public) return;
  const socket = req.raw.socket as TLSSocket;
  const cert = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  if (!cert || Object.keys(cert).length === 0) throw new UnauthenticatedError('a client certificate signed by the controller CA is required');
  if (!socket.authorized) throw new UnauthenticatedError(`the client certificate is not accepted: ${String(socket.authorizationError ?? 'unknown issuer')}`);
  const ou = cert.subject?.OU;
  const unit = Array.isArray(ou) ? ou[0] : ou;
  if (!ROLES.includes(unit as Role)) throw new ForbiddenError(`certificate unit "${unit ?? ''}" has no API role (admin, read-only)`, { unit: unit ?? null });
  req.role = unit as Role;
  req.clientName = Array.isArray(cert.subject.CN) ? cert.subject.CN[0] : cert.subject.CN;
  if (req.role === 'read-only' && !SAFE_METHODS.has(req.method)) {
    throw new ForbiddenError(`a read-only certificate may not ${req.method} ${req.routeOptions.url ?? req.url}`, { role: req.role });
  }
}
