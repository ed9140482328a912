// hostvisor: the host administration tool, in the spirit of vdsm-tool.
//
//   hostvisor restore-networks [--config FILE] [--marker FILE]
//
// restore-networks (see restore-networks.ts) prints a JSON report on stdout and
// exits 0 on success, 1 when the restore failed or timed out, 2 on a usage or
// configuration error. Logs go to stderr as JSON lines.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { isMainModule } from './main-module.js';
import { DEFAULT_MARKER, restoreNetworksCommand } from './restore-networks.js';

const USAGE = `usage: hostvisor <command> [options]

commands:
  restore-networks [--config FILE] [--marker FILE]
      Boot-time network restore (run by hostvisor-network.service before hostvisord):
      removes networks and bonds that were never persisted, re-applies the persisted
      ones (Host.setSafeNetworkConfig), verifies, and touches the marker file.
      --config  the agent's config file (default $HOSTVISOR_CONFIG or /etc/hostvisor/agent.toml)
      --marker  written on success (default ${DEFAULT_MARKER})
`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: { config: { type: 'string' }, marker: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    process.stderr.write(`hostvisor: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) { process.stdout.write(USAGE); return 0; }
  const [command, ...extra] = positionals;
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
