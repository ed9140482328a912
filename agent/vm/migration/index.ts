// Live migration between hosts (issue 12, agent part): the verbs, the limits and the settings they take.
import type { Config } from '../../config/settings.js';
import type { MigrationSettings } from './context.js';
import type { Migrations } from './service.js';

export { Migrations } from './service.js';
export { Slots } from './slots.js';
export type { MigrationContext, MigrationSettings } from './context.js';

export type MigrationHandlers = ReturnType<Migrations['handlers']>;

export function migrationSettings(c: Config): MigrationSettings {
  return {
    maxOutgoing: c['migration.maxOutgoing'], maxIncoming: c['migration.maxIncoming'], retryIntervalMs: c['migration.retryIntervalMs'],
    maxBandwidthMiBs: c['migration.maxBandwidthMiBs'], timeoutSec: c['migration.timeoutSec'], monitorIntervalMs: c['migration.monitorIntervalMs'],
    createTimeoutMs: c['migration.createTimeoutMs'], incomingStartTimeoutMs: c['migration.incomingStartTimeoutMs'],
    destinationTimeoutMs: c['migration.destinationTimeoutMs'], libvirtTransport: c['migration.libvirtTransport'],
    libvirtPkiPath: c['migration.libvirtPkiPath'],
    peerTlsServername: c['migration.peerTlsServername'], rpcPort: c['rpc.port'], pkiDir: c['pki.dir'],
    maxDowntimeMs: c['migration.maxDowntimeMs'], downtimeSteps: c['migration.downtimeSteps'], defaultSchedule: c['migration.defaultSchedule'],
    progressTimeoutSec: c['migration.progressTimeoutSec'], completionTimeoutPerGiBSec: c['migration.completionTimeoutPerGiBSec'],
  };
}
