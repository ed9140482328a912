// The guest agent poller as the daemon runs it: settings, the VMs of the
// manager, domains through the reconnecting libvirt client.
import type { Config } from '../../config/settings.js';
import type { ReconnectingLibvirtClient } from '../../libvirt/index.js';
import type { Logger } from '../../log.js';
import type { VmManager } from '../manager.js';
import { GuestPoller } from './guest-poller.js';

export { GuestPoller } from './guest-poller.js';
export type { GuestInfo } from './guest-info-parse.js';

/** A guest can answer its agent only while it runs (not paused, not migrating away). */
const ANSWERING = new Set(['Up', 'Powering up', 'Powering down']);

export function guestPollerFromConfig(c: Config, manager: VmManager, client: ReconnectingLibvirtClient, log: Logger): GuestPoller {
  return new GuestPoller({
    schedule: {
      pollMs: c['guest.pollIntervalMs'], usersMs: c['guest.usersPeriodMs'], sysinfoMs: c['guest.sysinfoPeriodMs'],
      diskInfoMs: c['guest.diskInfoPeriodMs'], initialWindowMs: c['guest.initialWindowMs'],
    },
    callTimeoutMs: c['guest.callTimeoutMs'],
    throttleMs: c['guest.throttleMs'],
    vms: () => manager.list().filter((vm) => !vm.external).map((vm) => ({ id: vm.id, running: ANSWERING.has(vm.status), hasGuestAgent: vm.hasGuestAgent })),
    domain: (vmId) => manager.domain(manager.get(vmId)),
    subscribe: (listener) => client.subscribe('agent-lifecycle', (ev) => listener(ev.domain.uuid, ev.state, ev.reason)),
    log,
  });
}
