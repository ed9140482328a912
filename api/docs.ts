// docs/api.md, generated from the schema (node dist/agent/main.js --print-api-doc).
import { Methods, Events, API_VERSION, type MethodDef, type MethodName } from './schema.js';
import { ERRORS } from './errors.js';
import { ExitReason } from './types.js';

type Schema = { type?: string; anyOf?: Schema[]; patternProperties?: Record<string, Schema>; const?: unknown; items?: Schema; properties?: Record<string, Schema>; required?: string[]; description?: string; pattern?: string; minimum?: number; maximum?: number; default?: unknown };

function typeOf(s: Schema): string {
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.type === 'array') return `${typeOf(s.items ?? {})}[]`;
  if (s.type === 'object' && s.properties) return `{${Object.keys(s.properties).join(', ')}}`;
  return s.type ?? 'any';
}

function notes(s: Schema): string {
  const parts: string[] = [];
  if (s.description) parts.push(s.description);
  if (s.pattern) parts.push(`pattern \`${s.pattern}\``);
  if (s.minimum !== undefined || s.maximum !== undefined) parts.push(`range ${s.minimum ?? ''}…${s.maximum ?? ''}`);
  if (s.default !== undefined) parts.push(`default ${JSON.stringify(s.default)}`);
  return parts.join('; ').replace(/\|/g, '\\|');
}

/** With `records`, a map's values are documented too, as `name.<key>.field` (request params such as setupNetworks' networks). */
function fields(obj: Schema, prefix = '', records = false): string[] {
  const rows: string[] = [];
  for (const [name, s] of Object.entries(obj.properties ?? {})) {
    const req = (obj.required ?? []).includes(name) ? 'yes' : '';
    rows.push(`| \`${prefix}${name}\` | ${typeOf(s)} | ${req} | ${notes(s)} |`);
    if (s.type === 'object' && s.properties && prefix.split('.').length < 3) rows.push(...fields(s, `${prefix}${name}.`, records));
    const value = Object.values(s.patternProperties ?? {})[0];
    if (records && value?.properties && prefix.split('.').length < 3) rows.push(...fields(value, `${prefix}${name}.<key>.`, records));
    if (s.type === 'array' && s.items?.properties && prefix.split('.').length < 3) rows.push(...fields(s.items, `${prefix}${name}[].`));
  }
  return rows;
}

export function apiMarkdown(): string {
  const out: string[] = [
    `# Hostvisor agent API (version ${API_VERSION})`, '',
    'Generated from `api/schema.ts`; do not edit. JSON-RPC 2.0 over WebSocket with mutual TLS',
    '(port 54321). Params are by name. The OpenRPC document is served by the `rpc.discover` method.',
    'A request may carry a top-level `correlationId` string (an extension); it is logged with the call.', '',
    '## Errors', '', '| code | name | meaning | whose fault |', '| --- | --- | --- | --- |',
    ...Object.entries(ERRORS).map(([k, v]) => `| ${v.code} | \`${k}\` | ${v.message} | ${v.fault} |`), '',
    '## VM exit reasons (`exitReason` of a Down VM)', '', '| code | name |', '| --- | --- |',
    ...Object.entries(ExitReason).filter(([, v]) => typeof v === 'number').map(([k, v]) => `| ${v} | ${k} |`), '',
    '## Methods', '',
  ];
  for (const name of Object.keys(Methods) as MethodName[]) {
    const m = Methods[name];
    out.push(`### ${name}`, '', `${m.summary} *Since ${m.since}.*${!m.mutating ? '' : (m as MethodDef).duringRecovery ? ' Refused with 1006 while the agent stops.' : ' Refused with 99 while the agent recovers.'}`, '');
    const p = fields(m.params as unknown as Schema, '', true);
    if (p.length) out.push('| param | type | required | notes |', '| --- | --- | --- | --- |', ...p, '');
    // A result that is a map (sdUUID → stats) is documented by its value, as `<key>.field`.
    const res = m.result as unknown as Schema;
    const resValue = res.properties ? undefined : Object.values(res.patternProperties ?? {})[0];
    const r = resValue?.properties ? [`| \`<key>\` | ${typeOf(resValue)} | | ${notes(res)} |`, ...fields(resValue, '<key>.')] : fields(res);
    if (r.length) out.push('Result:', '', '| field | type | always | notes |', '| --- | --- | --- | --- |', ...r, '');
    if (m.errors.length) out.push(`Errors: ${m.errors.map((e) => `${ERRORS[e].code} \`${e}\``).join(', ')}.`, '');
  }
  out.push('## Events', '', 'Events are JSON-RPC notifications sent to every connected engine.', '');
  for (const [name, e] of Object.entries(Events)) out.push(`### ${name}`, '', `Method \`${e.method}\`. ${e.summary} *Since ${e.since}.*`, '');
  return out.join('\n');
}
