// Migrations found running when the agent (re)starts. libvirt keeps the job
// across an agent restart: on the source the domain's job is an outgoing
// migration (libvirt's p2p migration runs inside the source libvirtd, not in
// the agent that asked for it); on the destination the incoming domain is
// paused with reason "migration". After every reconciliation with libvirt
// the agent looks for both, shows them as Migration Source / Migration
// Destination, and follows each to its end: it never resumes an incoming
// domain and never starts a second copy of a VM, so a restart can neither
// lose a VM nor run one twice.
import { enums, LibvirtError, toNumber, type Domain, type TypedParamsRecord } from '../../libvirt/index.js';
import { MigCancelError, MigrateError } from '../../../api/errors.js';
import type { MigrationStatsT } from '../../../api/schema.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import type { Vm } from '../vm.js';
import { ExitReason } from '../status.js';
import { pause, type MigrationContext } from './context.js';
import { ProgressTracker } from './progress.js';
import { isArrived } from './destination.js';

const S = enums.DomainState;
const J = enums.DomainJobType;
/** After libvirt ended the job: how long the source waits for the STOPPED (migrated) event before it reads the state itself. */
const END_SETTLE_MS = 3_000;

/** What the verbs need of an outgoing migration, whether this agent started it or found it running. */
export interface OutgoingJob {
  readonly running: boolean;
  readonly stats: MigrationStatsT;
  abort(): Promise<void>;
  setBandwidth(mibs: number): Promise<void>;
  jobCompleted(params: TypedParamsRecord): void;
  /** The destination agent's client while the migration has one (for VM.refresh_disk). */
  readonly peer?: HostvisorClient | undefined;
  /** A new memory iteration (libvirt's event): the convergence schedule steps; a job found after a restart has none. */
  iteration?(n: number): void;
}

export type FoundJob = { kind: 'outgoing'; stats: TypedParamsRecord } | { kind: 'incoming' } | { kind: 'none' };

const isNoDomain = (e: unknown): boolean => e instanceof LibvirtError && e.code === enums.ErrorNumber.ERR_NO_DOMAIN;

/**
 * What libvirt says about one domain's migration. An incoming domain is
 * recognised by its state (paused for migration, or running in post-copy), since libvirt gives job
 * statistics on the source only; an outgoing one by its job's operation.
 */
export async function findMigrationJob(dom: Domain): Promise<FoundJob> {
  const st = await dom.state();
  let job: { type: number; stats: TypedParamsRecord } | undefined;
  try {
    job = await dom.jobStats();
  } catch (e) {
    if (isNoDomain(e)) throw e;
    job = undefined; // "statistics only on the source host": an incoming job, or none
  }
  const op = job ? toNumber(job.stats['operation']) : NaN;
  if (job && job.type !== J.NONE && op === enums.DomainJobOperation.MIGRATION_OUT) return { kind: 'outgoing', stats: job.stats };
  const arriving = (st.state === S.PAUSED && st.reason === enums.DomainPausedReason.MIGRATION)
    || (st.state === S.RUNNING && st.reason === enums.DomainRunningReason.POSTCOPY);
  if (arriving && op !== enums.DomainJobOperation.MIGRATION_OUT) return { kind: 'incoming' };
  return { kind: 'none' };
}

/** An outgoing migration found running after a restart: followed through libvirt's job until the domain leaves or libvirt ends it. */
export class RecoveredOutgoing implements OutgoingJob {
  readonly stats: MigrationStatsT;
  private readonly progress = new ProgressTracker();
  private readonly t0 = performance.now();
  private completed: TypedParamsRecord | undefined;
  private cancelled = false;

  /**
   * @param xml the domain XML read when the job was found, while the domain is still here:
   *   after_vm_migrate_source is given it when the VM has left, as for a migration this agent started.
   */
  constructor(private readonly c: MigrationContext, readonly vm: Vm, private readonly dom: Domain, first: TypedParamsRecord,
    private readonly emit: (s: MigrationStatsT) => void, private readonly xml?: string) {
    this.stats = { vmId: vm.id, status: 'in_progress', progress: 0, postcopy: false };
    this.fold(first);
  }

  get running(): boolean { return this.stats.status === 'in_progress'; }

  jobCompleted(params: TypedParamsRecord): void { this.completed = params; }

  async abort(): Promise<void> {
    if (!this.running) throw new MigCancelError(`the migration of VM ${this.vm.id} already ended (${this.stats.status})`);
    this.cancelled = true;
    await this.dom.abortJob();
  }

  async setBandwidth(mibs: number): Promise<void> {
    if (!this.running) throw new MigrateError('migrateToURI3', 'the migration already ended');
    await this.dom.migrateSetMaxSpeed(mibs);
  }

  /** Polls the job every monitor interval; bounded by the migration timeout setting. */
  async follow(): Promise<void> {
    const s = this.c.settings;
    const log = this.c.log.child({ vm: this.vm.id, op: 'migration-source', recovered: true });
    const until = Date.now() + s.timeoutSec * 1000;
    this.emit(this.stats);
    log.info('following an outgoing migration found running', { progress: this.stats.progress, dataRemaining: this.stats.dataRemaining });
    while (this.running) {
      await this.vm.waitFor((st) => st === 'Down', s.monitorIntervalMs);
      if (this.vm.status === 'Down') return this.ended(log);
      let job: FoundJob;
      try {
        job = await findMigrationJob(this.dom);
      } catch (e) {
        if (isNoDomain(e)) return this.ended(log);
        log.debug('job stats failed', { err: e });
        continue;
      }
      if (job.kind === 'outgoing') {
        this.fold(job.stats);
        this.emit(this.stats);
        if (Date.now() > until) {
          log.warn('the recovered migration ran past migration.timeoutSec; aborting it', { timeoutSec: s.timeoutSec });
          await this.dom.abortJob().catch((e: unknown) => log.warn('abortJob failed', { err: e }));
        }
        continue;
      }
      // libvirt ended the job: the domain leaves (success) or stays here (failure).
      await this.vm.waitFor((st) => st === 'Down', END_SETTLE_MS);
      return this.ended(log);
    }
  }

  private fold(stats: TypedParamsRecord): void {
    const js = this.progress.update(stats);
    this.stats.progress = js.progress;
    if (js.dataRemaining !== undefined) this.stats.dataRemaining = js.dataRemaining;
  }

  private async ended(log: ReturnType<MigrationContext['log']['child']>): Promise<void> {
    const m = this.c.manager;
    this.stats.totalMs = Math.round(performance.now() - this.t0);
    const st = this.vm.status === 'Down' ? undefined : await this.dom.state().catch((e: unknown) => (isNoDomain(e) ? undefined : null));
    if (st === undefined) {
      // Gone: the lifecycle event said why; without it (missed while reconnecting), gone after an outgoing job is migrated.
      if (this.vm.status !== 'Down') m.setStatus(this.vm, 'Down', { exit: { exitCode: 0, exitReason: ExitReason.MIGRATION_SUCCEEDED, exitMessage: 'migration succeeded' } });
      const migrated = this.vm.exit?.exitMessage === 'migration succeeded';
      if (migrated) {
        this.stats.progress = this.progress.done();
        this.stats.dataRemaining = 0;
        const downtime = this.completed ? Number(this.completed['downtime']) : NaN;
        if (Number.isFinite(downtime)) this.stats.downtime = downtime;
        this.stats.status = 'done';
        await this.c.disks?.released(this.vm.id, this.vm.disks).catch((e: unknown) => log.warn('could not release the disks', { err: e }));
        if (this.xml && this.c.hooks.has('after_vm_migrate_source')) {
          await this.c.hooks.run('after_vm_migrate_source', { data: this.xml, vmId: this.vm.id, customProperties: this.vm.meta.customProperties })
            .catch((e: unknown) => log.warn('after_vm_migrate_source hooks failed', { err: e }));
        }
      } else {
        this.stats.status = 'failed';
        this.stats.error = { code: 12, step: 'migrateToURI3', message: `the VM stopped during the migration: ${this.vm.exit?.exitMessage ?? 'unknown'}` };
      }
    } else {
      // Still here: libvirt gave up and (for pre-copy) resumed the guest. Reported as it is, never resumed by us.
      this.stats.status = 'failed';
      this.stats.error = this.cancelled
        ? { code: 47, step: 'cancelled', message: 'migration cancelled' }
        : { code: 12, step: 'migrateToURI3', message: 'libvirt ended the migration without moving the VM (found after an agent restart)' };
      if (st && (st.state === S.RUNNING || st.state === S.BLOCKED)) m.setStatus(this.vm, 'Up');
      else if (st && st.state === S.PAUSED) m.setStatus(this.vm, 'Paused', { pauseCode: 'NOERR' });
      else m.setStatus(this.vm, 'Unknown');
    }
    log.info('recovered outgoing migration ended', { status: this.stats.status, vmStatus: this.vm.status, totalMs: this.stats.totalMs, error: this.stats.error });
    this.emit(this.stats);
  }
}

export interface RecoveryTargets {
  /** Takes an outgoing migration found running (for the verbs and the job-completed event). */
  outgoing(vm: Vm, job: RecoveredOutgoing): void;
  /** Takes an incoming migration found running: followed like one this agent prepared. */
  incoming(vm: Vm): void;
  /** True when the agent already follows a migration of this VM. */
  tracked(vmId: string): boolean;
}

/** One pass over the VMs after a reconciliation: each migration libvirt still runs is found and followed. */
export async function recoverMigrations(c: MigrationContext, to: RecoveryTargets, emit: (vmId: string, s: MigrationStatsT) => void): Promise<void> {
  const m = c.manager;
  const candidates = m.list().filter((vm) => !vm.external && (vm.status === 'Up' || vm.status === 'Paused') && !to.tracked(vm.id));
  await Promise.all(candidates.map(async (vm) => {
    try {
      const dom = await m.conn().lookupByUUID(vm.id);
      const job = await findMigrationJob(dom);
      if (job.kind === 'none' || to.tracked(vm.id)) return;
      c.log.info('migration found running after the agent started', { vm: vm.id, role: job.kind });
      if (job.kind === 'incoming') {
        to.incoming(vm);
        void watchIncoming(c, vm, dom);
        return;
      }
      const xml = await dom.xml().catch((e: unknown) => { c.log.warn('could not read the migrating domain XML (after_vm_migrate_source will not run)', { vm: vm.id, err: e }); return undefined; });
      const rec = new RecoveredOutgoing(c, vm, dom, job.stats, (s) => emit(vm.id, { ...s }), xml);
      to.outgoing(vm, rec);
      m.setStatus(vm, 'Migration Source');
      void rec.follow().catch((e: unknown) => c.log.error('recovered migration follower failed', { vm: vm.id, err: e }));
    } catch (e) {
      if (!isNoDomain(e)) c.log.warn('could not check the VM for a running migration', { vm: vm.id, err: e });
    }
  }));
}

/**
 * Level-triggered backstop for an incoming migration found after a restart:
 * its outcome events may have come while the agent was down. The domain
 * running means it arrived (Up); gone means libvirt ended it (Down, and the
 * destination follower cleans up). A paused incoming domain is never resumed.
 */
async function watchIncoming(c: MigrationContext, vm: Vm, dom: Domain): Promise<void> {
  const m = c.manager;
  const until = Date.now() + c.settings.destinationTimeoutMs;
  while (vm.status === 'Migration Destination' && Date.now() < until && m.vms.get(vm.id) === vm) {
    try {
      const st = await dom.state();
      if (vm.status !== 'Migration Destination') return;
      if (isArrived(st)) { m.setStatus(vm, 'Up'); return; }
      const inPostcopy = st.state === S.RUNNING && st.reason === enums.DomainRunningReason.POSTCOPY;
      if (!inPostcopy && (st.state !== S.PAUSED || st.reason !== enums.DomainPausedReason.MIGRATION)) {
        // Neither arriving nor arrived (e.g. shut off, or paused otherwise after a failed post-copy): libvirt ended it.
        m.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.GENERIC_ERROR, exitMessage: `incoming migration ended by libvirt (state ${st.state}/${st.reason})` } });
        return;
      }
    } catch (e) {
      if (isNoDomain(e)) {
        if (vm.status === 'Migration Destination') m.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.GENERIC_ERROR, exitMessage: 'incoming migration failed: libvirt removed the domain' } });
        return;
      }
      c.log.debug('incoming domain state failed', { vm: vm.id, err: e });
    }
    await pause(c.settings.monitorIntervalMs);
  }
}
