// Hibernation: VM.hibernate writes the VM's RAM and device state to a state volume and stops
// it; VM.create with restoreState resumes it from that volume (launch.ts calls resume()). The
// disks stay as they are between the two, so the state and the disks stay consistent.
import { PhaseTimer } from '../../log.js';
import { InvalidParamsError, WrongStateError } from '../../../api/errors.js';
import type { ParamsOf } from '../../../api/schema.js';
import type { Vm } from '../vm.js';
import { ExitReason } from '../status.js';
import { api } from '../libvirt-errors.js';
import { VmVerbs } from './base.js';
import { enums } from '../../libvirt/index.js';
import { restoreXmlOnDisks } from '../restore-xml.js';

export type StateVolumeRef = ParamsOf<'VM.hibernate'>['stateVolume'];

export class VmHibernation extends VmVerbs {
  /** Answers once before_vm_hibernate passed; the save runs in the VM's queue, and its end is the VM's status. */
  async hibernate(p: ParamsOf<'VM.hibernate'>): Promise<void> {
    const vm = this.m.managed(p.vmID);
    let accepted!: () => void;
    let refused!: (e: unknown) => void;
    const answer = new Promise<void>((res, rej) => { accepted = res; refused = rej; });
    void vm.queue.run(async () => {
      if (vm.status !== 'Up' && vm.status !== 'Paused') { refused(new WrongStateError(`hibernate is not allowed while the VM is ${vm.status}`)); return; }
      const timer = new PhaseTimer();
      const log = this.o.log.child({ vm: vm.id, op: 'hibernate' });
      let path: string;
      let xml: string;
      try {
        path = await this.statePath(p.stateVolume, 'params.stateVolume');
        timer.mark('prepare');
        xml = await this.liveXml(vm)();
        await this.xmlHook('before_vm_hibernate', vm, xml);
        timer.mark('hooks');
      } catch (e) {
        await this.releaseState(vm.id, p.stateVolume);
        refused(e);
        return;
      }
      accepted();
      const before = vm.status;
      this.m.setStatus(vm, 'Saving State');
      try {
        const dom = await this.m.domain(vm);
        await api(() => dom.save(path), vm.id);
        timer.mark('save');
      } catch (e) {
        // libvirt leaves the guest running when a save fails: it stays as it was.
        log.warn('hibernation failed; the VM goes on running', { err: e, ...timer.fields() });
        this.m.setStatus(vm, before);
        await this.releaseState(vm.id, p.stateVolume);
        return;
      }
      this.m.setStatus(vm, 'Down', { exit: { exitCode: 0, exitReason: ExitReason.SAVE_STATE_SUCCEEDED, exitMessage: 'VM hibernated' } });
      this.m.forget(vm);
      await this.o.disks?.released(vm.id, vm.disks);
      await this.releaseState(vm.id, p.stateVolume);
      await this.xmlHook('after_vm_hibernate', vm, xml).catch((e) => log.warn('after_vm_hibernate hooks failed', { err: e }));
      log.info('VM hibernated', { ...timer.fields() });
    });
    return answer;
  }

  /**
   * Resumes a VM registered by VM.create from its state volume (in place of createXML). The saved
   * XML is used as it was saved (paths of shared storage are the same on every host), except that
   * disks the create puts elsewhere (a memory snapshot resumed on a new leaf) are moved there.
   */
  async resume(vm: Vm, state: StateVolumeRef, xml: string): Promise<void> {
    const path = await this.statePath(state, 'params.restoreState');
    try {
      await this.xmlHook('before_vm_dehibernate', vm, xml);
      this.m.setStatus(vm, 'Restoring State');
      // A memory snapshot's image names the snapshot's base volumes: the VM resumes on its own disks.
      const saved = await api(() => this.m.conn().saveImageXml(path, enums.DomainSaveImageXMLFlags.SECURE), vm.id);
      const dxml = restoreXmlOnDisks(saved, vm.disks, vm.meta);
      await api(() => this.m.conn().restore(path, dxml), vm.id);
      const dom = await api(() => this.m.conn().lookupByUUID(vm.id), vm.id);
      vm.domId = dom.id;
    } finally {
      await this.releaseState(vm.id, state);
    }
    this.m.setStatus(vm, 'Up');
    await this.xmlHook('after_vm_dehibernate', vm, this.liveXml(vm)).catch((e) => this.o.log.warn('after_vm_dehibernate hooks failed', { vm: vm.id, err: e }));
  }

  private async statePath(state: StateVolumeRef, field: string): Promise<string> {
    if ('path' in state) return state.path;
    if (!this.o.disks) throw new InvalidParamsError('a state volume with storage ids needs a connected storage pool', { data: { field } });
    return this.o.disks.prepareState(state);
  }

  private async releaseState(vmId: string, state: StateVolumeRef): Promise<void> {
    if (!('path' in state)) await this.o.disks?.releaseState(vmId, state);
  }
}
