// hostvisord: the Hostvisor host agent.
//
// Today it holds a supervised libvirt connection (reconnect with backoff,
// events re-subscribed after every reconnect), reports host facts, logs
// domain lifecycle events, and reports readiness to systemd. The engine-facing
// JSON-RPC API is built on top of this (see README).
import { parseArgs } from 'node:util';
import { ReconnectingLibvirtClient, enums } from './libvirt/index.js';
import { loadConfig, settingsMarkdown, ConfigError } from './config/load.js';
import { createLogger } from './log.js';
import { createNotifier } from './systemd/notify.js';
import { resolveDomainType } from './virt/domain-type.js';
import { VERSION } from './version.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      'print-settings': { type: 'boolean' },
      version: { type: 'boolean' },
    },
  });
  if (values.version) { console.log(VERSION); return 0; }
  if (values['print-settings']) { process.stdout.write(settingsMarkdown()); return 0; }

  const config = loadConfig(values.config);
  const log = createLogger({ level: config['log.level'], bindings: { svc: 'hostvisord' } });
  const notify = createNotifier();
  log.info('starting', { version: VERSION, pid: process.pid, libvirtUri: config['libvirt.uri'] });

  const client = new ReconnectingLibvirtClient(config['libvirt.uri'], {
    callTimeoutMs: config['libvirt.callTimeoutMs'],
    keepAlive: { intervalSec: config['libvirt.keepAliveIntervalSec'], count: config['libvirt.keepAliveCount'] },
    backoff: { initialMs: config['libvirt.reconnectInitialMs'], maxMs: config['libvirt.reconnectMaxMs'] },
    log,
  });
  await client.subscribe('lifecycle', (ev) => {
    log.info('domain lifecycle', {
      vm: ev.domain.uuid, name: ev.domain.name,
      event: enums.DomainEventType[ev.event] ?? ev.event, detail: ev.detail,
    });
  });
  client.on('connected', async ({ generation }) => {
    try {
      const conn = client.connection;
      const [hostname, versions, node, domains] = await Promise.all([
        conn.hostname(), conn.versions(), conn.nodeInfo(), conn.listAllDomains(),
      ]);
      const domainType = await resolveDomainType(config['virt.domainType'], conn);
      log.info('host', { generation, hostname, libvirtVersion: versions.libvirt, hypervisorVersion: versions.hypervisor,
        cpus: node.cpus, memoryKiB: node.memoryKiB, domains: domains.length, domainType });
      await notify.status(`connected to libvirt (generation ${generation})`);
    } catch (e) {
      log.warn('host facts unavailable', { err: e });
    }
  });
  client.on('disconnected', () => { void notify.status('libvirt unavailable; reconnecting').catch(() => {}); });

  const stop = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  await client.start();
  await notify.ready('running').catch((e) => log.warn('systemd notify failed', { err: e }));
  log.info('ready');

  const signal = await stop;
  log.info('stopping', { signal });
  await notify.stopping('stopping').catch(() => {});
  await client.stop();
  log.info('stopped');
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    const msg = e instanceof ConfigError ? e.message : e instanceof Error ? e.stack ?? e.message : String(e);
    process.stderr.write(`hostvisord: ${msg}\n`);
    process.exitCode = 1;
  },
);
