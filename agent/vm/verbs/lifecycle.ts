// The running VM's lifecycle verbs: destroy, shutdown (guest agent, ACPI,
// force), pause, cont and reset.
import { PhaseTimer } from '../../log.js';
import { enums } from '../../libvirt/index.js';
import { WrongStateError, OperationTimeoutError, NoVmError } from '../../../api/errors.js';
import type { ParamsOf } from '../../../api/schema.js';
import { ExitReason, type VmStatusT } from '../status.js';
import { api } from '../libvirt-errors.js';
import { VmVerbs } from './base.js';
import type { Vm } from '../vm.js';

export class VmLifecycle extends VmVerbs {
  /**
   * Never answers success for a VM that then runs: a launch that has not
   * begun is cancelled; one that has (it is ahead in the VM's queue, where it
   * was put when the VM was registered) is followed, and its domain
   * destroyed. A destroy of a vmID whose create has not registered it yet
   * waits for that create first.
   */
  async destroy(vmId: string): Promise<void> {
    const creating = this.m.creating.get(vmId);
    if (creating && !this.m.vms.has(vmId)) await creating.catch(() => undefined);
    const vm = this.m.managed(vmId);
    vm.shuttingDown?.abort(); // an orderly shutdown waiting in the queue yields to destroy
    if (vm.launch === 'waiting') vm.launch = 'cancelled'; // stops the launch rather than undoing it
    return vm.queue.run(async () => {
      try {
        await this.destroyNow(vm);
      } catch (e) {
        // The launch it cancelled will never run: the VM is Down, not waiting for a launch for good.
        if (vm.launch === 'cancelled' && vm.status === 'WaitForLaunch') {
          this.m.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.GENERIC_ERROR, exitMessage: `launch cancelled by VM.destroy, which then failed: ${(e as Error).message}` } });
        }
        throw e;
      }
    });
  }

  /** The destroy itself, in the VM's queue. */
  private async destroyNow(vm: Vm): Promise<void> {
    // Forgotten while this waited (its create failed, or an earlier destroy ran): nothing runs, nothing to do.
    if (this.m.vms.get(vm.id) !== vm) return;
    const timer = new PhaseTimer();
    const hookXml = this.o.hooks.has('before_vm_destroy') || this.o.hooks.has('after_vm_destroy')
      ? await this.liveXml(vm)().catch(() => '<domain/>') : '<domain/>';
    await this.xmlHook('before_vm_destroy', vm, hookXml);
    // Looked for whatever the status says (a launch that failed may have left one); only
    // "no such domain" means there is none: a timeout or outage fails the destroy, never answers success.
    vm.destroying = true;
    const dom = vm.launch === 'cancelled' ? undefined : await this.m.domain(vm).catch((e: unknown) => { if (e instanceof NoVmError) return undefined; vm.destroying = false; throw e; });
    if (dom) {
      try {
        await api(() => dom.destroy(enums.DomainDestroyFlagsValues.GRACEFUL), vm.id);
      } catch {
        timer.mark('graceful');
        await api(() => dom.destroy(0), vm.id);
      }
      timer.mark('destroy');
    }
    // A VM already Down keeps the exit it had (a failed launch's, a guest shutdown's).
    if (vm.status !== 'Down') this.m.setStatus(vm, 'Down', { exit: { exitCode: 0, exitReason: ExitReason.DESTROYED, exitMessage: 'VM destroyed by the engine' } });
    this.m.forget(vm);
    await this.o.disks?.released(vm.id, vm.disks);
    await this.xmlHook('after_vm_destroy', vm, hookXml).catch((e) => this.o.log.warn('after_vm_destroy hooks failed', { vm: vm.id, err: e }));
    this.o.log.info('VM destroyed', { vm: vm.id, ...timer.fields() });
  }

  /** Guest agent, then ACPI, then (only if asked) destroy; each step waits its own timeout. */
  async shutdown(p: ParamsOf<'VM.shutdown'>): Promise<{ status: VmStatusT; method: string }> {
    const vm = this.m.managed(p.vmID);
    if (vm.status === 'Down') throw new WrongStateError(`VM ${vm.id} is already down`);
    const abort = new AbortController();
    return vm.queue.run(async () => {
      vm.shuttingDown = abort;
      const timer = new PhaseTimer();
      const stepMs = (p.timeout ?? this.o.timeouts.shutdownStepMs / 1000) * 1000;
      try {
        if (p.delay) await new Promise((r) => setTimeout(r, p.delay! * 1000));
        const dom = await this.m.domain(vm);
        const steps: [string, () => Promise<void>][] = [];
        const F = enums.DomainShutdownFlagValues;
        if (vm.hasGuestAgent) steps.push(['guest-agent', () => dom.shutdown({ flags: F.GUEST_AGENT, timeoutMs: stepMs })]);
        steps.push(['acpi', () => dom.shutdown({ flags: F.ACPI_POWER_BTN, timeoutMs: stepMs })]);
        if (p.force) steps.push(['force', () => dom.destroy(0)]);
        this.m.setStatus(vm, 'Powering down');
        for (const [method, run] of steps) {
          if (abort.signal.aborted) break;
          try {
            await api(run, vm.id);
          } catch (e) {
            timer.mark(method);
            this.o.log.info('shutdown step failed', { vm: vm.id, method, err: e });
            continue;
          }
          const down = await vm.waitFor((s) => s === 'Down', stepMs, abort.signal);
          timer.mark(method);
          if (down) {
            this.o.log.info('VM shut down', { vm: vm.id, method, ...timer.fields() });
            return { status: vm.status, method };
          }
        }
        if (abort.signal.aborted) return { status: vm.status, method: 'destroy' };
        // Nothing worked: it is still running.
        if (vm.status === 'Powering down') this.m.setStatus(vm, 'Up');
        throw new OperationTimeoutError(`VM ${vm.id} did not shut down (tried ${steps.map((s) => s[0]).join(', ')})`);
      } finally {
        vm.shuttingDown = undefined;
      }
    });
  }

  async pause(vmId: string): Promise<{ status: VmStatusT }> {
    await this.simple(vmId, ['Up', 'Powering up'], 'pause', async (vm) => {
      await this.xmlHook('before_vm_pause', vm, this.liveXml(vm));
      const dom = await this.m.domain(vm);
      await api(() => dom.suspend(), vm.id);
      this.m.setStatus(vm, 'Paused', { pauseCode: 'NOERR' });
      await this.xmlHook('after_vm_pause', vm, this.liveXml(vm)).catch((e) => this.o.log.warn('after_vm_pause hooks failed', { vm: vm.id, err: e }));
    });
    return { status: this.m.get(vmId).status };
  }

  async cont(vmId: string): Promise<{ status: VmStatusT }> {
    await this.simple(vmId, ['Paused'], 'cont', async (vm) => {
      await this.xmlHook('before_vm_cont', vm, this.liveXml(vm));
      const dom = await this.m.domain(vm);
      await api(() => dom.resume(), vm.id);
      this.m.setStatus(vm, 'Up');
      await this.xmlHook('after_vm_cont', vm, this.liveXml(vm)).catch((e) => this.o.log.warn('after_vm_cont hooks failed', { vm: vm.id, err: e }));
    });
    return { status: this.m.get(vmId).status };
  }

  async reset(vmId: string): Promise<void> {
    await this.simple(vmId, ['Up', 'Powering up', 'Paused'], 'reset', async (vm) => {
      const dom = await this.m.domain(vm);
      await api(() => dom.reset(), vm.id);
    });
  }
}
