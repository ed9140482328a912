// The API's handlers: one per schema method, over the agent's services.
import type { Handlers } from './rpc/dispatcher.js';
import type { VmManager } from './vm/manager.js';
import type { VmOperations } from './vm/operations.js';
import type { Vm } from './vm/vm.js';
import type { ResultOf } from '../api/schema.js';
import { api } from './vm/libvirt-errors.js';
import type { Hooks } from './hooks/hooks.js';
import type { StorageHandlers } from './storage/handlers.js';
import type { NetworkHandlers } from './network/handlers.js';
import type { MigrationHandlers } from './vm/migration/index.js';
import type { MergeHandlers } from './vm/merge/index.js';

type VmStats = ResultOf<'Host.getAllVmStats'>['statsList'][number];

export interface HandlerServices {
  manager: VmManager;
  ops: VmOperations;
  vmSample: (uuid: string) => Partial<VmStats> | undefined;
  hostStats: (vmCount: number, vmActive: number) => ResultOf<'Host.getStats'>;
  capabilities: () => Promise<Omit<ResultOf<'Host.getCapabilities'>, 'hooks'>>;
  confirmConnectivity: () => void;
  hooks: Hooks;
  storage: StorageHandlers;
  network: NetworkHandlers;
  migration: MigrationHandlers;
  merge: MergeHandlers;
}

function summary(vm: Vm): ResultOf<'Host.getVMList'>['vmList'][number] {
  const s: ResultOf<'Host.getVMList'>['vmList'][number] = { vmId: vm.id, vmName: vm.name, status: vm.status, external: vm.external };
  if (vm.domId !== undefined) s.id = vm.domId;
  return s;
}

function vmStats(vm: Vm, sample: Partial<VmStats> | undefined): VmStats {
  const body = vm.eventBody();
  return {
    ...(vm.status === 'Down' || vm.status === 'Unknown' ? {} : sample),
    ...body,
    vmId: vm.id,
    vmName: vm.name,
    ...(vm.external ? { external: true } : {}),
  };
}

export function createHandlers(s: HandlerServices): Handlers {
  const { manager: m, ops, hooks } = s;
  // before_get_* hooks may veto (78); after_get_* hooks may rewrite the result.
  const gated = async <T>(name: 'caps' | 'stats' | 'vm_stats' | 'all_vm_stats', produce: () => T | Promise<T>, call: { vmId?: string } = {}): Promise<T> => {
    if (hooks.has(`before_get_${name}`)) await hooks.runRaising(`before_get_${name}`, { data: JSON.stringify(call), ...call });
    return hooks.filterJson(`after_get_${name}`, await produce(), call);
  };
  return {
    ...s.storage,
    ...s.network,
    ...s.migration,
    ...s.merge,
    'Host.ping2': () => ({}),
    'Host.confirmConnectivity': () => { s.confirmConnectivity(); return {}; },
    'Host.getCapabilities': () => gated('caps', async () => ({ ...(await s.capabilities()), hooks: hooks.current })),
    'Host.getStats': () => gated('stats', () => {
      const vms = m.list();
      // Answered while recovering too (a poll is not refused with 99), so the field says it.
      return { ...s.hostStats(vms.length, vms.filter((v) => v.status !== 'Down').length), recovering: m.recovering };
    }),
    'Host.getAllVmStats': async () => ({
      statsList: await gated('all_vm_stats', () => m.list().map((vm) => vmStats(vm, s.vmSample(vm.id)))),
    }),
    'Host.getVMList': () => ({ vmList: m.list().map(summary) }),
    'Host.getVMFullList': (p) => {
      const wanted = p.vmList ? new Set(p.vmList) : undefined;
      return {
        vmList: m.list().filter((vm) => !vm.external && (!wanted || wanted.has(vm.id))).map((vm) => ({
          ...summary(vm),
          customProperties: vm.meta.customProperties,
          devices: vm.meta.devices.map((d) => ({ devtype: d.devtype, name: d.name, ...(d.storage ? { storage: d.storage } : {}) })),
          ...(vm.meta.startTime !== undefined ? { startTime: vm.meta.startTime } : {}),
        })),
      };
    },
    'Host.dumpxmls': async (p) => {
      const out: Record<string, string> = {};
      await Promise.all(p.vmList.map(async (id) => {
        const vm = m.get(id);
        const dom = await m.domain(vm);
        out[id] = await api(() => dom.xml(), id);
      }));
      return { domxmls: out };
    },
    'VM.create': (p) => ops.create(p),
    'VM.destroy': async (p) => { await ops.destroy(p.vmID); return {}; },
    'VM.shutdown': (p) => ops.shutdown(p),
    'VM.reset': async (p) => { await ops.reset(p.vmID); return {}; },
    'VM.pause': (p) => ops.pause(p.vmID),
    'VM.cont': (p) => ops.cont(p.vmID),
    'VM.getStats': async (p) => ({
      statsList: await gated('vm_stats', () => [vmStats(m.get(p.vmID), s.vmSample(p.vmID))], { vmId: p.vmID }),
    }),
    'VM.hotplugDisk': (p) => ops.hotplugDisk(p.vmID, p.drive),
    'VM.hotunplugDisk': async (p) => { await ops.hotunplugDisk(p.vmID, p.drive.name); return {}; },
    'VM.hotplugNic': (p) => ops.hotplugNic(p.vmID, p.nic),
    'VM.hotunplugNic': async (p) => { await ops.hotunplugNic(p.vmID, p.nic.mac); return {}; },
    'VM.setTicket': (p) => ops.setTicket(p),
    'VM.hibernate': async (p) => { await ops.hibernate(p); return {}; },
    'VM.snapshot': (p) => ops.snapshot(p),
  };
}
