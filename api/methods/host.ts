// Host verbs: liveness, capabilities, stats and the VM inventory.
import { Type } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { Empty, Uuid, VmStats, VmSummary } from '../types.js';
import { NetworkCapabilities } from '../network.js';

export const HOST_METHODS = {
  'Host.ping2': method({
    summary: 'Liveness check; does nothing.',
    params: Empty, result: Empty, errors: [], since: '0.1', mutating: false,
  }),
  'Host.confirmConnectivity': method({
    summary: 'Proof that the engine still reaches this host: a setupNetworks waiting for confirmation keeps its change. Any other request counts too.',
    params: Empty, result: Empty, errors: [], since: '0.1', mutating: false,
  }),
  'Host.getCapabilities': method({
    summary: 'Static facts about the host: CPU, memory, NUMA, virtualization support and versions.',
    params: Empty,
    result: Type.Object({
      uuid: Type.String(),
      hostname: Type.String(),
      cpuModel: Type.String(),
      cpuVendor: Type.String(),
      cpuFlags: Type.Array(Type.String()),
      cpuSockets: Type.Integer(), cpuCores: Type.Integer(), cpuThreads: Type.Integer(),
      cpuTopology: Type.Object({ sockets: Type.Integer(), dies: Type.Integer(), cores: Type.Integer(), threads: Type.Integer() }),
      onlineCpus: Type.Integer(),
      memSize: Type.Integer({ description: 'MiB' }),
      numaNodes: Type.Record(Type.String(), Type.Object({ cpus: Type.Array(Type.Integer()), totalMemory: Type.Integer({ description: 'MiB' }) })),
      kvmEnabled: Type.Boolean(),
      domainTypes: Type.Array(Type.String(), { description: 'libvirt domain types this host can run' }),
      defaultDomainType: Type.String({ description: 'what VMs get unless they ask otherwise' }),
      emulatedMachines: Type.Array(Type.String()),
      libvirtVersion: Type.String(),
      qemuVersion: Type.String(),
      software_version: Type.String(),
      hooks: Type.Record(Type.String(), Type.Record(Type.String(), Type.Object({ checksum: Type.String() })), {
        description: "installed hooks: {point: {script: {checksum: sha256}}} (since 0.2)",
      }),
      ...NetworkCapabilities.properties,
    }, { description: 'the host network fields (nics … lastSetup) are those of Host.getNetworkCapabilities (since 0.4)' }),
    errors: ['libvirtUnavailable', 'libvirtError', 'hookError', 'networkCommandFailed'], since: '0.1', mutating: false,
  }),
  'Host.getStats': method({
    summary: 'Host utilisation: CPU, memory, load, per-NIC rates and uptime; and whether the agent is still recovering.',
    params: Empty,
    result: Type.Object({
      cpuUser: Type.Number({ description: '% of all CPUs, last interval' }),
      cpuSys: Type.Number(), cpuIdle: Type.Number(),
      memTotal: Type.Number({ description: 'MiB' }), memFree: Type.Number(), memAvailable: Type.Number(),
      loadAvg: Type.Array(Type.Number(), { minItems: 3, maxItems: 3 }),
      network: Type.Record(Type.String(), Type.Object({
        rxBytes: Type.Number(), txBytes: Type.Number(), rxRate: Type.Number({ description: 'bytes/s' }), txRate: Type.Number(),
      })),
      uptime: Type.Number({ description: 's' }),
      vmCount: Type.Integer(), vmActive: Type.Integer(),
      recovering: Type.Optional(Type.Boolean({
        description: 'true until the agent has reconciled its VMs with libvirt after it started: meanwhile its VM list is incomplete and mutating calls answer 99. '
          + 'The controller shows the host Initializing. Added in 0.4; older agents leave it out (read as false)',
      })),
    }),
    errors: ['hookError'], since: '0.1', mutating: false,
  }),
  'Host.getAllVmStats': method({
    summary: 'Stats of every VM, from the last bulk sample (no libvirt call per VM).',
    params: Empty, result: Type.Object({ statsList: Type.Array(VmStats) }),
    errors: ['hookError'], since: '0.1', mutating: false,
  }),
  'Host.getVMList': method({
    summary: 'Every VM on the host with its status, including external and not-yet-reconciled ones.',
    params: Empty, result: Type.Object({ vmList: Type.Array(VmSummary) }),
    errors: [], since: '0.1', mutating: false,
  }),
  'Host.getVMFullList': method({
    summary: 'Every managed VM with its status and the definition the agent keeps in its metadata.',
    params: Type.Object({ vmList: Type.Optional(Type.Array(Uuid, { maxItems: 10_000 })) }),
    result: Type.Object({
      vmList: Type.Array(Type.Object({
        ...VmSummary.properties,
        customProperties: Type.Record(Type.String(), Type.String()),
        devices: Type.Array(Type.Object({ devtype: Type.String(), name: Type.String(), storage: Type.Optional(Type.Object({})) })),
        startTime: Type.Optional(Type.Number()),
      })),
    }),
    errors: [], since: '0.1', mutating: false,
  }),
  'Host.dumpxmls': method({
    summary: 'The live libvirt domain XML of the given VMs.',
    params: Type.Object({ vmList: Type.Array(Uuid, { minItems: 1, maxItems: 1000 }) }),
    result: Type.Object({ domxmls: Type.Record(Type.String(), Type.String()) }),
    errors: ['noVM', 'libvirtUnavailable', 'libvirtError'], since: '0.1', mutating: false,
  }),
} as const satisfies Record<string, MethodDef>;
