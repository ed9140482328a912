// Request validation. Bodies are checked as sent: a string where a number belongs is a 400,
// not coerced, and an unknown field is a 400 naming it. Path and query values are strings on
// the wire, so they alone are coerced to the declared types.
import Ajv from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

function ajv(coerce: boolean) {
  return new Ajv.default({ coerceTypes: coerce, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
}

export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = ajv(false);
  const coercing = ajv(true);
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object);
}
