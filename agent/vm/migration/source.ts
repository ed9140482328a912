// The source side of one migration, run in the background after VM.migrate
// answered: an outgoing slot, before_vm_migrate_source, migrationCreate on the
// destination agent (retried while it answers migrateLimit), then libvirt
// peer to peer (migrateToURI3) with a monitor that turns job stats into
// VM_migration_status. On success the VM is Down with "migration
// succeeded"; on failure the destination is cleaned up, the VM runs here
// again, and the error names the step.
import { hostname } from 'node:os';
import { enums, LibvirtTimeoutError, type Domain, type TypedParamsRecord } from '../../libvirt/index.js';
import { HostvisorError, MigCancelError, MigrateError } from '../../../api/errors.js';
import { RpcCallError, type HostvisorClient } from '../../../api/client/client.js';
import type { MigrateParamsT, MigrationStatsT, ResultOf } from '../../../api/schema.js';
import type { Vm } from '../vm.js';
import { ExitReason } from '../status.js';
import { pause, type MigrationContext } from './context.js';
import { connectPeer, parseHostPort } from './peer.js';
import { ProgressTracker } from './progress.js';
import { ConvergenceMonitor } from './convergence.js';
import { migrationPlan, failInPostcopy } from './postcopy.js';
import { libvirtPeerUri } from './libvirt-uri.js';
import { withDestinationDiskPaths } from './disk-refresh.js';

const F = enums.DomainMigrateFlags;
const MIGRATE_LIMIT_CODE = 82;
/** After libvirt finished: how long the source waits for its domain's STOPPED (migrated) event. */
const STOPPED_WAIT_MS = 10_000;
/** After success: how long to wait for libvirt's JOB_COMPLETED (the downtime figure); without it the downtime is not reported. */
const COMPLETED_WAIT_MS = 2_000;
/** Bound on each cleanup call to the destination. */
const PEER_CLEANUP_MS = 30_000;

export type Step = 'outgoingSlot' | 'before_vm_migrate_source' | 'connectDestination' | 'migrationCreate' | 'migrateToURI3' | 'timeout' | 'cancelled'
  | 'abort by schedule' | 'progressTimeout' | 'completionTimeout' | 'postcopy';

export class OutgoingMigration {
  readonly stats: MigrationStatsT;
  private readonly progress = new ProgressTracker();
  private readonly cancel = new AbortController();
  private step: Step = 'outgoingSlot';
  private dom: Domain | undefined;
  /** The domain XML as it left (for after_vm_migrate_source). */
  private xml = '<domain/>';
  private migrating = false;
  /** The destination agent's client from connectDestination to the end (VM.refresh_disk goes through it). */
  peer: HostvisorClient | undefined;
  private readonly t0 = performance.now();
  /** JOB_COMPLETED's stats (downtime): the service hands them over; the event may trail the STOPPED one. */
  private completed: TypedParamsRecord | undefined;
  private onCompleted: (() => void) | undefined;
  /** The schedule and deadlines of the running libvirt job. */
  private conv: ConvergenceMonitor | undefined;

  constructor(private readonly c: MigrationContext, readonly vm: Vm, private readonly p: MigrateParamsT, private readonly emit: (s: MigrationStatsT) => void) {
    this.stats = { vmId: vm.id, status: 'in_progress', progress: 0, postcopy: false };
  }

  get running(): boolean { return this.stats.status === 'in_progress'; }

  jobCompleted(params: TypedParamsRecord): void {
    this.completed = params;
    this.onCompleted?.();
  }

  /** libvirt's MIGRATION_ITERATION event for this VM. */
  iteration(n: number): void {
    if (this.migrating) void this.conv?.iteration(n).then(() => this.syncConvergence());
  }

  /** Aborts the migration: the libvirt job if it runs, else the steps before it. */
  async abort(): Promise<void> {
    if (!this.running) throw new MigCancelError(`the migration of VM ${this.vm.id} already ended (${this.stats.status})`);
    if (this.conv?.view.postcopy) throw new MigCancelError(`the migration of VM ${this.vm.id} is in post-copy: the guest already runs on the destination, and that cannot be undone`);
    this.cancel.abort();
    if (this.migrating && this.dom) await this.dom.abortJob();
  }

  async setBandwidth(mibs: number): Promise<void> {
    if (!this.migrating || !this.dom) throw new MigrateError(this.step, 'the libvirt migration has not started yet');
    // In post-copy the limit that matters is the post-copy one.
    await this.dom.migrateSetMaxSpeed(mibs, this.conv?.view.postcopy ? enums.DomainMigrateMaxSpeedFlags.POSTCOPY : 0);
  }

  async run(): Promise<void> {
    const s = this.c.settings;
    const log = this.c.log.child({ vm: this.vm.id, op: 'migration-source', dst: this.p.dst });
    const deadline = Date.now() + (this.p.timeout ?? s.timeoutSec) * 1000;
    const left = (): number => Math.max(0, deadline - Date.now());
    let slot = false;
    let peer: HostvisorClient | undefined;
    let created = false;
    const phases: Record<string, number> = {};
    const mark = (name: string): void => { phases[name] = Math.round(performance.now() - this.t0); };
    this.emit(this.stats);
    try {
      slot = await this.c.outgoing.acquire(left(), this.cancel.signal);
      this.checkCancel();
      if (!slot) throw new MigrateError('outgoingSlot', `no outgoing slot free within the timeout (${s.maxOutgoing} in use)`);
      mark('slot');
      this.step = 'before_vm_migrate_source';
      this.dom = await this.c.manager.domain(this.vm);
      const xml = await this.dom.xml(enums.DomainXMLFlags.MIGRATABLE);
      this.xml = xml;
      let destXml: string | undefined;
      if (this.c.hooks.has('before_vm_migrate_source')) {
        const r = await this.c.hooks.runRaising('before_vm_migrate_source', { data: xml, vmId: this.vm.id, customProperties: this.vm.meta.customProperties });
        if (r.data !== xml) destXml = r.data;
      }
      this.checkCancel();
      mark('hooks');
      this.step = 'connectDestination';
      const { host } = parseHostPort(this.p.dst, s.rpcPort);
      peer = await connectPeer(this.p.dst, {
        pkiDir: s.pkiDir, defaultPort: s.rpcPort, connectTimeoutMs: Math.min(30_000, left()), callTimeoutMs: Math.min(s.createTimeoutMs, left()),
        ...(s.peerTlsServername ? { servername: s.peerTlsServername } : {}),
      });
      this.peer = peer;
      mark('connect');
      this.step = 'migrationCreate';
      const prepared = await this.createOnDestination(peer, destXml ?? xml, left);
      created = true;
      destXml = withDestinationDiskPaths(destXml ?? xml, prepared.params.disks) ?? destXml;
      mark('migrationCreate');
      this.step = 'migrateToURI3';
      await this.migrate(host, destXml, left(), log);
      mark('migrateToURI3');
      await this.succeeded();
      log.info('migration succeeded', { totalMs: this.stats.totalMs, downtimeMs: this.stats.downtime, phasesMs: phases });
    } catch (e) {
      const err = this.failure(e);
      log.warn('migration failed', { step: err.step, err: e, phasesMs: phases });
      if (created && peer) await this.cleanupDestination(peer, log);
      if (err.step === 'postcopy') await failInPostcopy(this.c, this.vm, this.dom, log);
      else await this.recover(log);
      this.finish('failed', { code: err.code, message: err.message, step: err.step });
    } finally {
      if (slot) this.c.outgoing.release();
      this.peer = undefined;
      if (peer) await peer.close().catch(() => {});
    }
  }

  private checkCancel(): void {
    if (this.cancel.signal.aborted) throw new MigCancelError(`migration cancelled at ${this.step}`);
  }

  /** migrationCreate; a destination busy with its incoming migrations is asked again after retryIntervalMs. */
  private async createOnDestination(peer: HostvisorClient, xml: string, left: () => number): Promise<ResultOf<'VM.migrationCreate'>> {
    for (;;) {
      try {
        return await peer.call('VM.migrationCreate', { vmID: this.vm.id, params: { xml, srcHost: hostname() } }, { timeoutMs: Math.min(this.c.settings.createTimeoutMs, Math.max(1, left())) });
      } catch (e) {
        if (!(e instanceof RpcCallError && e.code === MIGRATE_LIMIT_CODE)) throw e;
        if (left() <= this.c.settings.retryIntervalMs) throw new MigrateError('migrationCreate', `the destination stayed at its incoming limit until the timeout: ${e.message}`, { cause: e });
        this.c.log.info('destination busy (migrateLimit); retrying', { vm: this.vm.id, retryInMs: this.c.settings.retryIntervalMs });
        await pause(this.c.settings.retryIntervalMs, this.cancel.signal);
        this.checkCancel();
      }
    }
  }

  private async migrate(host: string, destXml: string | undefined, timeoutMs: number, log: ReturnType<MigrationContext['log']['child']>): Promise<void> {
    const s = this.c.settings;
    const dom = this.dom!;
    const duri = libvirtPeerUri(host, s);
    const plan = migrationPlan(this.p, s, Number((await dom.info()).maxMemKiB) * 1024);
    let flags = F.LIVE | F.PEER2PEER | F.PERSIST_DEST;
    if (this.p.autoConverge) flags |= F.AUTO_CONVERGE;
    if (this.p.compressed) flags |= F.COMPRESSED;
    if (plan.postcopy) flags |= F.POSTCOPY;
    this.conv = new ConvergenceMonitor(dom, plan.schedule, plan.limits, log, () => this.syncConvergence());
    const params = {
      bandwidth: this.p.maxBandwidth ?? s.maxBandwidthMiBs,
      migrate_uri: this.p.dstqemu ? `tcp://${this.p.dstqemu}` : undefined,
      destination_xml: destXml,
      // The bandwidth is the link share the migration may take, in post-copy too (QEMU's default there is unlimited).
      'bandwidth.postcopy': plan.postcopy ? this.p.maxBandwidth ?? s.maxBandwidthMiBs : undefined,
    };
    const monitor = setInterval(() => { void this.sample(); }, s.monitorIntervalMs);
    // The init actions need the job running: try them soon, not only at the first monitor tick.
    const early = setTimeout(() => { void this.sample(); }, Math.min(500, s.monitorIntervalMs));
    this.migrating = true;
    try {
      if (this.cancel.signal.aborted) throw new MigCancelError('migration cancelled before libvirt started it');
      log.info('libvirt migration starting', { duri, flags, bandwidthMiBs: params.bandwidth, migrateUri: params.migrate_uri, schedule: plan.schedule, ...plan.limits });
      await dom.migrateToURI3(duri, params, { flags, timeoutMs: Math.max(1, timeoutMs) });
    } catch (e) {
      if (e instanceof LibvirtTimeoutError) {
        await dom.abortJob().catch(() => {});
        throw new MigrateError('timeout', `the migration did not end within its timeout; job aborted`, { cause: e });
      }
      throw e;
    } finally {
      this.migrating = false;
      this.conv.stop();
      clearInterval(monitor);
      clearTimeout(early);
    }
  }

  private sampling = false;
  /** One monitor tick: job stats -> progress event (never two at once; each call bounded by libvirt's call timeout). */
  private async sample(): Promise<void> {
    if (this.sampling || !this.migrating || !this.dom) return;
    this.sampling = true;
    try {
      const { stats } = await this.dom.jobStats();
      if (!this.migrating) return;
      const js = this.progress.update(stats);
      this.stats.progress = js.progress;
      if (js.dataRemaining !== undefined) this.stats.dataRemaining = js.dataRemaining;
      await this.conv?.sample(js);
      this.syncConvergence(false);
      this.emit(this.stats);
    } catch (e) {
      this.c.log.debug('job stats failed', { vm: this.vm.id, err: e });
    } finally {
      this.sampling = false;
    }
  }

  /** The downtime in force and post-copy into the stats; an event when they changed. */
  private syncConvergence(emit = true): void {
    const v = this.conv?.view;
    if (!v || !this.running) return;
    const changed = v.postcopy !== this.stats.postcopy || v.maxDowntime !== this.stats.maxDowntime;
    this.stats.postcopy = v.postcopy;
    if (v.iteration !== undefined) this.stats.memoryIteration = v.iteration;
    if (v.maxDowntime !== undefined) this.stats.maxDowntime = v.maxDowntime;
    if (changed && emit) this.emit(this.stats);
  }

  private async succeeded(): Promise<void> {
    const m = this.c.manager;
    // libvirt's STOPPED (migrated) event sets Down with "migration succeeded"; it normally arrives before migrateToURI3 returns.
    const down = await this.vm.waitFor((st) => st === 'Down', STOPPED_WAIT_MS);
    if (!down) m.setStatus(this.vm, 'Down', { exit: { exitCode: 0, exitReason: ExitReason.MIGRATION_SUCCEEDED, exitMessage: 'migration succeeded' } });
    this.vm.domId = undefined;
    if (!this.completed) {
      const wait = new AbortController();
      this.onCompleted = () => wait.abort();
      await pause(COMPLETED_WAIT_MS, wait.signal);
      this.onCompleted = undefined;
    }
    const downtime = this.completed ? Number(this.completed['downtime']) : NaN;
    if (Number.isFinite(downtime)) this.stats.downtime = downtime;
    this.stats.dataRemaining = 0;
    this.finish('done');
    await this.c.disks?.released(this.vm.id, this.vm.disks);
    if (this.c.hooks.has('after_vm_migrate_source')) {
      await this.c.hooks.run('after_vm_migrate_source', { data: this.xml, vmId: this.vm.id, customProperties: this.vm.meta.customProperties })
        .catch((e: unknown) => this.c.log.warn('after_vm_migrate_source hooks failed', { vm: this.vm.id, err: e }));
    }
  }

  private finish(status: 'done' | 'failed', error?: MigrationStatsT['error']): void {
    this.stats.status = status;
    if (status === 'done') this.stats.progress = this.progress.done();
    this.stats.totalMs = Math.round(performance.now() - this.t0);
    if (error) this.stats.error = error;
    this.emit(this.stats);
  }

  private failure(e: unknown): { code: number; message: string; step: string } {
    const cancelled = this.cancel.signal.aborted;
    if (this.conv?.view.postcopy) return { code: 12, message: `post-copy failed: ${(e as Error).message}; the VM was destroyed on both hosts (neither holds its whole memory)`, step: 'postcopy' };
    const by = this.conv?.aborted;
    if (by && !cancelled) return { code: 12, message: `${by.step}: ${by.message}`, step: by.step };
    const step = cancelled ? 'cancelled' : e instanceof MigrateError ? e.step : this.step;
    if (cancelled) return { code: 47, message: `migration cancelled during ${this.step}`, step };
    const code = e instanceof HostvisorError || e instanceof RpcCallError ? e.code : 12;
    return { code, message: `${this.step}: ${(e as Error).message}`, step };
  }

  /** The destination forgets the VM: its domain destroyed, its disks torn down. Bounded; a failure is logged. */
  private async cleanupDestination(peer: HostvisorClient, log: ReturnType<MigrationContext['log']['child']>): Promise<void> {
    try {
      await peer.call('VM.destroy', { vmID: this.vm.id }, { timeoutMs: PEER_CLEANUP_MS });
    } catch (e) {
      if (!(e instanceof RpcCallError && e.code === 1)) log.warn('could not clean up the destination', { err: e });
    }
  }

  /** The VM runs here again: its status from libvirt, not assumed. */
  private async recover(log: ReturnType<MigrationContext['log']['child']>): Promise<void> {
    const m = this.c.manager;
    if (this.vm.status !== 'Migration Source') return; // it went Down (or was destroyed) meanwhile
    try {
      const dom = this.dom ?? await m.domain(this.vm);
      const st = await dom.state();
      const S = enums.DomainState;
      if (st.state === S.PAUSED && st.reason === enums.DomainPausedReason.MIGRATION) await dom.resume();
      const now = st.state === S.PAUSED && st.reason !== enums.DomainPausedReason.MIGRATION ? 'Paused' : 'Up';
      m.setStatus(this.vm, now, now === 'Paused' ? { pauseCode: 'NOERR' } : {});
    } catch (e) {
      log.warn('could not read the VM state after the failed migration', { err: e });
      m.setStatus(this.vm, 'Unknown');
    }
  }
}
