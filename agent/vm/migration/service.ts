// The migration verbs: VM.migrate (source, answers at once), VM.migrationCreate
// (destination), VM.migrateCancel, VM.getMigrationStatus and
// VM.migrateChangeParams. Progress goes out as VM_migration_status events.
import { EventEmitter } from 'node:events';
import { InvalidParamsError, MigCancelError, MigNotInProgressError, ShuttingDownError, WrongStateError } from '../../../api/errors.js';
import type { MigrationStatsT, ParamsOf, ResultOf } from '../../../api/schema.js';
import type { DurableSubscription } from '../../libvirt/index.js';
import { api } from '../libvirt-errors.js';
import type { MigrationContext } from './context.js';
import { IncomingMigrations } from './destination.js';
import { OutgoingMigration } from './source.js';
import { scheduleProblem } from './schedule.js';
import { recoverMigrations, type OutgoingJob } from './recovery.js';
import { refreshDisk, refreshOnDestination } from './disk-refresh.js';

type MigrationEvents = { status: [vmId: string, stats: MigrationStatsT] };

export class Migrations extends EventEmitter<MigrationEvents> {
  /** The running or last outgoing migration of each VM (started here, or found running after a restart). */
  private readonly outgoing = new Map<string, OutgoingJob>();
  private readonly incoming: IncomingMigrations;
  private jobSub: DurableSubscription | undefined;
  private iterationSub: DurableSubscription | undefined;

  constructor(private readonly c: MigrationContext) {
    super();
    this.incoming = new IncomingMigrations(c);
  }

  /** JOB_COMPLETED carries libvirt's downtime of the finished migration. */
  async start(): Promise<void> {
    this.jobSub = await this.c.manager.client.subscribe('job-completed', (ev) => {
      const mig = this.outgoing.get(ev.domain.uuid);
      if (mig?.running) mig.jobCompleted(ev.params);
    });
    // The convergence schedule steps on each new memory iteration.
    this.iterationSub = await this.c.manager.client.subscribe('migration-iteration', (ev) => {
      this.outgoing.get(ev.domain.uuid)?.iteration?.(ev.iteration);
    });
    // After every reconciliation (agent start, libvirt back): migrations libvirt still runs are found and followed.
    this.c.manager.on('recovered', () => { void this.recover(); });
  }

  private async recover(): Promise<void> {
    await recoverMigrations(this.c, {
      outgoing: (vm, job) => { this.outgoing.set(vm.id, job); },
      incoming: (vm) => this.incoming.adopt(vm),
      tracked: (id) => !!this.outgoing.get(id)?.running || this.c.manager.vms.get(id)?.status === 'Migration Destination',
    }, (vmId, s) => this.emit('status', vmId, s)).catch((e: unknown) => this.c.log.warn('migration recovery failed', { err: e }));
  }

  async stop(): Promise<void> {
    await this.jobSub?.close().catch(() => {});
    await this.iterationSub?.close().catch(() => {});
  }

  migrate(p: ParamsOf<'VM.migrate'>): ResultOf<'VM.migrate'> {
    if (!this.c.accepting()) throw new ShuttingDownError();
    const m = this.c.manager;
    m.requireLibvirt();
    const vm = m.managed(p.vmID);
    if (this.outgoing.get(vm.id)?.running) throw new WrongStateError(`VM ${vm.id} is already migrating`);
    if (vm.status !== 'Up') throw new WrongStateError(`VM.migrate needs the VM Up, not ${vm.status}`);
    const problem = scheduleProblem(p.params.convergenceSchedule, p.params.postcopy);
    if (problem) throw new InvalidParamsError(problem, { data: { field: 'params.params.postcopy' } });
    // Ended migrations of VMs this host no longer has are of no more use to getMigrationStatus.
    for (const [id, old] of this.outgoing) if (!old.running && !m.vms.has(id)) this.outgoing.delete(id);
    const mig = new OutgoingMigration(this.c, vm, p.params, (s) => this.emit('status', vm.id, { ...s }));
    this.outgoing.set(vm.id, mig);
    m.setStatus(vm, 'Migration Source');
    void mig.run().catch((e: unknown) => this.c.log.error('migration thread failed', { vm: vm.id, err: e }));
    return { status: { code: 0, message: 'Migration in progress' }, progress: 0 };
  }

  migrationCreate(p: ParamsOf<'VM.migrationCreate'>): Promise<ResultOf<'VM.migrationCreate'>> {
    return this.incoming.create(p);
  }

  async cancel(vmId: string): Promise<void> {
    this.c.manager.get(vmId);
    const mig = this.outgoing.get(vmId);
    if (!mig?.running) throw new MigCancelError(`no outgoing migration of VM ${vmId} to cancel`);
    await api(() => mig.abort(), vmId);
  }

  status(vmId: string): MigrationStatsT {
    const mig = this.outgoing.get(vmId);
    if (!mig) {
      this.c.manager.get(vmId);
      throw new MigNotInProgressError(vmId);
    }
    return { ...mig.stats };
  }

  async changeParams(p: ParamsOf<'VM.migrateChangeParams'>): Promise<void> {
    this.c.manager.get(p.vmID);
    const mig = this.outgoing.get(p.vmID);
    if (!mig?.running) throw new MigNotInProgressError(p.vmID);
    await api(() => mig.setBandwidth(p.params.maxBandwidth), p.vmID);
  }

  /**
   * For the drive monitor, after the SPM extended a volume of `vmId` to sizeMiB: the destination
   * of its running migration refreshes it first (throws when it still sees less). Resolves to the
   * destination's size, or undefined when the VM is not migrating out.
   */
  async refreshDestination(vmId: string, volumeId: string, sizeMiB: number): Promise<number | undefined> {
    const mig = this.outgoing.get(vmId);
    const vm = this.c.manager.vms.get(vmId);
    if (!mig?.running || !vm) return undefined;
    return refreshOnDestination(this.c, vm, mig.peer, volumeId, sizeMiB);
  }

  /** The API handlers of the migration verbs. */
  handlers() {
    return {
      'VM.migrate': (p: ParamsOf<'VM.migrate'>) => this.migrate(p),
      'VM.migrationCreate': (p: ParamsOf<'VM.migrationCreate'>) => this.migrationCreate(p),
      'VM.migrateCancel': async (p: ParamsOf<'VM.migrateCancel'>) => { await this.cancel(p.vmID); return {}; },
      'VM.getMigrationStatus': (p: ParamsOf<'VM.getMigrationStatus'>) => this.status(p.vmID),
      'VM.migrateChangeParams': async (p: ParamsOf<'VM.migrateChangeParams'>) => { await this.changeParams(p); return {}; },
      'VM.refresh_disk': (p: ParamsOf<'VM.refresh_disk'>) => refreshDisk(this.c, p),
    };
  }
}
