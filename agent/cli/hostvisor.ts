// hostvisor: the host administration tool, in the spirit of vdsm-tool.
//
//   hostvisor restore-networks [--config FILE] [--marker FILE]
//   hostvisor enroll --controller URL --token T [--name NAME] [--config FILE]
//
// restore-networks (see restore-networks.ts) prints a JSON report on stdout and
// exits 0 on success, 1 when the restore failed or timed out, 2 on a usage or
// configuration error. Logs go to stderr as JSON lines.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { isMainModule } from './main-module.js';
import { DEFAULT_MARKER, restoreNetworksCommand } from './restore-networks.js';
import { enroll, EnrollError } from './enroll.js';

const USAGE = `usage: hostvisor <command> [options]

commands:
  restore-networks [--config FILE] [--marker FILE]
      Boot-time network restore (run by hostvisor-network.service before hostvisord):
      removes networks and bonds that were never persisted, re-applies the persisted
      ones (Host.setSafeNetworkConfig), verifies, and touches the marker file.
      --config  the agent's config file (default $HOSTVISOR_CONFIG or /etc/hostvisor/agent.toml)
      --marker  written on success (default ${DEFAULT_MARKER})
  enroll --controller URL --token T [--name NAME] [--config FILE]
      Joins this host to a controller with a token from \`hostvisor-ctl hosts add\`: checks the
      controller's CA against the token, sends a CSR, and writes the signed agent certificate,
      its key and the CA under the agent's pki.dir. Restart hostvisord afterwards.
`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: { config: { type: 'string' }, marker: { type: 'string' }, controller: { type: 'string' }, token: { type: 'string' }, name: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    process.stderr.write(`hostvisor: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) { process.stdout.write(USAGE); return 0; }
  const [command, ...extra] = positionals;
  if (command === 'enroll' && !extra.length) return enrollMain(values);
  if (command !== 'restore-networks' || extra.length) {
    process.stderr.write(`hostvisor: ${command === undefined ? 'no command given' : `unknown command "${positionals.join(' ')}"`}\n${USAGE}`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(values.config);
  } catch (e) {
    if (e instanceof ConfigError) { process.stderr.write(`hostvisor: ${e.message}\n`); return 2; }
    throw e;
  }
  const log = createLogger({ level: config['log.level'], bindings: { svc: 'hostvisor', cmd: command } });
  const report = await restoreNetworksCommand({ config, log, markerPath: values.marker ?? DEFAULT_MARKER });
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report.ok ? 0 : 1;
}

async function enrollMain(values: { config?: string; controller?: string; token?: string; name?: string }): Promise<number> {
  if (!values.controller || !values.token) {
    process.stderr.write(`hostvisor: enroll needs --controller URL and --token T\n${USAGE}`);
    return 2;
  }
  try {
    const config = loadConfig(values.config);
    const r = await enroll({ controller: values.controller, token: values.token, pkiDir: config['pki.dir'], name: values.name });
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return 0;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof EnrollError) {
      process.stderr.write(`hostvisor: ${e.message}\n`);
      return e instanceof EnrollError ? e.code : 2;
    }
    throw e;
  }
}

if (isMainModule(import.meta.url)) {
  main(process.argv.slice(2)).then(
    // exit() rather than exitCode: a restore that timed out may still hold
    // pending work (an ip command inside its own timeout); the report is out.
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`hostvisor: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
