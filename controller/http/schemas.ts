// Schema pieces shared by the routes.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { OPTIONAL_BODY } from './validation.js';
import { Id } from '../model/common.js';
import { ErrorBody } from './errors.js';

export const IdParams = Type.Object({ id: Id });
/** Clusters are addressed by id or by name. */
export const ClusterParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'cluster id or name' }) });

const ERROR_TEXT: Record<number, string> = {
  400: 'a field is invalid (details.field names it)',
  401: 'no client certificate, or one the controller CA did not sign',
  403: 'the certificate\'s role may not do this',
  404: 'an id names nothing',
  409: 'the current state forbids it (the message says why)',
  413: 'the body is larger than the limit',
  415: 'the body is not application/json',
  422: 'no host can take it',
};

/** Error answers of a route, documented with the shared shape. */
export function errors(...statuses: number[]): Record<number, TSchema> {
  const all = [401, 403, ...statuses];
  return Object.fromEntries(all.map((s) => [s, Type.Object(ErrorBody.properties, { description: ERROR_TEXT[s] ?? 'error' })]));
}

export const MUTATING_ERRORS = [400, 413, 415];

/** A body the client may leave out: validated when sent, undefined in the handler when not. */
export function optionalBody<T extends TSchema>(schema: T) {
  return Type.Unsafe<Static<T> | undefined>({ ...schema, [OPTIONAL_BODY]: true });
}
