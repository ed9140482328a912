// The VM part of the controller, wired into the runtime by one call (controller/main.ts):
// placement at request time for POST /vms/{id}/start, the vm.start / vm.stop / vm.shutdown job
// handlers, and VM reconcile on every observation of the hosts' VMs.
import type { LogFn } from '../agents/log-fn.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { ApiContext } from '../http/context.js';
import { agentAnswering } from '../health/host-status.js';
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import { PlacementService, type PlacementView } from '../scheduler/placement-service.js';
import { PendingReservations } from '../scheduler/reservations.js';
import type { Store } from '../store/store.js';
import { ConsoleTickets } from './console-tickets.js';
import { HostFacts, type PlacementFacts } from './host-facts.js';
import { runtimePlacementView } from './placement-view.js';
import { startJob } from './start-job.js';
import { stopJob } from './stop-jobs.js';
import type { VmJobDeps } from './vm-job-deps.js';
import { VmReconciler } from './vm-reconciler.js';
import { VmRegistry } from './vm-registry.js';
import { GuestInfoReader } from './guest-info.js';
import { VmStarts } from './vm-starts.js';

export interface VmsPart {
  registry: VmRegistry;
  reservations: PendingReservations;
  reconciler: VmReconciler;
  facts: HostFacts;
  /**
   * Where placement takes each host's networks and pool connection; the networks and storage
   * parts replace these functions with theirs (default: what the agents report).
   */
  placementFacts: PlacementFacts;
  starts: VmStarts;
  /** placement over the hosts as the runtime sees them (migrations and maintenance place with it too) */
  placement: PlacementService;
  view: PlacementView;
  /** what the VM job handlers share */
  deps: VmJobDeps;
  /** resolves once the VMs and the pending reservations are loaded from the store */
  ready: Promise<void>;
}

export function installVms(runtime: ControllerRuntime, store: Store, settings: DecisionSettings, log: LogFn, api?: ApiContext): VmsPart {
  const facts = new HostFacts({ links: runtime.links, store, settings, log });
  const placementFacts: PlacementFacts = { ...facts.reported };
  const registry = new VmRegistry(store, log);
  const reservations = new PendingReservations();
  const reconciler = new VmReconciler({ registry, store, settings, latest: runtime.sink.latestVms, log });
  let ready: Promise<void> | null = null;
  const load = (): Promise<void> => (ready ??= (async () => {
    await registry.load();
    const n = reservations.rebuild(await store.jobs.unfinished());
    if (n > 0) log('info', 'pending VM starts reserved again from their unfinished jobs', { reservations: n });
  })());
  const view = runtimePlacementView({
    monitor: runtime.monitor, latest: runtime.sink.latest, facts, registry, reservations,
    placementFacts: { networksOn: (h) => placementFacts.networksOn(h), poolConnected: (h) => placementFacts.poolConnected(h) },
  });
  const placement = new PlacementService({ settings, reservations, view, log });
  const starts = new VmStarts({
    store, settings, registry, reconciler, reservations, placement, facts, placementFacts, log, get ready() { return load(); },
    answering: (h) => { const st = runtime.monitor.health(h)?.status; return st !== undefined && agentAnswering(st); },
  });
  const deps: VmJobDeps = {
    store, settings, links: runtime.links, monitor: runtime.monitor, registry, reconciler, reservations, facts, starts, log,
    get ready() { return load(); },
  };
  runtime.executor.register('vm.start', startJob(deps));
  runtime.executor.register('vm.stop', stopJob(deps, 'stop'));
  runtime.executor.register('vm.shutdown', stopJob(deps, 'shutdown'));
  runtime.sink.listen({ vms: async (o) => { await load(); reconciler.observe(o); } });

  let sweep: NodeJS.Timeout | undefined;
  runtime.addLoop({
    start() {
      void load().catch((e: unknown) => log('error', 'could not load the VMs from the store', { error: String(e) }));
      facts.start();
      // Time alone settles a start whose host never lists the VM (start-in-flight timeout).
      sweep = setInterval(() => {
        if (!ready) return;
        reconciler.sweep();
        void registry.syncFromStore().catch((e: unknown) => log('warn', 'could not read the VMs from the store', { error: String(e) }));
      }, settings.vmListIntervalMs);
      sweep.unref();
    },
    async close() {
      clearInterval(sweep);
      await facts.close();
      await reconciler.flushed();
      await registry.flushed();
    },
  });
  if (api) {
    api.vmStarts = starts;
    api.consoles = new ConsoleTickets({ store, registry, links: runtime.links, settings });
    api.guestInfo = new GuestInfoReader({ registry, links: runtime.links, settings });
  }
  return { registry, reservations, reconciler, facts, placementFacts, starts, placement, view, deps, get ready() { return load(); } };
}
