// The controller's VM spec turned into the agent's, for one host: each disk by its disk id
// becomes the storage ids VM.create takes (the cluster's pool, the disk's domain, image and
// volume; the agent prepares the volume itself), each NIC by cluster network becomes the bridge
// of that network on the host, as the host's agent reports its networks now.
import type { Static } from '@sinclair/typebox';
import type { DiskSpec, NicSpec, VmSpec } from '../../api/types.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { Vm } from '../model/vms.js';
import type { Store } from '../store/store.js';
import type { HostFacts } from './host-facts.js';

export type AgentVmSpec = Static<typeof VmSpec>;
type AgentDisk = Static<typeof DiskSpec>;
type AgentNic = Static<typeof NicSpec>;

export async function agentSpecFor(vm: Vm, hostId: string, store: Store, facts: HostFacts): Promise<AgentVmSpec> {
  const { disks: diskRefs, nics: nicRefs, name: _name, ...rest } = vm.spec;
  const spec: AgentVmSpec = { ...rest, name: vm.name };
  if (diskRefs && diskRefs.length > 0) spec.disks = await disksOf(vm, diskRefs, store);
  if (nicRefs && nicRefs.length > 0) spec.nics = await nicsOf(nicRefs, hostId, facts);
  return spec;
}

async function disksOf(vm: Vm, refs: NonNullable<Vm['spec']['disks']>, store: Store): Promise<AgentDisk[]> {
  const cluster = await store.clusters.get(vm.clusterId);
  if (cluster.poolId === null) throw new JobFailure('NoStoragePool', `cluster ${cluster.name} has no storage pool yet: the VM's disks cannot be reached`, { cluster: cluster.id });
  const out: AgentDisk[] = [];
  for (const ref of refs) {
    const disk = await store.disks.find(ref.diskId);
    if (!disk) throw new JobFailure('DiskMissing', `disk ${ref.diskId} (${ref.name}) no longer exists`, { diskId: ref.diskId });
    if (disk.status !== 'ready') throw new JobFailure('DiskNotReady', `disk ${disk.name} (${ref.name}) is ${disk.status}, not ready`, { diskId: disk.id, status: disk.status });
    const domain = await store.storageDomains.get(disk.storageDomainId);
    out.push({
      name: ref.name,
      storage: { poolID: cluster.poolId, domainID: domain.id, imageID: disk.imageId, volumeID: disk.volumeId },
      type: domain.spec.type,
      // Thin disks are qcow2 (COW) volumes, preallocated ones raw: how their volumes are made.
      format: disk.provisioning === 'thin' ? 'qcow2' : 'raw',
      ...(ref.bus !== undefined && { bus: ref.bus }),
      ...(ref.readonly !== undefined && { readonly: ref.readonly }),
      ...(ref.cache !== undefined && { cache: ref.cache }),
      ...(ref.errorPolicy !== undefined && { errorPolicy: ref.errorPolicy }),
    });
  }
  return out;
}

async function nicsOf(refs: NonNullable<Vm['spec']['nics']>, hostId: string, facts: HostFacts): Promise<AgentNic[]> {
  // Read now: a network applied since the last read must be found, one removed must not.
  const f = await facts.refresh(hostId) ?? facts.get(hostId);
  if (!f) throw new JobFailure('HostFactsUnknown', `the networks of host ${hostId} could not be read`, { hostId });
  return refs.map((ref) => {
    const net = f.networks.get(ref.network);
    if (!net) throw new JobFailure('NetworkMissing', `network ${ref.network} is not up on host ${hostId}`, { network: ref.network, hostId });
    if (!net.bridged) throw new JobFailure('NetworkNotBridged', `network ${ref.network} has no bridge on host ${hostId}: a VM NIC cannot join it`, { network: ref.network, hostId });
    return {
      bridge: net.iface,
      ...(ref.mac !== undefined && { mac: ref.mac }),
      ...(ref.model !== undefined && { model: ref.model }),
      ...(ref.alias !== undefined && { alias: ref.alias }),
    };
  });
}
