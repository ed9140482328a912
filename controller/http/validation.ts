// Request validation. Bodies are checked as sent: a string where a number belongs is a 400,
// not coerced, and an unknown field is a 400 naming it. Path and query values are strings on
// the wire, so they alone are coerced to the declared types.
import Ajv from 'ajv';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';

function ajv(coerce: boolean) {
  return new Ajv.default({ coerceTypes: coerce, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
}

/** Marks a body schema that may be left out altogether (POST /vms/{id}/start with no body). */
export const OPTIONAL_BODY = 'x-optional-body';

type Validate = ((data: unknown) => boolean) & { errors?: FastifySchemaValidationError[] | null };

export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = ajv(false);
  const coercing = ajv(true);
  return ({ schema, httpPart }) => {
    const fn = (httpPart === 'body' ? strict : coercing).compile(schema as object) as Validate;
    if (httpPart !== 'body' || !(schema as Record<string, unknown>)[OPTIONAL_BODY]) return fn;
    // fastify hands a missing body over as null.
    const optional: Validate = (data) => {
      if (data === null || data === undefined) return true;
      const ok = fn(data);
      optional.errors = fn.errors;
      return ok;
    };
    return optional;
  };
}
