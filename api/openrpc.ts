// The OpenRPC document served at rpc.discover, built from the schema.
import { Methods, Events, API_VERSION, type MethodName } from './schema.js';
import { ERRORS } from './errors.js';

function stripTypebox(schema: unknown): unknown {
  // TypeBox marks schemas with symbols; JSON.stringify drops them.
  return JSON.parse(JSON.stringify(schema));
}

export function openRpcDocument(softwareVersion: string): Record<string, unknown> {
  const methods = (Object.keys(Methods) as MethodName[]).map((name) => {
    const m = Methods[name];
    const params = m.params as unknown as { properties: Record<string, unknown>; required?: string[] };
    return {
      name,
      summary: m.summary,
      paramStructure: 'by-name',
      params: Object.entries(params.properties).map(([pname, schema]) => ({
        name: pname,
        required: (params.required ?? []).includes(pname),
        schema: stripTypebox(schema),
      })),
      result: { name: 'result', schema: stripTypebox(m.result) },
      errors: m.errors.map((e) => ({ code: ERRORS[e].code, message: ERRORS[e].message })),
      'x-since': m.since,
      'x-mutating': m.mutating,
    };
  });
  return {
    openrpc: '1.2.6',
    info: {
      title: 'Hostvisor agent API',
      version: API_VERSION,
      description: `hostvisord ${softwareVersion}. JSON-RPC 2.0 over WebSocket with mutual TLS.`,
    },
    methods,
    components: {
      errors: Object.fromEntries(Object.entries(ERRORS).map(([k, v]) => [k, { code: v.code, message: v.message }])),
    },
    'x-events': Object.fromEntries(Object.entries(Events).map(([k, e]) => [k, {
      method: e.method, summary: e.summary, since: e.since, params: stripTypebox(e.params),
    }])),
  };
}
