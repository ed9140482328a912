// What every family of VM verbs shares: the options, the VM's queue with a
// state check, hook points with the domain XML, and saving our metadata.
import type { Static } from '@sinclair/typebox';
import type { Logger } from '../../log.js';
import { enums } from '../../libvirt/index.js';
import { InvalidParamsError, WrongStateError } from '../../../api/errors.js';
import type { NicSpec } from '../../../api/types.js';
import type { VmManager } from '../manager.js';
import type { Vm } from '../vm.js';
import type { VmStatusT } from '../status.js';
import { metadataElement, METADATA_NS, METADATA_PREFIX } from '../metadata.js';
import { api } from '../libvirt-errors.js';
import type { Hooks } from '../../hooks/hooks.js';
import type { VmDisks } from '../../storage/vm-disks.js';
import type { HookPoint } from '../../hooks/points.js';

export interface VmTimeouts {
  /** createXML: a launch given up on while libvirtd still starts QEMU leaves a domain behind a Down status. */
  launchMs: number;
  destroyMs: number;
  shutdownStepMs: number;
  hotunplugMs: number;
  /** VM.snapshot's wait for the guest agent's freeze (vm.snapshotFreezeTimeoutMs). */
  snapshotFreezeMs?: number;
}

export interface VmOperationsOptions {
  manager: VmManager;
  log: Logger;
  domainType: () => string;
  /** where new VNC displays listen (vm.displayListen) */
  displayListen: string;
  timeouts: VmTimeouts;
  /** False once the agent is stopping: no new launches. */
  accepting: () => boolean;
  hooks: Hooks;
  /** Disks that refer to storage ids (absent: only disks with paths). */
  disks?: VmDisks;
  /**
   * The bridge of a host network, for NICs given as `network: NAME`; throws
   * (27) naming FIELD when there is no such bridged network. Absent: such NICs
   * are refused.
   */
  networkBridge?: (network: string, field: string) => Promise<string>;
}

export const AFFECT_LIVE = enums.DomainModificationImpact.LIVE;

export abstract class VmVerbs {
  constructor(protected readonly o: VmOperationsOptions) {}

  protected get m(): VmManager { return this.o.manager; }

  /** Runs fn in the VM's queue once the VM is in one of the allowed states. */
  protected simple(vmId: string, allowed: VmStatusT[], name: string, fn: (vm: Vm) => Promise<void>): Promise<void> {
    const vm = this.m.managed(vmId);
    return vm.queue.run(async () => {
      if (!allowed.includes(vm.status)) throw new WrongStateError(`${name} is not allowed while the VM is ${vm.status}`);
      await fn(vm);
    });
  }

  /** Runs an XML hook point for a VM; returns what the hooks left. Raising points throw HookError. */
  protected async xmlHook(point: HookPoint, vm: Vm, xml: string | (() => Promise<string>), params?: Record<string, string | number | boolean>): Promise<string | undefined> {
    if (!this.o.hooks.has(point)) return undefined;
    const data = typeof xml === 'string' ? xml : await xml();
    const call = { data, vmId: vm.id, customProperties: vm.meta.customProperties, ...(params ? { params } : {}) };
    const r = await this.o.hooks.runRaising(point, call);
    return r.data;
  }

  protected liveXml(vm: Vm): () => Promise<string> {
    return async () => {
      const dom = await this.m.domain(vm);
      return api(() => dom.xml(), vm.id);
    };
  }

  protected async saveMetadata(vm: Vm): Promise<void> {
    const dom = await this.m.domain(vm);
    await api(() => dom.setMetadata(enums.DomainMetadataType.ELEMENT, metadataElement(vm.meta), METADATA_PREFIX, METADATA_NS, AFFECT_LIVE), vm.id);
  }

  /**
   * A NIC names exactly one of `bridge` (any Linux bridge) and `network` (a
   * host network: its bridge, VDSM's way). FIELD is the NIC's path in the request.
   */
  protected async resolveNic(nic: Static<typeof NicSpec>, field: string): Promise<Static<typeof NicSpec>> {
    if ((nic.bridge === undefined) === (nic.network === undefined)) {
      throw new InvalidParamsError(`${field}: give exactly one of bridge and network`, { data: { field: `${field}.network` } });
    }
    if (nic.network === undefined) return nic;
    if (!this.o.networkBridge) {
      throw new InvalidParamsError(`${field}.network: host networks are not available in this agent; give a bridge`, { data: { field: `${field}.network` } });
    }
    return { ...nic, bridge: await this.o.networkBridge(nic.network, `${field}.network`) };
  }
}
