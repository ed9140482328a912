// docs/controller-api.md, generated from the OpenAPI document: one section per route with its
// parameters, body fields and answers. `npm run docs:controller-api` rewrites the file; a test
// fails when the committed file differs from what the schemas give.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- an OpenAPI document

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

function typeOf(s: Json | undefined): string {
  if (!s) return '';
  if (s.enum) return s.enum.map((v: unknown) => `\`${String(v)}\``).join(' \\| ');
  if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf).map(typeOf).join(' \\| ');
  if (s.type === 'array') return `${typeOf(s.items)}[]`;
  if (s.type === 'object' && !s.properties && s.additionalProperties) return `map of ${typeOf(s.additionalProperties) || 'any'}`;
  if (s.nullable) return `${s.type} \\| null`;
  return s.type ?? 'any';
}

function limits(s: Json): string {
  const parts: string[] = [];
  if (s.minimum !== undefined || s.maximum !== undefined) parts.push(`${s.minimum ?? ''}..${s.maximum ?? ''}`);
  if (s.minLength !== undefined || s.maxLength !== undefined) parts.push(`length ${s.minLength ?? 0}..${s.maxLength ?? ''}`);
  if (s.pattern) parts.push(`pattern \`${s.pattern}\``);
  if (s.default !== undefined) parts.push(`default ${JSON.stringify(s.default)}`);
  return parts.join('; ');
}

const cell = (t: string) => t.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function fieldRows(schema: Json, prefix = ''): string[] {
  const rows: string[] = [];
  const required = new Set<string>(schema.required ?? []);
  for (const [name, s] of Object.entries<Json>(schema.properties ?? {})) {
    rows.push(`| \`${prefix}${name}\` | ${typeOf(s)} | ${required.has(name) ? 'yes' : ''} | ${cell([s.description, limits(s)].filter(Boolean).join('. '))} |`);
    if (s.type === 'object' && s.properties) rows.push(...fieldRows(s, `${prefix}${name}.`));
    if (s.type === 'array' && s.items?.properties) rows.push(...fieldRows(s.items, `${prefix}${name}[].`));
  }
  return rows;
}

function table(title: string, rows: string[]): string[] {
  return rows.length ? [`${title}:`, '', '| field | type | required | notes |', '| --- | --- | --- | --- |', ...rows, ''] : [];
}

export function renderApiMarkdown(doc: Json): string {
  const out: string[] = [
    '# Hostvisor controller REST API',
    '',
    '<!-- Generated from the OpenAPI document (npm run docs:controller-api); do not edit by hand. -->',
    '',
    doc.info?.description ?? '',
    '',
    `The machine-readable document: \`GET /api/v1/openapi.json\` (OpenAPI ${doc.openapi}).`,
    '',
  ];
  const byTag = new Map<string, string[]>();
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op: Json | undefined = item[method];
      if (!op) continue;
      const lines: string[] = [`### ${method.toUpperCase()} ${path}`, '', op.summary ?? '', ''];
      const params: Json[] = op.parameters ?? [];
      lines.push(...table('Parameters', params.map((p) => `| \`${p.name}\` (${p.in}) | ${typeOf(p.schema)} | ${p.required ? 'yes' : ''} | ${cell([p.description ?? p.schema?.description, limits(p.schema ?? {})].filter(Boolean).join('. '))} |`)));
      const body: Json | undefined = op.requestBody?.content?.['application/json']?.schema;
      if (body) lines.push(...table('Body', fieldRows(body)));
      const answers = Object.entries<Json>(op.responses ?? {}).map(([code, r]) => (r.description && r.description !== 'Default Response' ? `${code} ${r.description}` : code));
      lines.push(`Answers: ${answers.join('; ')}.`, '');
      const tag = op.tags?.[0] ?? 'other';
      byTag.set(tag, [...(byTag.get(tag) ?? []), ...lines]);
    }
  }
  const order: string[] = (doc.tags ?? []).map((t: Json) => t.name);
  for (const tag of [...order, ...[...byTag.keys()].filter((t) => !order.includes(t))]) {
    const lines = byTag.get(tag);
    if (lines) out.push(`## ${tag}`, '', ...lines);
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
