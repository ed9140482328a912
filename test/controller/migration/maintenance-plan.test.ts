// The maintenance decisions as tables: which blockers a request meets (pinned VMs, an SPM with
// running tasks, VMs no other Up host has room for, counted together as the moves would book
// them), and what the drain does next from what it observes (SPM first, priority order within
// the parallel limit, retries, MaintenanceFailed naming each VM once its tries are used up, a
// host that left PreparingForMaintenance).
import t from 'tap';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { maintenanceBlockers, nextMaintenanceStep, type BlockerInput, type DrainVm } from '../../../controller/migration/maintenance-plan.js';
import type { SchedHost, SchedVm } from '../../../controller/scheduler/sched-types.js';

const s = resolveDecisionSettings({ hostReservedMemoryMiB: 1024, maintenanceMigrationAttempts: 3, maintenanceParallelMigrations: 2, maintenanceSpmHandoverTimeoutMs: 60_000 });
// 3024 MiB total - 1024 kept = 2000 bookable per host
const host = (id: string, status: SchedHost['status'] = 'Up'): SchedHost => ({ hostId: id, clusterId: 'c', status, poolConnected: true, memTotalMiB: 3024, cpus: 4, networks: [] });
const vm = (id: string, memoryMiB = 500, pinnedHostId: string | null = null) => ({
  name: id, pinnedHostId, sched: { vmId: id, clusterId: 'c', memoryMiB, vcpus: 1, requiredNetworks: [], pinnedHostId, needsPool: false } satisfies SchedVm,
});
const base = (o: Partial<BlockerInput>): BlockerInput => ({
  hostId: 'a', vms: [], isSpm: false, spmTasksRunning: [], hosts: [host('a'), host('b')], running: [], pending: [],
  policy: { name: 'evenly_distributed', highUtilizationPct: 80 }, ...o,
});

t.test('blockers', async (t) => {
  const cases: Array<[string, BlockerInput, Array<{ code: string; vmId?: string }>]> = [
    ['an empty host: none', base({}), []],
    ['VMs that fit on the other host: none', base({ vms: [vm('v1'), vm('v2'), vm('v3')] }), []],
    ['a VM pinned to the host is named', base({ vms: [vm('v1'), vm('pinned', 500, 'a')] }), [{ code: 'pinnedVm', vmId: 'pinned' }]],
    ['a VM pinned elsewhere is not a pin to this host', base({ vms: [vm('v1', 500, 'b')] }), []],
    ['the SPM with running tasks', base({ isSpm: true, spmTasksRunning: ['t1'] }), [{ code: 'spmTasks' }]],
    ['the SPM with no running task: none', base({ isSpm: true }), []],
    ['a non-SPM host is not asked about tasks', base({ isSpm: false, spmTasksRunning: ['t1'] }), []],
    ['the other host is not Up: each VM has no room', base({ vms: [vm('v1')], hosts: [host('a'), host('b', 'Maintenance')] }), [{ code: 'noRoom', vmId: 'v1' }]],
    ['no other host at all', base({ vms: [vm('v1')], hosts: [host('a')] }), [{ code: 'noRoom', vmId: 'v1' }]],
    ['room for two of three (counted together): the third is named', base({ vms: [vm('v1', 800), vm('v2', 800), vm('v3', 800)] }), [{ code: 'noRoom', vmId: 'v3' }]],
    ['what runs on the other host counts', base({ vms: [vm('v1', 800)], running: [{ vmId: 'x', hostId: 'b', memoryMiB: 1500, vcpus: 1 }] }), [{ code: 'noRoom', vmId: 'v1' }]],
    ['every kind at once', base({ vms: [vm('p', 100, 'a'), vm('big', 5000)], isSpm: true, spmTasksRunning: ['t'] }),
      [{ code: 'pinnedVm', vmId: 'p' }, { code: 'spmTasks' }, { code: 'noRoom', vmId: 'big' }]],
  ];
  for (const [name, input, want] of cases) {
    const got = maintenanceBlockers(input, s);
    t.same(got.map((b) => ({ code: b.code, ...(b.vmId !== undefined && { vmId: b.vmId }) })), want, name);
    for (const b of got) if (b.vmId) t.match(b.message, b.vmId, `${name}: the message names ${b.vmId}`);
  }
});

const d = (vmId: string, o: Partial<DrainVm> = {}): DrainVm => ({ vmId, name: vmId, priority: 0, attempts: 0, moving: false, lastError: null, ...o });

t.test('the drain, step by step', async (t) => {
  const obs = (o: Partial<Parameters<typeof nextMaintenanceStep>[0]>) => ({ status: 'PreparingForMaintenance' as const, isSpm: false, since: 0, vms: [], ...o });
  const cases: Array<[string, Parameters<typeof nextMaintenanceStep>[0], number, Record<string, unknown>]> = [
    ['the SPM role moves first, even with VMs waiting', obs({ isSpm: true, vms: [d('v1')] }), 1_000, { kind: 'waitSpm' }],
    ['an SPM role that never moves fails the maintenance after the timeout', obs({ isSpm: true, vms: [d('v1')] }), 61_000, { kind: 'fail' }],
    ['no VM left: drained', obs({}), 1_000, { kind: 'drained' }],
    ['highest priority first, at most 2 at once', obs({ vms: [d('low', { priority: 1 }), d('high', { priority: 9 }), d('mid', { priority: 5 })] }), 1, { kind: 'migrate', vms: [{ vmId: 'high' }, { vmId: 'mid' }] }],
    ['same priority: by name', obs({ vms: [d('b'), d('a'), d('c')] }), 1, { kind: 'migrate', vms: [{ vmId: 'a' }, { vmId: 'b' }] }],
    ['one moving: one slot left', obs({ vms: [d('a', { moving: true, attempts: 1 }), d('b'), d('c')] }), 1, { kind: 'migrate', vms: [{ vmId: 'b' }] }],
    ['two moving: wait', obs({ vms: [d('a', { moving: true, attempts: 1 }), d('b', { moving: true, attempts: 1 }), d('c')] }), 1, { kind: 'wait' }],
    ['a failed try is tried again', obs({ vms: [d('a', { attempts: 1, lastError: 'x' })] }), 1, { kind: 'migrate', vms: [{ vmId: 'a' }] }],
    ['tries used up while another still moves: wait for it', obs({ vms: [d('a', { attempts: 3, lastError: 'x' }), d('b', { moving: true, attempts: 1 })] }), 1, { kind: 'wait' }],
    ['tries used up and nothing moves: MaintenanceFailed naming the VM and its last error', obs({ vms: [d('a', { attempts: 3, lastError: 'refused by the destination' })] }), 1,
      { kind: 'fail', reasons: [{ code: 'vmNotMigrated', subject: 'a', message: /VM a could not be migrated after 3 tries: refused by the destination/ }] }],
    ['cancelled: the host is no longer PreparingForMaintenance', obs({ status: 'Initializing', vms: [d('a')] }), 1, { kind: 'left', status: 'Initializing' }],
    ['already in Maintenance', obs({ status: 'Maintenance' }), 1, { kind: 'left', status: 'Maintenance' }],
  ];
  for (const [name, o, now, want] of cases) t.match(nextMaintenanceStep(o, now, s), want, name);
  const twoStuck = nextMaintenanceStep(obs({ vms: [d('a', { attempts: 3, lastError: 'e1' }), d('b', { attempts: 3, lastError: 'e2', priority: 5 })] }), 1, s);
  t.equal(twoStuck.kind === 'fail' && twoStuck.reasons.length, 2, 'one reason per VM that could not be moved');
});
