// hostvisord's wiring: config, PKI, libvirt, VM registry and operations,
// stats, the RPC listener, events to engines, and systemd notification.
import { authorizePeerHost, identityList } from './rpc/identity.js';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { ReconnectingLibvirtClient, releaseFreedMalloc } from './libvirt/index.js';
import type { Config } from './config/settings.js';
import { createLogger, PhaseTimer, type Logger } from './log.js';
import { createNotifier, type Notifier } from './systemd/notify.js';
import { resolveDomainType, type DomainType } from './virt/domain-type.js';
import { VERSION, PACKAGE_ROOT } from './version.js';
import { Hooks } from './hooks/hooks.js';
import { StoragePool } from './storage/pool.js';
import { storageSettings } from './storage/index.js';
import { createStorageHandlers } from './storage/handlers.js';
import { ThinProvisioning } from './storage/thinp/thin-provisioning.js';
import { VmDisks } from './storage/vm-disks.js';
import { DiskRecovery } from './vm/disk-recovery.js';
import { SnapshotRecovery } from './vm/snapshot-recovery.js';
import { parseTimeoutOverrides } from './hooks/points.js';
import { join } from 'node:path';
import { ensureDevPki, pkiPaths } from './pki/dev-ca.js';
import { VmManager } from './vm/manager.js';
import { VmOperations } from './vm/operations.js';
import { VmStatsSampler } from './stats/vm-stats-sampler.js';
import { HostStatsSampler } from './host/host-stats.js';
import { capabilitiesWithNetworks } from './host/capabilities.js';
import { Dispatcher } from './rpc/dispatcher.js';
import { RpcServer } from './rpc/server.js';
import { RawJson } from './rpc/reply.js';
import { fanOutEvents } from './rpc/events.js';
import { createHandlers } from './handlers.js';
import { Migrations, migrationSettings, Slots } from './vm/migration/index.js';
import { createLiveMerges, type LiveMerges } from './vm/merge/index.js';
import { openRpcDocument } from '../api/openrpc.js';
import { callTimeoutMs, Methods, type MethodDef, type TimeoutBounds } from '../api/schema.js';
import { RecoveryError, ShuttingDownError } from '../api/errors.js';
import { HostNetworks } from './network/index.js';
import { createNetworkHandlers } from './network/handlers.js';
import { networkBridge } from './network/vm-nics.js';
import { MemoryRelief } from './memory-relief.js';
import { guestPollerFromConfig, type GuestPoller } from './vm/guest/index.js';

export class Hostvisord {
  readonly log: Logger;
  readonly client: ReconnectingLibvirtClient;
  readonly manager: VmManager;
  private readonly notify: Notifier;
  private server: RpcServer | undefined;
  private vmStats: VmStatsSampler | undefined;
  private guests: GuestPoller | undefined;
  private readonly hostStats: HostStatsSampler;
  private timers: NodeJS.Timeout[] = [];
  private accepting = true;
  private domainType: DomainType = 'qemu';
  readonly hooks: Hooks;
  readonly pool: StoragePool;
  readonly thinp: ThinProvisioning;
  private diskRecovery: DiskRecovery | undefined;
  private snapshotRecovery: SnapshotRecovery | undefined;
  private migrations: Migrations | undefined;
  private merges: LiveMerges | undefined;
  /** Host networks (setupNetworks, capabilities, restore); VM NICs find their network's bridge here. */
  readonly networks: HostNetworks;
  private readonly memoryRelief: MemoryRelief;

  constructor(readonly config: Config, log?: Logger) {
    this.log = log ?? createLogger({ level: config['log.level'], bindings: { svc: 'hostvisord' } });
    this.notify = createNotifier();
    this.client = new ReconnectingLibvirtClient(config['libvirt.uri'], {
      callTimeoutMs: config['libvirt.callTimeoutMs'],
      keepAlive: { intervalSec: config['libvirt.keepAliveIntervalSec'], count: config['libvirt.keepAliveCount'] },
      backoff: { initialMs: config['libvirt.reconnectInitialMs'], maxMs: config['libvirt.reconnectMaxMs'] },
      log: this.log,
    });
    this.manager = new VmManager(this.client, this.log.child({ component: 'vm' }));
    this.networks = HostNetworks.fromConfig(config, this.log.child({ component: 'network' }));
    this.hooks = new Hooks({
      dir: config['hooks.dir'],
      timeoutMs: config['hooks.timeoutMs'],
      timeoutOverrides: parseTimeoutOverrides(config['hooks.timeoutOverrides']),
      outputCapBytes: config['hooks.outputCapBytes'],
      pythonPath: config['hooks.pythonPath'] || join(PACKAGE_ROOT, 'hooks', 'lib'),
      runDir: config['hooks.runDir'],
      log: this.log.child({ component: 'hooks' }),
    });
    this.pool = new StoragePool({
      ...storageSettings(config),
      sanlockIoTimeoutSec: config['storage.sanlockIoTimeoutSec'], spmWatchIntervalMs: config['storage.spmWatchIntervalMs'],
      taskShutdownWaitMs: config['storage.taskShutdownWaitMs'],
      monitorIntervalMs: config['storage.monitorIntervalMs'], monitorReadTimeoutMs: config['storage.monitorReadTimeoutMs'],
      monitorRefreshIntervalMs: config['storage.monitorRefreshIntervalMs'],
      mailboxReplyPollMs: config['mailbox.replyPollMs'], mailboxEventPollMs: config['mailbox.eventPollMs'], extendTimeoutMs: config['thinp.extendTimeoutMs'],
      chunkMiB: config['thinp.chunkMiB'],
    }, this.log.child({ component: 'storage' }));
    this.thinp = new ThinProvisioning({
      libvirt: this.client, storage: this.pool, vms: this.manager,
      destinationRefresh: async (vmId, volumeId, sizeMiB) => this.migrations?.refreshDestination(vmId, volumeId, sizeMiB),
      policy: { chunkMiB: config['thinp.chunkMiB'], percent: config['thinp.percent'], maxFactor: config['storage.maxSizeFactor'] },
      pollMs: config['thinp.pollMs'], retryAfterMs: config['thinp.retryAfterMs'],
      log: this.log.child({ component: 'thinp' }),
    });
    const cpuacctDir = config['host.cpuAccountingCgroup'];
    this.hostStats = new HostStatsSampler(cpuacctDir ? { cgroupCpu: { cpuacctDir, quotaDir: config['host.cpuQuotaCgroup'] } } : {});
    this.memoryRelief = new MemoryRelief({
      checkMs: config['memory.releaseCheckMs'], slackBytes: config['memory.releaseSlackBytes'], log: this.log.child({ component: 'memory' }),
    });
  }

  async start(): Promise<AddressInfo> {
    const timer = new PhaseTimer();
    const c = this.config;
    this.log.info('starting', { version: VERSION, pid: process.pid, libvirtUri: c['libvirt.uri'] });
    const paths = c['pki.createDevCa'] ? (await ensureDevPki(c['pki.dir'])).paths : pkiPaths(c['pki.dir']);
    const tls = { key: readFileSync(paths.hostKey), cert: readFileSync(paths.hostCert), ca: readFileSync(paths.caCert) };
    timer.mark('pki');
    await this.hooks.start();
    await this.hooks.run('before_vdsm_start', { data: '{}' });
    timer.mark('hooks');

    this.pool.imageUsers = (sd, img) => this.manager.list().filter((vm) => vm.status !== 'Down' && vm.meta.devices.some((d) => d.storage?.domainID === sd && d.storage.imageID === img)).map((vm) => vm.id);
    const disks = new VmDisks(this.pool, this.thinp.monitor, this.hooks, this.log.child({ component: 'storage' }));
    // After a restart: the disks of the VMs found running are prepared and watched again once the pool is connected.
    // A snapshot cut short by a restart is settled first (it says which leaf each disk runs on).
    this.snapshotRecovery = new SnapshotRecovery({ vms: this.manager, log: this.log.child({ component: 'vm' }) });
    this.snapshotRecovery.start();
    this.diskRecovery = new DiskRecovery({ vms: this.manager, disks, pool: this.pool, log: this.log.child({ component: 'vm' }) });
    this.diskRecovery.start();
    const ops = new VmOperations({
      manager: this.manager, log: this.log.child({ component: 'vm' }),
      domainType: () => this.domainType,
      displayListen: c['vm.displayListen'],
      timeouts: { launchMs: c['vm.launchTimeoutMs'], destroyMs: c['vm.destroyTimeoutMs'], shutdownStepMs: c['vm.shutdownStepTimeoutMs'], hotunplugMs: c['vm.hotunplugTimeoutMs'], snapshotFreezeMs: c['vm.snapshotFreezeTimeoutMs'] },
      accepting: () => this.accepting,
      hooks: this.hooks,
      disks,
      networkBridge: (network, field) => networkBridge(this.networks, network, field),
    });
    this.migrations = new Migrations({
      manager: this.manager, hooks: this.hooks, disks, log: this.log.child({ component: 'migration' }),
      refreshVolume: (sd, vol) => this.pool.refreshVolume(sd, vol),
      settings: migrationSettings(c), accepting: () => this.accepting,
      outgoing: new Slots(() => c['migration.maxOutgoing']), incoming: new Slots(() => c['migration.maxIncoming']),
    });
    this.merges = createLiveMerges(c, { manager: this.manager, storage: this.pool, monitor: this.thinp.monitor, log: this.log.child({ component: 'merge' }) });
    this.vmStats = new VmStatsSampler({ getConnection: () => this.client.connection, intervalMs: c['stats.vmIntervalMs'], log: this.log.child({ component: 'stats' }) });
    this.guests = guestPollerFromConfig(c, this.manager, this.client, this.log.child({ component: 'guest' }));
    await this.hostStats.sample();
    this.timers.push(setInterval(() => { void this.hostStats.sample().catch(() => {}); }, c['stats.hostIntervalMs']).unref());

    const discoverDocument = RawJson.of(openRpcDocument(VERSION));
    const timeouts: TimeoutBounds = { requestMs: c['rpc.requestTimeoutMs'], dhcpMs: c['network.dhcpTimeoutMs'] };
    const dispatcher = new Dispatcher(createHandlers({
      manager: this.manager, ops,
      vmSample: (uuid) => ({ ...this.vmStats?.stats(uuid), ...this.guests?.info(uuid) }),
      hostStats: (n, a) => this.hostStats.current(n, a),
      capabilities: () => capabilitiesWithNetworks(() => this.client.connection, this.networks, { softwareVersion: VERSION, defaultDomainType: this.domainType }),
      confirmConnectivity: () => this.networks.connectivity.touch(),
      hooks: this.hooks,
      storage: createStorageHandlers(this.pool),
      migration: this.migrations.handlers(),
      merge: this.merges.handlers(),
      network: createNetworkHandlers(this.networks, this.hooks, (request) => callTimeoutMs(Methods['Host.setupNetworks'], request, timeouts)),
    }), {
      log: this.log.child({ component: 'rpc' }),
      timeouts,
      gate: (m) => (!this.accepting ? new ShuttingDownError()
        : this.manager.recovering && !(Methods[m] as MethodDef).duringRecovery ? new RecoveryError() : undefined),
      // Any engine request proves the engine still reaches us (setupNetworks' connectivity check).
      onRequest: () => this.networks.connectivity.touch(),
      // Built and serialised once: it does not change while the agent runs, and it is ~100 KB.
      extra: { 'rpc.discover': () => discoverDocument },
      maxDepth: c['rpc.maxNestingDepth'],
      maxBatchReplyBytes: c['rpc.maxBatchReplyBytes'],
      authorize: (method, params) => authorizePeerHost(method, params, (vmId) => this.manager.vms.get(vmId)?.status),
    });
    const server = new RpcServer(dispatcher, {
      host: c['rpc.host'], port: c['rpc.port'], tls,
      maxMessageBytes: c['rpc.maxMessageBytes'],
      maxInFlightPerConnection: c['rpc.maxInFlightPerConnection'],
      maxConnectionBytes: c['rpc.maxConnectionBytes'],
      maxTotalBytes: c['rpc.maxTotalBytes'],
      partialMessageTimeoutMs: c['rpc.partialMessageTimeoutMs'],
      identities: { full: identityList(c['rpc.clientIdentities']), peerHost: identityList(c['rpc.peerHostIdentities']) },
      stalledCloseMs: c['rpc.stalledCloseMs'],
      tlsHandshakeTimeoutMs: c['rpc.tlsHandshakeTimeoutMs'],
      upgradeTimeoutMs: c['rpc.upgradeTimeoutMs'],
      maxConnectionsPerPeer: c['rpc.maxConnectionsPerPeer'],
      maxConnections: c['rpc.maxConnections'],
      log: this.log.child({ component: 'rpc' }),
    });
    this.server = server;
    fanOutEvents({ vms: this.manager, hooks: this.hooks.inventory, networks: this.networks, migrations: this.migrations, guests: this.guests, tasks: this.pool, merges: this.merges }, (method, params) => server.broadcast(method, params));

    // Recovery: READY=1 only once the VMs are reconciled with libvirt.
    const recovered = new Promise<void>((resolve) => this.manager.once('recovered', () => resolve()));
    this.client.on('connected', () => {
      void resolveDomainType(c['virt.domainType'], this.client.connection).then((t) => { this.domainType = t; }, () => {});
    });
    this.client.on('disconnected', () => { void this.notify.status('libvirt unavailable; reconnecting').catch(() => {}); });
    await this.manager.start();
    await this.guests.start();
    await this.migrations.start();
    await this.merges.start();
    await this.thinp.start();
    const address = await server.listen();
    timer.mark('listen');
    await this.client.start();
    timer.mark('libvirt');
    await recovered;
    timer.mark('recovery');
    this.vmStats.start();
    this.memoryRelief.start();
    await this.notify.ready(`running; ${this.manager.vms.size} VMs`).catch((e) => this.log.warn('systemd notify failed', { err: e }));
    const wd = this.notify.watchdogIntervalMs(c['systemd.watchdogFraction']);
    if (wd) this.timers.push(setInterval(() => { void this.notify.watchdog().catch(() => {}); }, wd));
    void releaseFreedMalloc().catch(() => false); // start-up's freed parser/compiler memory, kept resident by malloc otherwise
    this.log.info('ready', { port: address.port, vms: this.manager.vms.size, watchdogMs: wd, ...timer.fields() });
    return address;
  }

  /** SIGTERM: stop taking work, finish what is in flight, leave the VMs running. Safe at any point of start(). */
  async stop(): Promise<void> {
    const timer = new PhaseTimer();
    this.accepting = false;
    await this.notify.stopping('stopping').catch(() => {});
    this.server?.stopAccepting();
    // A setupNetworks in flight ends before the agent goes: one waiting for a
    // confirmation (engines send 120 s; systemd kills us after 60) is rolled
    // back now, so the wait is the rollback's bound, not the request timeout.
    this.networks.connectivity.abort('the agent is stopping');
    const settleMs = this.networks.settleBoundMs();
    if (!(await this.networks.idle(settleMs))) this.log.error('setupNetworks still running at stop', { waitedMs: settleMs });
    await this.server?.close();
    timer.mark('drain');
    for (const t of this.timers) clearInterval(t);
    this.memoryRelief.stop();
    this.vmStats?.stop();
    this.guests?.stop();
    this.diskRecovery?.stop();
    this.snapshotRecovery?.stop();
    await this.migrations?.stop();
    await this.merges?.stop();
    await this.thinp.stop();
    await this.pool.disconnect().catch((e) => this.log.warn('pool disconnect failed', { err: e }));
    await this.client.stop();
    timer.mark('libvirt');
    await this.hooks.run('after_vdsm_stop', { data: '{}' }).catch((e) => this.log.warn('after_vdsm_stop hooks failed', { err: e }));
    await this.hooks.stop();
    timer.mark('hooks');
    this.log.info('stopped', timer.fields());
  }
}
