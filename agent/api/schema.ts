// The API schema: every method and event the agent serves, with params,
// result, errors and the version it was added in. It is the single source of
// parameter validation, the TypeScript types shared with the controller and
// the client, the error codes a method may return, the OpenRPC document at
// rpc.discover, and docs/api.md.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { ErrorName } from './errors.js';
import {
  DiskSpec, Empty, ExitInfo, NicSpec, PauseCode, Uuid, VmSpec, VmStats, VmStatus, VmSummary, withVmId,
} from './types.js';
import { PoolInfo, RepoStats } from '../storage/api-schema.js';
import { SetupNetworksParams } from '../network/model.js';
import { TaskID, TaskIdParam, TaskInfo, TaskStatus } from '../storage/tasks/api-schema.js';
import { LastSetup, NetworkCapabilities, SetupNetworksResult } from '../network/api-schema.js';

export interface MethodDef<P extends TSchema = TSchema, R extends TSchema = TSchema> {
  summary: string;
  params: P;
  result: R;
  errors: readonly ErrorName[];
  since: string;
  /** Changes a VM or the host: refused while recovering (error 99) or shutting down. */
  mutating: boolean;
  /** A mutating call that does not depend on libvirt (host networks): allowed while VMs are recovered, refused only while shutting down. */
  duringRecovery?: true;
}

function method<P extends TSchema, R extends TSchema>(d: MethodDef<P, R>): MethodDef<P, R> {
  return d;
}

const DomainSpecT = Type.Union([
  Type.Object({ type: Type.Literal('block'), devices: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 8 }) }),
  Type.Object({ type: Type.Literal('file'), root: Type.String({ minLength: 1 }) }),
], { description: 'block: an LVM VG on these device paths (shared LUNs); file: a directory under this root (local, NFS, POSIX)' });
const VolumeInfoT = Type.Object({
  uuid: Uuid, domain: Uuid, image: Uuid, parent: Type.String(), capacity: Type.Number(), format: Type.String(), type: Type.String(),
  voltype: Type.String(), disktype: Type.String(), description: Type.String(), legality: Type.String(), generation: Type.Integer(),
  ctime: Type.Number(), apparentsize: Type.Number(), truesize: Type.Number(),
});
const SdParams = { storagepoolID: Type.Optional(Uuid), storagedomainID: Uuid };
// SPM verbs answer at once with a task (persisted on the master domain); these are the errors of the call itself.
const SPM_TASK_ERRORS = ['unavailable', 'storageDomainDoesNotExist', 'addTaskError', 'taskPersistError', 'invalidParams'] as const;
const TASK_NOTE = ' Answers at once with {taskID}; poll Task.getStatus, read the result with Task.getInfo, then Task.clear. The task may end with ';

const STORAGE_METHODS = {
  'StorageDomain.create': method({
    summary: 'Creates a storage domain (file: a directory; block: a VG on the given devices) with its lease area and mailbox.',
    params: Type.Object({ storagedomainID: Uuid, spec: DomainSpecT, description: Type.Optional(Type.String({ maxLength: 210 })) }),
    result: Type.Object({ storagedomainID: Uuid }), errors: ['storageDomainAlreadyExists', 'storageCommandFailed', 'invalidParams'], since: '0.3', mutating: true,
  }),
  'StorageDomain.getInfo': method({
    summary: "The domain's metadata: type, class, version, location.", params: Type.Object(SdParams),
    result: Type.Record(Type.String(), Type.Unknown()), errors: ['storageDomainDoesNotExist'], since: '0.3', mutating: false,
  }),
  'StorageDomain.getStats': method({
    summary: 'Size and free space.', params: Type.Object(SdParams),
    result: Type.Object({ sdUUID: Uuid, totalBytes: Type.Number(), freeBytes: Type.Number(), volumeCount: Type.Integer() }),
    errors: ['storageDomainDoesNotExist'], since: '0.3', mutating: false,
  }),
  'StorageDomain.getImages': method({
    summary: "The domain's images.", params: Type.Object(SdParams), result: Type.Object({ images: Type.Array(Uuid) }),
    errors: ['storageDomainDoesNotExist'], since: '0.3', mutating: false,
  }),
  'StorageDomain.getVolumes': method({
    summary: "The domain's volumes (of one image, if given).", params: Type.Object({ ...SdParams, imageID: Type.Optional(Uuid) }),
    result: Type.Object({ volumes: Type.Array(Uuid) }), errors: ['storageDomainDoesNotExist'], since: '0.3', mutating: false,
  }),
  'StoragePool.connect': method({
    summary: 'Joins the pool: opens its domains, takes this host id in the master domain\'s lockspace, starts this host\'s mailbox.',
    params: Type.Object({
      storagepoolID: Uuid, hostID: Type.Integer({ minimum: 1, maximum: 250 }), masterSdUUID: Uuid,
      masterVersion: Type.Optional(Type.Integer({ minimum: 0, description: 'the master version the engine knows (default 1); reported by getInfo' })),
      domains: Type.Record(Type.String(), DomainSpecT),
    }),
    result: Empty, errors: ['unavailable', 'storageDomainDoesNotExist', 'invalidParams'], since: '0.3', mutating: true,
  }),
  'StoragePool.disconnect': method({
    summary: 'Leaves the pool (stops being SPM first). 309 unless connected to this pool.', params: Type.Object({ storagepoolID: Uuid }), result: Empty,
    errors: ['storagePoolUnknown'], since: '0.3', mutating: true,
  }),
  'StoragePool.getInfo': method({
    summary: "The pool as this host sees it: master domain and version, this host's id, the SPM lease holder and version, each domain's status from its monitor, with sizes. Refused with 309 unless connected to this pool.",
    params: Type.Object({ storagepoolID: Uuid }), result: PoolInfo, errors: ['storagePoolUnknown'], since: '0.3', mutating: false,
  }),
  'StoragePool.getSpmStatus': method({
    summary: "Who holds the SPM lease, from the lease itself (read within storage.monitorReadTimeoutMs). spmStatus is this host's role: SPM, Contend "
      + '(its spmStart is running) or Free; spmId/spmLver name the holder (-1 when nobody holds it). A lease that cannot be read is an error (379, or 1002 '
      + 'when it did not answer in time), never Free, unless this host is the SPM. 309 unless connected to this pool.',
    params: Type.Object({ storagepoolID: Uuid }),
    result: Type.Object({ spmStatus: Type.Union([Type.Literal('Free'), Type.Literal('SPM'), Type.Literal('Contend')]), spmId: Type.Integer(), spmLver: Type.Integer() }),
    errors: ['storagePoolUnknown', 'storageDomainAccessError', 'timeout'], since: '0.3', mutating: false,
  }),
  'StoragePool.spmStart': method({
    summary: 'Takes the SPM lease (fails with 40 when another host holds it); the lease version grows by one. 309 unless connected to this pool.',
    params: Type.Object({ storagepoolID: Uuid }), result: Type.Object({ spmLver: Type.Integer() }),
    errors: ['unavailable', 'storagePoolUnknown'], since: '0.3', mutating: true,
  }),
  'StoragePool.spmStop': method({
    summary: 'Releases the SPM lease. 309 unless connected to this pool.', params: Type.Object({ storagepoolID: Uuid }), result: Empty,
    errors: ['storagePoolUnknown'], since: '0.3', mutating: true,
  }),
  'Volume.create': method({
    summary: 'SPM only, a task. Creates a volume: COW (qcow2) or RAW, sparse or preallocated, optionally on a parent (a snapshot). A failed, stopped or '
      + 'interrupted create leaves no volume behind.' + TASK_NOTE + '212, 202, 231, 232, 397, 1008, 1002, 411 (stopped), 1011 (interrupted by a restart).',
    params: Type.Object({
      ...SdParams, ...TaskIdParam, imageID: Uuid, volumeID: Uuid,
      size: Type.Integer({ minimum: 1, description: 'virtual size, bytes' }),
      volFormat: Type.Union([Type.Literal('COW'), Type.Literal('RAW')]),
      preallocate: Type.Union([Type.Literal('SPARSE'), Type.Literal('PREALLOCATED')]),
      srcVolUUID: Type.Optional(Uuid), description: Type.Optional(Type.String({ maxLength: 210 })),
      initialSize: Type.Optional(Type.Integer({ minimum: 1, description: 'block COW sparse: first LV size, bytes' })),
    }),
    result: TaskID, errors: SPM_TASK_ERRORS, since: '0.3', mutating: true,
  }),
  'Volume.delete': method({
    summary: 'SPM only, a task. Deletes a volume without children.' + TASK_NOTE + '201, 204, 1008, 411, 1011.',
    params: Type.Object({ ...SdParams, ...TaskIdParam, imageID: Uuid, volumeID: Uuid }),
    result: TaskID, errors: SPM_TASK_ERRORS, since: '0.3', mutating: true,
  }),
  'Volume.getInfo': method({
    summary: "A volume's metadata and sizes.", params: Type.Object({ ...SdParams, imageID: Uuid, volumeID: Uuid }),
    result: VolumeInfoT, errors: ['volumeDoesNotExist', 'storageDomainDoesNotExist'], since: '0.3', mutating: false,
  }),
  'Volume.getSize': method({
    summary: "A volume's apparent and true size.", params: Type.Object({ ...SdParams, imageID: Uuid, volumeID: Uuid }),
    result: Type.Object({ apparentsize: Type.Number(), truesize: Type.Number() }), errors: ['volumeDoesNotExist'], since: '0.3', mutating: false,
  }),
  'Volume.extendSize': method({
    summary: 'SPM only, a task. Grows the virtual size.' + TASK_NOTE + '201, 232, 397, 1008, 411, 1011.',
    params: Type.Object({ ...SdParams, ...TaskIdParam, imageID: Uuid, volumeID: Uuid, newSize: Type.Integer({ minimum: 1 }) }),
    result: TaskID, errors: SPM_TASK_ERRORS, since: '0.3', mutating: true,
  }),
  'Image.prepare': method({
    summary: 'Activates every volume of the image on this host; returns the leaf path and the chain.',
    params: Type.Object({ ...SdParams, imageID: Uuid, volumeID: Type.Optional(Uuid) }),
    result: Type.Object({ path: Type.String(), chain: Type.Array(Type.Record(Type.String(), Type.Unknown())) }),
    errors: ['imageDoesNotExist', 'prepareIllegalVolume', 'storageCommandFailed'], since: '0.3', mutating: true,
  }),
  'Image.teardown': method({
    summary: "Deactivates the image's volumes on this host.", params: Type.Object({ ...SdParams, imageID: Uuid }), result: Empty,
    errors: ['storageCommandFailed'], since: '0.3', mutating: true,
  }),
  'Image.delete': method({
    summary: 'SPM only, a task. Deletes every volume of the image, children first (a stop takes effect between volumes).' + TASK_NOTE + '204, 1008, 411, 1011.',
    params: Type.Object({ ...SdParams, ...TaskIdParam, imageID: Uuid }), result: TaskID,
    errors: SPM_TASK_ERRORS, since: '0.3', mutating: true,
  }),
} as const satisfies Record<string, MethodDef>;

// The SPM's tasks (VDSM's Task verbs). Tasks live on the SPM: another host answers 401.
const TaskParams = Type.Object({ taskID: Uuid });
const TASK_METHODS = {
  'Task.getStatus': method({
    summary: "A task's state (init, running, aborting, cleaning, finished) and result (success, cleanSuccess: failed or stopped and rolled back, cleanFailure), with code and message.",
    params: TaskParams, result: TaskStatus, errors: ['unknownTask'], since: '0.4', mutating: false,
  }),
  'Task.getInfo': method({
    summary: "A task in detail: verb and params, its detailed state, the verb's result on success, timings and the time of each phase, recovery steps and what they did.",
    params: TaskParams, result: TaskInfo, errors: ['unknownTask'], since: '0.4', mutating: false,
  }),
  'Task.clear': method({
    summary: 'Forgets a finished task, here and on the master domain. A task not finished is refused with 410.',
    params: TaskParams, result: Empty, errors: ['unknownTask', 'taskStateError', 'taskPersistError'], since: '0.4', mutating: true,
  }),
  'Task.stop': method({
    summary: "Stops a task: a waiting one ends at once, a running one is aborted (its commands killed) and rolled back (it ends with 411 and taskResult cleanSuccess). A finished task, or one already rolling back, is left as it is.",
    params: TaskParams, result: Empty, errors: ['unknownTask'], since: '0.4', mutating: true,
  }),
  'Host.getAllTasksStatuses': method({
    summary: "Every task this host (the SPM) keeps: taskID -> Task.getStatus. {} on a host that is not the SPM.",
    params: Empty, result: Type.Object({ allTasksStatus: Type.Record(Uuid, TaskStatus) }), errors: [], since: '0.4', mutating: false,
  }),
} as const satisfies Record<string, MethodDef>;

/** The result each SPM task verb leaves in Task.getInfo().result on success (the client's runSpmTask returns it typed). */
export const SpmTaskResults = {
  'Volume.create': VolumeInfoT, 'Volume.delete': Empty, 'Volume.extendSize': VolumeInfoT, 'Image.delete': Empty,
} as const;
export type SpmTaskMethod = keyof typeof SpmTaskResults;
export type SpmTaskResultOf<M extends SpmTaskMethod> = Static<(typeof SpmTaskResults)[M]>;

const NETWORK_SETUP_ERRORS = [
  'invalidParams', 'unavailable', 'networkLostConnection', 'networkSetupFailed', 'networkRollbackFailed', 'networkCommandFailed', 'hookError', 'shuttingDown',
] as const;

const NETWORK_METHODS = {
  'Host.setupNetworks': method({
    summary: 'Sets up host networks and bonds (VDSM\'s attributes: nic or bonding, vlan, bridged, stp, mtu, ipv4 {bootproto, ipaddr, netmask|prefix, gateway}, '
      + 'ipv6 {address, gateway, autoconf, dhcpv6}, defaultRoute, nameservers, remove; bonds: nics, options, remove). The request is validated '
      + 'before anything changes (a bad one names the field); before_network_setup may rewrite it. The change is applied and verified, then, '
      + 'with connectivityCheck (default on), kept only if the engine confirms within connectivityTimeout (default 4 s): Host.confirmConnectivity '
      + 'or any other request. Otherwise it is rolled back and the rollback verified: 10 (rolled back, verified), 29 (apply failed; rolled back, '
      + 'verified), 1009 (rollback not verified); error data carries reason, rollback {verified, diff, steps} and phasesMs. A call while one '
      + 'runs gets 40. The reply may never reach a client the change cut off: Host.getNetworkCapabilities().lastSetup says how the call ended.',
    params: SetupNetworksParams, result: SetupNetworksResult, errors: NETWORK_SETUP_ERRORS, since: '0.4', mutating: true, duringRecovery: true,
  }),
  'Host.setSafeNetworkConfig': method({
    summary: 'Persists the running network config (atomically) as the one the host returns to at boot (restore-networks); clears netConfigDirty.',
    params: Empty, result: Empty, errors: ['unavailable'], since: '0.4', mutating: true, duringRecovery: true,
  }),
  'Host.getNetworkCapabilities': method({
    summary: 'Nics, bridges, VLANs and bonds with their live state, the managed networks, netConfigDirty, and how the last setupNetworks ended.',
    params: Empty, result: NetworkCapabilities, errors: ['networkCommandFailed'], since: '0.4', mutating: false,
  }),
} as const satisfies Record<string, MethodDef>;

const STORAGE_HOST_METHODS = {
  'Host.getStorageRepoStats': method({
    summary: "Each connected domain's monitor: whether its metadata was readable at the last check (an O_DIRECT read every storage.monitorIntervalMs), the read's delay, seconds since that check, whether this host's id is acquired in its lockspace. Any connected host (not only the SPM); {} when not connected.",
    params: Type.Object({ domains: Type.Optional(Type.Array(Uuid, { maxItems: 100, description: 'only these domains (default: all monitored)' })) }),
    result: RepoStats, errors: [], since: '0.3', mutating: false,
  }),
} as const satisfies Record<string, MethodDef>;

const VM_ERRORS = ['noVM', 'recovery', 'libvirtUnavailable', 'libvirtError', 'externalVM', 'timeout', 'hookError'] as const;

export const Methods = {
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
    summary: 'Host utilisation: CPU, memory, load, per-NIC rates and uptime.',
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

  'VM.create': method({
    summary: 'Starts a VM from libvirt domain XML or a compact spec. Returns WaitForLaunch at once; status events follow.',
    params: withVmId({
      xml: Type.Optional(Type.String({ minLength: 1, maxLength: 4 * 1024 * 1024, description: 'libvirt domain XML' })),
      spec: Type.Optional(VmSpec),
      launchPaused: Type.Optional(Type.Boolean()),
    }),
    result: Type.Object({ vmId: Uuid, status: Type.Literal('WaitForLaunch') }),
    errors: ['exists', 'invalidParams', 'recovery', 'libvirtUnavailable', 'shuttingDown', 'hookError', 'networkBadBridge'], since: '0.1', mutating: true,
  }),
  'VM.destroy': method({
    summary: 'Stops the VM at once (graceful destroy first, then forced) and forgets it.',
    params: withVmId({}), result: Empty, errors: VM_ERRORS, since: '0.1', mutating: true,
  }),
  'VM.shutdown': method({
    summary: 'Shuts the guest down: guest agent, then ACPI, then (only if force) destroy; each step with its own timeout.',
    params: withVmId({
      delay: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 's to wait before starting' })),
      message: Type.Optional(Type.String({ maxLength: 1024 })),
      timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 's per step' })),
      force: Type.Optional(Type.Boolean({ default: false })),
    }),
    result: Type.Object({ status: VmStatus, method: Type.String({ description: 'the step that stopped the VM' }) }),
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.reset': method({
    summary: 'Hard reset of the guest.', params: withVmId({}), result: Empty,
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.pause': method({
    summary: 'Pauses the VM.', params: withVmId({}), result: Type.Object({ status: VmStatus }),
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.cont': method({
    summary: 'Resumes a paused VM.', params: withVmId({}), result: Type.Object({ status: VmStatus }),
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.getStats': method({
    summary: "The VM's stats from the last sample.", params: withVmId({}),
    result: Type.Object({ statsList: Type.Array(VmStats) }), errors: ['noVM', 'hookError'], since: '0.1', mutating: false,
  }),
  'VM.hotplugDisk': method({
    summary: 'Attaches a disk to a running VM and records it in the VM metadata.',
    params: withVmId({ drive: DiskSpec }), result: Type.Object({ xml: Type.String() }),
    errors: [...VM_ERRORS, 'wrongState', 'exists'], since: '0.1', mutating: true,
  }),
  'VM.hotunplugDisk': method({
    summary: 'Detaches a disk from a running VM.',
    params: withVmId({ drive: Type.Object({ name: Type.String({ minLength: 1 }) }) }), result: Empty,
    errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.hotplugNic': method({
    summary: 'Attaches a NIC to a running VM.',
    params: withVmId({ nic: NicSpec }), result: Type.Object({ mac: Type.String(), xml: Type.String() }),
    errors: [...VM_ERRORS, 'wrongState', 'networkBadBridge'], since: '0.1', mutating: true,
  }),
  'VM.hotunplugNic': method({
    summary: 'Detaches a NIC, named by MAC address, from a running VM.',
    params: withVmId({ nic: Type.Object({ mac: Type.String({ pattern: '^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$' }) }) }),
    result: Empty, errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  'VM.setTicket': method({
    summary: 'Sets the VNC password, valid for ttl seconds.',
    params: withVmId({
      password: Type.String({ maxLength: 8, description: 'VNC passwords are at most 8 characters' }),
      ttl: Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600, description: 's; 0 = expire now' }),
      existingConnAction: Type.Optional(Type.Union([Type.Literal('keep'), Type.Literal('disconnect'), Type.Literal('fail')], { default: 'keep' })),
    }),
    result: Empty, errors: [...VM_ERRORS, 'wrongState'], since: '0.1', mutating: true,
  }),
  ...NETWORK_METHODS,
  ...STORAGE_METHODS,
  ...TASK_METHODS,
  ...STORAGE_HOST_METHODS,
} as const satisfies Record<string, MethodDef>;

export type MethodName = keyof typeof Methods;
export type ParamsOf<M extends MethodName> = Static<(typeof Methods)[M]['params']>;
export type ResultOf<M extends MethodName> = Static<(typeof Methods)[M]['result']>;

export interface EventDef<P extends TSchema = TSchema> {
  /** The JSON-RPC notification method; <vmId> is replaced per event. */
  method: string;
  summary: string;
  params: P;
  since: string;
}

const VmStatusEventBody = Type.Object({
  status: VmStatus,
  pauseCode: Type.Optional(PauseCode),
  ...ExitInfo,
  elapsedTime: Type.Optional(Type.Number()),
  ioerror: Type.Optional(Type.Object({ alias: Type.String(), path: Type.String(), reason: Type.String() })),
});

export const Events = {
  VM_status: {
    method: '|virt|VM_status|<vmId>',
    summary: "A VM's status changed. params: {<vmId>: {status, ...}, notify_time}.",
    params: Type.Object({ notify_time: Type.Number({ description: 'monotonic ms' }) }, { additionalProperties: VmStatusEventBody }),
    since: '0.1',
  },
  hooks_changed: {
    method: '|hooks|changed|no_id',
    summary: 'The installed hooks changed. params: {hooks: {point: {script: {checksum}}}, notify_time}.',
    params: Type.Object({ hooks: Type.Record(Type.String(), Type.Unknown()), notify_time: Type.Number() }),
    since: '0.2',
  },
  network_setup: {
    method: '|net|setupNetworks|no_id',
    summary: 'A setupNetworks call ended: applied, rolledBack (verified), rollbackUnverified or refused. params: the lastSetup record of Host.getNetworkCapabilities, and notify_time.',
    params: Type.Object({ ...LastSetup.properties, notify_time: Type.Number() }),
    since: '0.4',
  },
} as const satisfies Record<string, EventDef>;

export type VmStatusEventBody = Static<typeof VmStatusEventBody>;
export type EventName = keyof typeof Events;

export const API_VERSION = '0.4';
