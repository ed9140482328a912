// The storage pool as one host sees it: its domains, the master domain's
// lease area (host ids and the SPM lease) and mailbox, the SPM role, and the
// host's side of thin provisioning (extension requests through the mailbox).
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { PhaseTimer } from '../log.js';
import { UnavailableError, InvalidParamsError } from '../../api/errors.js';
import { createActivationDriver, createDomain, openDomain, type DomainSpec, type StorageSettings } from './index.js';
import type { ActivationDriver } from './activation.js';
import type { BlockStorageDomain } from './block-domain.js';
import type { FileStorageDomain } from './file-domain.js';
import { DomainNotFoundError, PoolNotConnectedError, StorageError } from './errors.js';
import { DomainMonitors, type MonitorSettings } from './monitor/index.js';
import type { PoolDomainInfo, PoolInfo, RepoStat } from '../../api/storage.js';
import { Sanlock } from './sanlock.js';
import { SpmRole, SPM_RESOURCE, type SpmStatus } from './spm.js';
import { HsmMailbox, SpmMailbox, type ExtendReply } from './mailbox/index.js';
import { randomUUID } from 'node:crypto';
import { TaskManager, type TaskStatus } from './tasks/manager.js';
import { FileTaskStore, type TaskStore } from './tasks/file-store.js';
import { SlotTaskStore } from './tasks/slot-store.js';
import { checkTaskId, type SpmTaskVerb } from './tasks/record.js';
import { recoveryLocks, runRecoveryStep, spmOperation } from './tasks/spm-operations.js';

export type AnyDomain = BlockStorageDomain | FileStorageDomain;

export interface PoolSettings extends StorageSettings, MonitorSettings {
  sanlockIoTimeoutSec: number;
  spmWatchIntervalMs: number;
  /** Agent shutdown: how long running SPM tasks may take to finish (and then, once stopped, to roll back). */
  taskShutdownWaitMs: number;
  mailboxReplyPollMs: number;
  mailboxEventPollMs: number;
  extendTimeoutMs: number;
  /** thin provisioning's chunk (thinp.chunkMiB): a cold merge rounds its base up to it */
  chunkMiB: number;
}

/** The SPM lease sits 1 MiB into the leases area (slot 1, as in VDSM; slot 0 is left alone). */
export const SPM_LEASE_OFFSET = 1024 * 1024;

export interface ConnectParams {
  spUUID: string;
  hostID: number;
  masterSdUUID: string;
  /** The pool's master version, as the engine knows it (reported by getInfo). */
  masterVersion?: number;
  domains: Record<string, DomainSpec>;
}

/** 'connected': this host joined a pool (what waits for storage, such as the recovery of VMs' disks, may go on). */
/** 'task': an SPM task's progress grew, or it ended (|storage|task_status|). */
type PoolEvents = { connected: [ConnectParams]; task: [TaskStatus & { verb: string; state: string }] };

export class StoragePool extends EventEmitter<PoolEvents> {
  readonly driver: ActivationDriver;
  readonly sanlock = new Sanlock();
  private readonly domains = new Map<string, AnyDomain>();
  private conn: ConnectParams | undefined;
  private spm: SpmRole | undefined;
  private hsm: HsmMailbox | undefined;
  private spmMailbox: SpmMailbox | undefined;
  private readonly monitors: DomainMonitors;
  /** The SPM's tasks (attached at spmStart, from the master domain). */
  readonly tasks: TaskManager;

  constructor(private readonly s: PoolSettings, private readonly log: Logger) {
    super();
    this.driver = createActivationDriver(s, { log });
    this.monitors = new DomainMonitors(s, this.sanlock, log);
    const tasksLog = log.child({ component: 'tasks' });
    this.tasks = new TaskManager({
      log: tasksLog, runStep: (step, restart) => runRecoveryStep(this, step, restart, tasksLog), recoveryLocks, onStatus: (st) => this.emit('task', st),
    });
    this.copyLog = tasksLog;
  }

  /** Copies and moves: the qemu-img timeouts. */
  get copyTimeouts(): { convertMs: number; qemuImgMs: number } { return { convertMs: this.s.copyTimeoutMs, qemuImgMs: this.s.qemuImgTimeoutMs }; }
  readonly copyLog: Logger;
  get chunkMiB(): number { return this.s.chunkMiB; }
  /** The VMs running on this host that use an image (the daemon sets it; a move is refused under them). */
  imageUsers: (sdUUID: string, imgUUID: string) => string[] = () => [];

  get connected(): ConnectParams | undefined { return this.conn; }

  private ctx() { return { settings: this.s, driver: this.driver, log: this.log }; }

  /** Creates a domain (any host; it belongs to no pool yet) with its lease area initialised. */
  async createDomain(sdUUID: string, spec: DomainSpec, description?: string): Promise<AnyDomain> {
    const dom = await createDomain(this.ctx(), sdUUID, spec, description ? { description } : {});
    const ids = await dom.specialPath('ids');
    const leases = await dom.specialPath('leases');
    await this.sanlock.directInitLockspace(sdUUID, ids, 0, { ioTimeoutSec: this.s.sanlockIoTimeoutSec });
    await this.sanlock.directInitResource(sdUUID, SPM_RESOURCE, leases, SPM_LEASE_OFFSET);
    // The new domain is in no pool: keep no loop device (or dm device) for it. Connect and the monitor activate what they use.
    if (dom.type === 'block') await this.driver.deactivate(dom.lvm, dom.vg, ['ids', 'leases']);
    this.domains.set(sdUUID, dom);
    return dom;
  }

  async domain(sdUUID: string): Promise<AnyDomain> {
    const d = this.domains.get(sdUUID);
    if (d) return d;
    const spec = this.conn?.domains[sdUUID];
    if (!spec) throw new DomainNotFoundError(sdUUID, 'not part of the connected pool');
    const opened = await openDomain(this.ctx(), sdUUID, spec);
    this.domains.set(sdUUID, opened);
    return opened;
  }

  async blockDomain(sdUUID: string): Promise<BlockStorageDomain> {
    const d = await this.domain(sdUUID);
    if (!('extendLV' in d)) throw new InvalidParamsError(`domain ${sdUUID} is not a block domain`, { data: { field: 'domainID' } });
    return d as BlockStorageDomain;
  }

  /** Joins the pool: opens its domains, the host id's lockspace, and this host's mailbox. */
  async connect(p: ConnectParams): Promise<void> {
    if (this.conn) {
      if (this.conn.spUUID === p.spUUID) return this.attachDomains(p.domains);
      throw new UnavailableError(`already connected to pool ${this.conn.spUUID}`);
    }
    if (!p.domains[p.masterSdUUID]) throw new InvalidParamsError('the master domain must be in domains', { data: { field: 'params.domains' } });
    const timer = new PhaseTimer();
    this.conn = p;
    try {
      const master = await this.domain(p.masterSdUUID);
      for (const sd of Object.keys(p.domains)) await this.domain(sd);
      timer.mark('domains');
      const area = { lockspace: p.masterSdUUID, idsPath: await master.specialPath('ids'), leasesPath: await master.specialPath('leases'), leaseOffset: SPM_LEASE_OFFSET };
      this.spm = new SpmRole({
        sanlock: this.sanlock, hostId: p.hostID, area, ioTimeoutSec: this.s.sanlockIoTimeoutSec,
        watchIntervalMs: this.s.spmWatchIntervalMs, log: this.log.child({ component: 'spm' }),
        onLost: () => { void this.spmMailbox?.stop(); void this.tasks.abandon('SPM lease lost'); },
      });
      await this.spm.joinLockspace();
      timer.mark('lockspace');
      this.hsm = new HsmMailbox({
        requestsPath: await master.specialPath('inbox'), repliesPath: await master.specialPath('outbox'),
        hostId: p.hostID, replyPollMs: this.s.mailboxReplyPollMs, timeoutMs: this.s.extendTimeoutMs, log: this.log.child({ component: 'mailbox' }),
      });
      await this.hsm.start();
      timer.mark('mailbox');
      for (const sd of Object.keys(p.domains)) this.monitors.add(await this.domain(sd), { hostId: p.hostID, isMaster: sd === p.masterSdUUID });
      this.log.info('pool connected', { spUUID: p.spUUID, hostID: p.hostID, master: p.masterSdUUID, domains: Object.keys(p.domains).length, ...timer.fields() });
    } catch (e) {
      await this.disconnect().catch(() => {});
      throw e;
    }
    this.emit('connected', p);
  }

  /**
   * Connected already: domains the engine names that this host does not have yet join the
   * pool (opened, monitored, this host's id acquired in their lockspace), as VDSM's
   * connectStorageDomain + activateStorageDomain do. A domain that cannot be opened stays out.
   */
  private async attachDomains(domains: Record<string, DomainSpec>): Promise<void> {
    for (const [sd, spec] of Object.entries(domains)) {
      const c = this.conn;
      if (!c || c.domains[sd]) continue;
      this.conn = { ...c, domains: { ...c.domains, [sd]: spec } };
      try {
        this.monitors.add(await this.domain(sd), { hostId: c.hostID, isMaster: false });
      } catch (e) {
        if (this.conn) {
          const { [sd]: _dropped, ...rest } = this.conn.domains;
          this.conn = { ...this.conn, domains: rest };
        }
        this.domains.delete(sd);
        throw e;
      }
      this.log.info('storage domain attached to the connected pool', { spUUID: c.spUUID, sdUUID: sd, type: spec.type });
    }
  }

  /**
   * Leaves the pool: stops the monitors, the SPM role and its tasks, the
   * mailboxes, leaves the lockspace, and then drops every activation it made
   * on the master domain (on a block master: mailbox, tasks, and, once the
   * lockspace is left, ids and leases).
   */
  async disconnect(): Promise<void> {
    await this.monitors.stopAll();
    await this.tasks.shutdown(this.s.taskShutdownWaitMs).catch((e: unknown) => this.log.warn('tasks shutdown failed', { err: e }));
    await this.spmStop().catch((e: unknown) => this.log.warn('spmStop at disconnect failed', { err: e }));
    await this.spmMailbox?.stop().catch((e: unknown) => this.log.warn('SPM mailbox stop failed', { err: e }));
    this.spmMailbox = undefined;
    await this.hsm?.stop().catch((e: unknown) => this.log.warn('mailbox stop failed', { err: e }));
    const lockspaceLeft = (await this.spm?.close()) ?? true; // no SpmRole: connect never joined it
    const master = this.conn && this.domains.get(this.conn.masterSdUUID);
    if (master?.type === 'block') {
      await master.dropPoolActivations({ lockspaceLeft }).catch((e: unknown) => this.log.warn('master domain activations not dropped', { err: e }));
    }
    for (const d of this.domains.values()) await d.close().catch(() => {});
    this.domains.clear();
    this.hsm = undefined;
    this.spm = undefined;
    this.conn = undefined;
  }

  private role(): SpmRole {
    if (!this.spm || !this.conn) throw new UnavailableError('not connected to a storage pool');
    return this.spm;
  }

  /**
   * StoragePool.getSpmStatus, from the lease. A lease that cannot be read in
   * time is an error (379, or 1002 when it did not answer), never "Free": only
   * this host's own role is known without reading it.
   */
  async spmStatus(): Promise<SpmStatus> {
    const role = this.role();
    const holder = await this.leaseHolder(role);
    if (!(holder instanceof Error)) return holder;
    if (role.isSpm) return { spmStatus: 'SPM', spmId: this.conn!.hostID, spmLver: role.currentLver };
    throw new StorageError(holder instanceof StorageError && holder.errorName === 'timeout' ? 'timeout' : 'storageDomainAccessError',
      `the SPM lease on master domain ${this.conn!.masterSdUUID} cannot be read: ${holder.message}`, 'storageDomainAccessError', { cause: holder });
  }

  /** Who holds the SPM lease, read from storage within storage.monitorReadTimeoutMs (storage may be what is failing); the error otherwise. */
  private async leaseHolder(role: SpmRole): Promise<SpmStatus | Error> {
    const ms = this.s.monitorReadTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<Error>((r) => { timer = setTimeout(() => r(new StorageError('timeout', `no answer in ${ms} ms`)), ms); });
    try {
      return await Promise.race([role.status().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The domain monitors' view (Host.getStorageRepoStats): any connected host, SPM or not; {} when not connected. */
  repoStats(sdUUIDs?: readonly string[]): Record<string, RepoStat> {
    const out: Record<string, RepoStat> = {};
    for (const [sd, st] of Object.entries(this.monitors.repoStats(sdUUIDs))) {
      const { totalBytes: _t, freeBytes: _f, ...stat } = st;
      out[sd] = stat;
    }
    return out;
  }

  /** StoragePool.getInfo: the pool as this host sees it; 309 unless connected to spUUID. */
  async info(spUUID: string): Promise<PoolInfo> {
    const c = this.conn;
    if (!c || c.spUUID !== spUUID || !this.spm) throw new PoolNotConnectedError(spUUID, c?.spUUID);
    // The lease holder, read from storage. Unread, it is Unknown, never Free (which says nobody holds the lease);
    // only this host's own role is known without it.
    const holder = await this.leaseHolder(this.spm);
    let spm: Omit<SpmStatus, 'spmStatus'> & { spmStatus: PoolInfo['info']['spmStatus'] };
    if (!(holder instanceof Error)) spm = holder;
    else {
      this.log.warn('SPM lease unreadable for getInfo', { err: holder });
      spm = this.spm.isSpm ? { spmStatus: 'SPM', spmId: c.hostID, spmLver: this.spm.currentLver } : { spmStatus: 'Unknown', spmId: -1, spmLver: -1 };
    }
    const dominfo: Record<string, PoolDomainInfo> = {};
    for (const [sd, spec] of Object.entries(c.domains)) {
      const st = this.monitors.status(sd);
      dominfo[sd] = {
        status: !st?.actual ? 'Unknown' : st.valid ? 'Active' : 'Inactive',
        role: sd === c.masterSdUUID ? 'Master' : 'Regular',
        type: spec.type,
        version: st?.version ?? -1,
        alerts: st && !st.valid ? [{ code: st.code, message: st.error ?? '' }] : [],
        ...(st?.totalBytes !== undefined ? { disktotal: st.totalBytes } : {}),
        ...(st?.freeBytes !== undefined ? { diskfree: st.freeBytes } : {}),
      };
    }
    return {
      info: {
        spUUID: c.spUUID, pool_status: 'connected', master_uuid: c.masterSdUUID, master_ver: c.masterVersion ?? 1,
        hostID: c.hostID, spmStatus: spm.spmStatus, spm_id: spm.spmId, lver: spm.spmLver,
      },
      dominfo,
    };
  }

  /** Becomes SPM and starts serving extension requests from every host. Returns the lver. */
  async spmStart(): Promise<number> {
    const role = this.role();
    const lver = await role.spmStart();
    if (!this.spmMailbox?.running) {
      const master = await this.domain(this.conn!.masterSdUUID);
      this.spmMailbox = new SpmMailbox({
        requestsPath: await master.specialPath('inbox'), repliesPath: await master.specialPath('outbox'),
        spmHostId: this.conn!.hostID, eventPollMs: this.s.mailboxEventPollMs, log: this.log.child({ component: 'spm-mailbox' }),
        stillSpm: () => role.isSpm,
        extend: async (sdUUID, volUUID, sizeMiB) => {
          await role.assertSpm(); // the lease, at our lver, before every SPM write
          await (await this.blockDomain(sdUUID)).extendLV(volUUID, sizeMiB);
        },
      });
      await this.spmMailbox.start();
    }
    // VDSM's spmStart steps 6 and 10: load the persisted tasks, recover the unfinished ones.
    if (!this.tasks.attached) await this.tasks.attach(() => this.openTaskStore(), { hostId: this.conn!.hostID, lver });
    return lver;
  }

  /** The master domain's task store: a tasks/ folder on a file domain, the tasks LV's slots on a block domain. */
  private async openTaskStore(): Promise<TaskStore> {
    const master = await this.domain(this.conn!.masterSdUUID);
    const log = this.log.child({ component: 'tasks' });
    return master.type === 'block' ? SlotTaskStore.open(await master.tasksArea(), log) : FileTaskStore.open(master.tasksDir, log);
  }

  /** An SPM verb as a task: answers with its id once the task is persisted; the work goes on in the background. */
  async submitSpmTask(verb: SpmTaskVerb, params: Record<string, unknown>, taskID?: string): Promise<string> {
    await this.assertSpm();
    const id = taskID === undefined ? randomUUID() : checkTaskId(taskID.toLowerCase());
    const { taskID: _id, ...rest } = params;
    return this.tasks.submit(verb, rest, spmOperation(this, verb, rest), id);
  }

  async spmStop(): Promise<void> {
    await this.tasks.detach(); // 653 while tasks run; their records stay on the master domain
    await this.spmMailbox?.stop();
    this.spmMailbox = undefined;
    await this.spm?.spmStop();
    // The task store is closed: its LV is the SPM's alone (ids, leases, inbox, outbox stay: a connected host uses them).
    const master = this.conn && this.domains.get(this.conn.masterSdUUID);
    if (master?.type === 'block' && !this.tasks.attached) await master.dropTasksArea().catch((e: unknown) => this.log.warn('tasks LV not deactivated', { err: e }));
  }

  /** For SPM-only verbs: throws 40 unless this host holds the lease at its lver. */
  async assertSpm(): Promise<void> {
    await this.role().assertSpm();
  }

  /** The host side of thin provisioning: ask the SPM (through the mailbox) to grow a volume. Returns the SPM's reply (its request id names the request in both hosts' logs). */
  async requestExtend(sdUUID: string, volUUID: string, sizeMiB: number): Promise<ExtendReply> {
    if (!this.hsm) throw new UnavailableError('not connected to a storage pool');
    const r = await this.hsm.requestExtend({ domainId: sdUUID, volumeId: volUUID, sizeMiB });
    if (r.status !== 'ok') throw new UnavailableError(`SPM could not extend ${volUUID}: ${r.reasonText || r.reason}`, { data: { reason: r.reason, requestId: r.requestId } });
    return r;
  }

  async refreshVolume(sdUUID: string, volUUID: string): Promise<number> {
    return (await this.blockDomain(sdUUID)).refreshVolume(volUUID);
  }
}
