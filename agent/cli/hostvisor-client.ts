// hostvisor-client: call the agent's API from a shell, in the spirit of vdsm-client.
//
//   hostvisor-client [--host H] [--port P] [--pki DIR] Host getCapabilities
//   hostvisor-client VM create vmID=<uuid> xml=@domain.xml
//   hostvisor-client VM create vmID=<uuid> spec='{"name":"g","memoryMiB":128}'
//   hostvisor-client events            # print every event as one JSON line
//
// key=value arguments become named params: @file reads the file (a .json file
// is parsed), and values
// that parse as JSON (numbers, booleans, objects, arrays) are passed as such.
// Output is JSON; an error prints {"error":{code,name,message,data}} and exits 2.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HostvisorClient, RpcCallError } from '../../api/client/client.js';
import { pkiPaths } from '../pki/dev-ca.js';
import { isMainModule } from './main-module.js';

export function parseParamArgs(args: string[], readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new Error(`expected key=value, got "${a}"`);
    const key = a.slice(0, eq);
    const raw = a.slice(eq + 1);
    if (raw.startsWith('@')) {
      const content = readFile(raw.slice(1));
      params[key] = raw.endsWith('.json') ? JSON.parse(content) : content;
      continue;
    }
    if (/^[[{]|^(true|false|null)$|^-?\d+(\.\d+)?$/.test(raw)) {
      try { params[key] = JSON.parse(raw); continue; } catch { /* not JSON: a plain string */ }
    }
    params[key] = raw;
  }
  return params;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      host: { type: 'string', default: 'localhost' },
      port: { type: 'string', default: '54321' },
      pki: { type: 'string', default: process.env.HOSTVISOR_PKI ?? '/etc/pki/hostvisor' },
      timeout: { type: 'string', default: '60' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write('usage: hostvisor-client [--host H] [--port P] [--pki DIR] [--timeout S] <Namespace> <verb> [key=value|key=@file ...]\n'
      + '       hostvisor-client [...] events\n       hostvisor-client [...] rpc discover\n');
    return positionals.length === 0 && !values.help ? 1 : 0;
  }
  const p = pkiPaths(values.pki);
  const client = await HostvisorClient.connect({
    url: `wss://${values.host}:${values.port}/`,
    key: readFileSync(p.clientKey), cert: readFileSync(p.clientCert), ca: readFileSync(p.caCert),
    timeoutMs: Number(values.timeout) * 1000,
  });
  try {
    if (positionals[0] === 'events') {
      client.onEvent((method, params) => process.stdout.write(JSON.stringify({ method, params }) + '\n'));
      await new Promise<void>((resolve) => { void client.disconnected.then(() => resolve()); process.once('SIGINT', () => resolve()); });
      return 0;
    }
    const [ns, verb, ...rest] = positionals;
    if (!verb) throw new Error('expected <Namespace> <verb>');
    const result = await client.callRaw(`${ns}.${verb}`, parseParamArgs(rest));
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  } catch (e) {
    if (e instanceof RpcCallError) {
      process.stdout.write(JSON.stringify({ error: { code: e.code, name: e.errorName, message: e.message, data: e.data } }, null, 2) + '\n');
      return 2;
    }
    throw e;
  } finally {
    await client.close();
  }
}

if (isMainModule(import.meta.url)) {
  main().then((code) => { process.exitCode = code; }, (e: unknown) => {
    process.stderr.write(`hostvisor-client: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
