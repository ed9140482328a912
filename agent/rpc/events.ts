// Events to engines: each change a source reports becomes the JSON-RPC
// notification the schema's Events name, with a monotonic notify_time, sent
// to every connected engine.
import { Events, type MergeJobT, type MigrationStatsT, type ResultOf, type VmStatusEventBody } from '../../api/schema.js';

type LastSetup = NonNullable<ResultOf<'Host.getNetworkCapabilities'>['lastSetup']>;

/** What the agent's services emit; only the events that engines hear about. */
export interface EventSources {
  vms: { on(event: 'status', listener: (vm: { id: string; eventBody(): VmStatusEventBody }) => void): unknown };
  hooks: { on(event: 'changed', listener: (hooks: Record<string, unknown>) => void): unknown };
  networks: { on(event: 'setup', listener: (setup: LastSetup) => void): unknown };
  migrations?: { on(event: 'status', listener: (vmId: string, stats: MigrationStatsT) => void): unknown };
  guests?: { on(event: 'agent', listener: (vmId: string, connected: boolean) => void): unknown };
  tasks?: { on(event: 'task', listener: (s: { taskID: string; verb: string; state: string; taskState: string; taskResult: string; code: number; message: string; progress?: number }) => void): unknown };
  merges?: { on(event: 'status', listener: (vmId: string, jobs: MergeJobT[]) => void): unknown };
}

export type Broadcast = (method: string, params: Record<string, unknown>) => void;

const notifyTime = (): number => Math.round(performance.now());

/** Subscribes to every source; each event goes to BROADCAST (the RPC server's, once it exists). */
export function fanOutEvents(sources: EventSources, broadcast: Broadcast): void {
  sources.vms.on('status', (vm) => {
    broadcast(Events.VM_status.method.replace('<vmId>', vm.id), { [vm.id]: vm.eventBody(), notify_time: notifyTime() });
  });
  sources.migrations?.on('status', (vmId, { vmId: _id, ...body }) => {
    broadcast(Events.VM_migration_status.method.replace('<vmId>', vmId), { [vmId]: body, notify_time: notifyTime() });
  });
  sources.guests?.on('agent', (vmId, connected) => {
    broadcast(Events.VM_guest_agent.method.replace('<vmId>', vmId), { [vmId]: { connected }, notify_time: notifyTime() });
  });
  sources.tasks?.on('task', ({ taskID, ...body }) => {
    broadcast(Events.task_status.method.replace('<taskID>', taskID), { [taskID]: body, notify_time: notifyTime() });
  });
  sources.merges?.on('status', (vmId, jobs) => {
    broadcast(Events.VM_job_status.method.replace('<vmId>', vmId), { [vmId]: { jobs }, notify_time: notifyTime() });
  });
  sources.hooks.on('changed', (hooks) => broadcast(Events.hooks_changed.method, { hooks, notify_time: notifyTime() }));
  sources.networks.on('setup', (setup) => broadcast(Events.network_setup.method, { ...setup, notify_time: notifyTime() }));
}
