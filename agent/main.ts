// hostvisord: the Hostvisor host agent (entry point).
import { parseArgs } from 'node:util';
import { loadConfig, settingsMarkdown, settingsToml, ConfigError } from './config/load.js';
import { Hostvisord } from './daemon.js';
import { VERSION } from './version.js';
import { apiMarkdown } from '../api/docs.js';
import { hookPointsMarkdown } from './hooks/points.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      'print-settings': { type: 'string' },
      'print-api-doc': { type: 'boolean' },
      'print-hook-points': { type: 'boolean' },
      version: { type: 'boolean' },
    },
  });
  if (values.version) { console.log(VERSION); return 0; }
  if (values['print-api-doc']) { process.stdout.write(apiMarkdown()); return 0; }
  if (values['print-hook-points']) { process.stdout.write(hookPointsMarkdown()); return 0; }
  if (values['print-settings'] !== undefined) {
    process.stdout.write(values['print-settings'] === 'toml' ? settingsToml() : settingsMarkdown());
    return 0;
  }
  const daemon = new Hostvisord(loadConfig(values.config));
  // A stray rejected promise is a bug to log, not a reason to drop every engine and VM operation.
  process.on('unhandledRejection', (err) => daemon.log.error('unhandled rejection', { err }));
  const stop = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  // A signal during start-up (libvirt unreachable, recovery pending) stops the agent too.
  const started = daemon.start().then(() => 'started' as const);
  const first = await Promise.race([started, stop]);
  if (first === 'started') {
    const signal = await stop;
    daemon.log.info('stopping', { signal });
  } else {
    daemon.log.info('stopping before start-up finished', { signal: first });
    started.catch(() => {});
  }
  await daemon.stop();
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    // A bad config is the operator's to fix: its message alone, and EX_CONFIG, which the unit does not restart on.
    const msg = e instanceof ConfigError ? e.message : e instanceof Error ? e.stack ?? e.message : String(e);
    process.stderr.write(`hostvisord: ${msg}\n`);
    process.exitCode = e instanceof ConfigError ? e.code : 1;
  },
);
