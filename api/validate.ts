// Parameter validation compiled from the schema. The first problem found is
// reported as -32602 naming the field, e.g. "params.spec.memoryMiB: Expected integer".
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TObject, TSchema } from '@sinclair/typebox';
import { Methods, type MethodName } from './schema.js';
import { InvalidParamsError } from './errors.js';

const checks = new Map<string, TypeCheck<TSchema>>();

function checkerFor(name: MethodName): TypeCheck<TSchema> {
  let c = checks.get(name);
  if (!c) {
    c = TypeCompiler.Compile(Methods[name].params);
    checks.set(name, c);
  }
  return c;
}

function fieldPath(pointer: string): string {
  return 'params' + pointer.split('/').filter(Boolean).map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
}

/** Returns the params typed for `name`, or throws InvalidParamsError. Unknown top-level params are refused. */
export function validateParams(name: MethodName, params: unknown): unknown {
  const p = params === undefined ? {} : params;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) {
    throw new InvalidParamsError('params must be an object of named parameters', { data: { field: 'params' } });
  }
  const schema = Methods[name].params as TObject;
  for (const key of Object.keys(p)) {
    if (!Object.hasOwn(schema.properties, key)) { // not `in`: inherited names (toString, __proto__) are unknown too
      throw new InvalidParamsError(`params.${key}: unknown parameter`, { data: { field: `params.${key}` } });
    }
  }
  const check = checkerFor(name);
  if (!check.Check(p)) {
    const first = check.Errors(p).First();
    const field = first ? fieldPath(first.path) : 'params';
    throw new InvalidParamsError(`${field}: ${first?.message ?? 'invalid'}`, { data: { field } });
  }
  return p;
}

/** Compiles every method's validator up front, so the first call pays nothing. */
export function compileAll(): void {
  for (const name of Object.keys(Methods) as MethodName[]) checkerFor(name);
}
