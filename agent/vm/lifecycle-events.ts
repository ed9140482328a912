// Applies libvirt domain events to the VMs' statuses.
import { enums, type DomainEvent } from '../libvirt/index.js';
import type { Vm } from './vm.js';
import { ExitReason, pauseCodeFor, type ExitInfo } from './status.js';

const T = enums.DomainEventType;

function stoppedExit(vm: Vm, detail: number): ExitInfo {
  const D = enums.DomainEventStoppedDetailType;
  if (vm.destroying) return { exitCode: 0, exitReason: ExitReason.DESTROYED, exitMessage: 'VM destroyed by the engine' };
  if (detail === D.SHUTDOWN) {
    return vm.shuttingDown
      ? { exitCode: 0, exitReason: ExitReason.ADMIN_SHUTDOWN, exitMessage: 'Admin shut down the VM' }
      : { exitCode: 0, exitReason: ExitReason.USER_SHUTDOWN, exitMessage: 'User shut down from within the guest' };
  }
  if (detail === D.SAVED) return { exitCode: 0, exitReason: ExitReason.SAVE_STATE_SUCCEEDED, exitMessage: 'VM hibernated' };
  if (detail === D.MIGRATED) return { exitCode: 0, exitReason: ExitReason.MIGRATION_SUCCEEDED, exitMessage: 'migration succeeded' };
  if (detail === D.CRASHED) return { exitCode: 1, exitReason: ExitReason.CRASHED, exitMessage: 'The guest crashed' };
  if (detail === D.FAILED) return { exitCode: 1, exitReason: ExitReason.GENERIC_ERROR, exitMessage: 'The VM failed (QEMU exited)' };
  if (detail === D.DESTROYED) return { exitCode: 1, exitReason: ExitReason.DESTROYED, exitMessage: 'VM destroyed outside the agent' };
  return { exitCode: 1, exitReason: ExitReason.GENERIC_ERROR, exitMessage: `VM stopped (libvirt detail ${detail})` };
}

/** Returns true when the VM's status changed. */
export function applyLifecycle(vm: Vm, ev: DomainEvent<'lifecycle'>): boolean {
  switch (ev.event) {
    case T.STARTED:
      vm.domId = ev.domain.id;
      if (vm.destroying) return false; // a late event of a launch that destroy is undoing
      // An incoming migration's domain starts paused: Up only once it resumes here.
      return vm.status === 'WaitForLaunch' || vm.status === 'Migration Destination' || vm.status === 'Restoring State' ? false : vm.setStatus('Up');
    case T.SUSPENDED: {
      // A migration pauses the guest for its last copy; the migration sets the outcome.
      if (vm.status === 'Migration Source' || vm.status === 'Migration Destination' || vm.status === 'Saving State' || vm.status === 'Restoring State') return false;
      const io = ev.detail === enums.DomainEventSuspendedDetailType.IOERROR;
      return vm.setStatus('Paused', { pauseCode: io ? vm.ioerror ? pauseCodeFor(vm.ioerror.reason) : 'EIO' : 'NOERR' });
    }
    case T.RESUMED:
      // A failed outgoing migration resumes the guest; the migration sets Up once it has cleaned up.
      if (vm.status === 'Migration Source' || vm.status === 'Saving State' || vm.status === 'Restoring State') return false;
      // In post-copy the guest runs here before all its memory has come: it stays Migration Destination
      // until libvirt ends the job (as VDSM maps RUNNING/POSTCOPY), since a failure now loses the VM.
      if (vm.status === 'Migration Destination' && ev.detail === enums.DomainEventResumedDetailType.POSTCOPY) return false;
      return vm.setStatus('Up');
    case T.SHUTDOWN:
      return vm.status === 'Down' ? false : vm.setStatus('Powering down');
    case T.STOPPED:
    case T.CRASHED:
      vm.domId = undefined;
      return vm.setStatus('Down', { exit: stoppedExit(vm, ev.event === T.CRASHED ? enums.DomainEventStoppedDetailType.CRASHED : ev.detail) });
    default:
      return false;
  }
}

/** Records an I/O error's reason; the SUSPENDED event that follows sets the pause. */
export function applyIoError(vm: Vm, ev: DomainEvent<'io-error-reason'>): boolean {
  vm.ioerror = { alias: ev.devAlias, path: ev.srcPath, reason: ev.reason };
  if (vm.status === 'Paused') return vm.setStatus('Paused', { pauseCode: pauseCodeFor(ev.reason) });
  return false;
}
