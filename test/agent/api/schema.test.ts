import t from 'tap';
import { readFileSync } from 'node:fs';
import { Methods, type MethodName } from '../../../api/schema.js';
import { validateParams } from '../../../api/validate.js';
import { openRpcDocument } from '../../../api/openrpc.js';
import { apiMarkdown } from '../../../api/docs.js';
import { ERRORS, InvalidParamsError } from '../../../api/errors.js';

t.test('invalid params are refused with -32602 naming the field', async (t) => {
  const err = (name: MethodName, p: unknown) => { try { validateParams(name, p); return undefined; } catch (e) { return e as InvalidParamsError; } };
  t.match(err('VM.pause', { vmID: 'x' })?.message, /^params\.vmID: /);
  t.equal(err('VM.pause', { vmID: 'x' })?.code, -32602);
  t.match(err('VM.create', { vmID: '3f0e0c4c-1f53-4a9b-9e58-2a4c2e9d3b11', spec: { name: 'a', memoryMiB: 'big' } })?.message, /^params\.spec\.memoryMiB: /);
  t.match(err('VM.create', { vmID: '3f0e0c4c-1f53-4a9b-9e58-2a4c2e9d3b11', spec: { name: 'a', memoryMiB: 64, disks: [{ name: 'zz' }] } })?.message, /^params\.spec\.disks\[0\]\.name: /);
  t.match(err('Host.ping2', { extra: 1 })?.message, /^params\.extra: unknown parameter/);
  t.match(err('Host.ping2', [1])?.message, /params must be an object/);
  t.equal(err('Host.ping2', undefined), undefined, 'no params is the same as {}');
});

t.test('the OpenRPC document lists every method with its errors and version', async (t) => {
  const doc = openRpcDocument('test') as { methods: { name: string; errors: { code: number }[]; 'x-since': string }[] };
  t.same(doc.methods.map((m) => m.name).sort(), Object.keys(Methods).sort());
  const create = doc.methods.find((m) => m.name === 'VM.create')!;
  t.ok(create.errors.some((e) => e.code === ERRORS.exists.code));
  t.equal(create['x-since'], '0.1');
  t.doesNotThrow(() => JSON.stringify(doc));
});

t.test('docs/api.md is generated from the schema and current', async (t) => {
  const doc = readFileSync(new URL('../../../../docs/api.md', import.meta.url), 'utf8');
  t.equal(doc, apiMarkdown(), 'regenerate with: node dist/agent/main.js --print-api-doc > docs/api.md');
});

t.test('error codes are unique and VDSM\'s where VDSM has them', async (t) => {
  const codes = Object.values(ERRORS).map((e) => e.code);
  t.equal(new Set(codes).size, codes.length);
  t.same([ERRORS.noVM.code, ERRORS.exists.code, ERRORS.unavailable.code, ERRORS.hookError.code, ERRORS.recovery.code], [1, 4, 40, 78, 99]);
});
