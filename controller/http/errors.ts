// One error shape for every answer that is not a success: {code, message, details}. Each failure
// is mapped here, once; a caller's mistake (4xx) is logged at info, only our own faults at error.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { ConflictError, NotFoundError } from '../store/errors.js';
import { InvalidTokenError } from '../enrollment/enroll.js';
import { CsrRejectedError } from '../pki/ca.js';

export const ErrorBody = Type.Object({
  code: Type.String({ description: 'stable name: InvalidRequest, Unauthenticated, Forbidden, NotFound, Conflict, BodyTooLarge, UnsupportedMediaType, NoPlacement, HostUnavailable, Unavailable, Internal' }),
  message: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
}, { $id: 'ErrorBody', description: 'every error answer' });
export type ErrorBody = Static<typeof ErrorBody>;

/** An error the API answers with as it is. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApiError';
  }
}

export class UnauthenticatedError extends ApiError {
  constructor(message: string) { super(401, 'Unauthenticated', message); }
}
export class ForbiddenError extends ApiError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(403, 'Forbidden', message, details); }
}
export class InvalidRequestError extends ApiError {
  constructor(field: string, message: string) { super(400, 'InvalidRequest', `${field}: ${message}`, { field }); }
}

interface AjvIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** "body.spec.disks[0].diskId" from ajv's "/spec/disks/0/diskId" and the part that failed. */
function fieldOf(context: string, issue: AjvIssue): string {
  let path = context;
  for (const seg of issue.instancePath.split('/').slice(1)) path += /^\d+$/.test(seg) ? `[${seg}]` : `.${seg.replace(/~1/g, '/').replace(/~0/g, '~')}`;
  const extra = issue.params.missingProperty ?? issue.params.additionalProperty;
  return typeof extra === 'string' ? `${path}.${extra}` : path;
}

function validationError(err: FastifyError): ApiError {
  const issues = (err.validation ?? []) as unknown as AjvIssue[];
  const context = err.validationContext ?? 'request';
  const first = issues[0];
  if (!first) return new ApiError(400, 'InvalidRequest', err.message, { field: context });
  const field = fieldOf(context, first);
  const what = first.keyword === 'additionalProperties' ? 'is not a known field'
    : first.keyword === 'required' ? 'is required' : first.message ?? 'is invalid';
  return new ApiError(400, 'InvalidRequest', `${field} ${what}`, { field, rule: first.keyword, ...first.params });
}

export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof NotFoundError) return new ApiError(404, 'NotFound', e.message, { kind: e.kind, id: e.id, ...(e.field && { field: e.field }) }, { cause: e });
  if (e instanceof ConflictError) return new ApiError(409, 'Conflict', e.message, e.details, { cause: e });
  if (e instanceof InvalidTokenError) return new ApiError(401, 'InvalidToken', e.message, { reason: e.reason }, { cause: e });
  if (e instanceof CsrRejectedError) return new ApiError(400, 'InvalidRequest', e.message, { field: 'body.csr' }, { cause: e });
  const f = e as FastifyError;
  if (f?.validation) return validationError(f);
  switch (f?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return new ApiError(413, 'BodyTooLarge', f.message, {}, { cause: e });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return new ApiError(415, 'UnsupportedMediaType', f.message, { field: 'headers.content-type' }, { cause: e });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY': return new ApiError(400, 'InvalidRequest', f.message, { field: 'body' }, { cause: e });
  }
  if (e instanceof SyntaxError && (f as { statusCode?: number }).statusCode === 400) return new ApiError(400, 'InvalidRequest', `body: ${e.message}`, { field: 'body' }, { cause: e });
  const status = f?.statusCode;
  if (status && status >= 400 && status < 500) return new ApiError(status, 'InvalidRequest', f.message, {}, { cause: e });
  return new ApiError(500, 'Internal', 'internal error; the controller log has the details (search the correlation id)', {}, { cause: e });
}

export function sendError(e: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const api = toApiError(e);
  if (api.status >= 500) req.log.error({ err: e }, 'request failed');
  else req.log.info({ status: api.status, code: api.code, message: api.message }, 'request refused');
  return reply.status(api.status).send({ code: api.code, message: api.message, details: api.details });
}
