// What the VM image jobs (suspend, resume, snapshots) share: the VM part's job deps and the
// storage part's (SPM tasks), and where a VM's image volumes go.
import type { Static } from '@sinclair/typebox';
import type { StorageRef } from '../../api/types.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { Vm } from '../model/vms.js';
import type { StorageDeps } from '../storage/storage-deps.js';
import type { Store } from '../store/store.js';
import type { VmJobDeps } from '../vms/vm-job-deps.js';
import type { PoolVolume } from './pool-volumes.js';

export interface VmImageDeps {
  vms: VmJobDeps;
  storage: StorageDeps;
}

export type AgentStorageRef = Static<typeof StorageRef>;

export interface VolumeHome {
  clusterId: string;
  poolId: string;
  domainId: string;
  /** block domains hold RAW volumes preallocated (an LV), file domains sparse */
  block: boolean;
}

/** Where a VM's RAM state volumes go: the domain of its first disk, else the cluster's master domain. */
export async function volumeHomeOf(store: Store, vm: Vm): Promise<VolumeHome> {
  const cluster = await store.clusters.get(vm.clusterId);
  if (cluster.poolId === null) throw new JobFailure('NoStoragePool', `cluster ${cluster.name} has no storage pool: the VM's state has nowhere to go`, { cluster: cluster.id });
  const first = vm.spec.disks?.[0];
  const disk = first ? await store.disks.find(first.diskId) : undefined;
  const domain = disk ? await store.storageDomains.get(disk.storageDomainId)
    : (await store.storageDomains.list({ clusterId: cluster.id })).find((d) => d.master);
  if (!domain) throw new JobFailure('NoStorageDomain', `cluster ${cluster.name} has no master storage domain`, { cluster: cluster.id });
  return { clusterId: cluster.id, poolId: cluster.poolId, domainId: domain.id, block: domain.spec.type === 'block' };
}

export function agentRef(poolId: string, v: Omit<PoolVolume, 'clusterId'>): AgentStorageRef {
  return { poolID: poolId, domainID: v.domainId, imageID: v.imageId, volumeID: v.volumeId };
}
