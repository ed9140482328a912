// Every tunable of the controller's decisions (health, SPM, placement, reconcile) and of how it
// reaches the agents (connections, monitoring) in one table:
// its default, unit, allowed range and why. The controller's config file takes its values from
// here; the decision functions take a resolved DecisionSettings, never a global.

export interface SettingDef {
  default: number;
  unit: 'ms' | 'count' | 'MiB' | '%';
  min: number;
  max: number;
  reason: string;
}

export const DECISION_SETTINGS = {
  pollIntervalMs: {
    default: 3_000, unit: 'ms', min: 500, max: 60_000,
    reason: "Host.getStats poll period (oVirt's VdsRefreshRate, 3 s): fast enough that a lost host is Connecting within two polls",
  },
  pollTimeoutMs: {
    default: 3_000, unit: 'ms', min: 100, max: 60_000,
    reason: "bound on one monitoring call (Host.getStats, Host.getVMList): no answer within it is a failed poll. One poll period (a longer value is cut to it), so a hung agent (stopped, deadlocked) is Connecting within two polls; Host.getStats serves a cached sample in milliseconds. oVirt's 180 s vdsTimeout bounds every verb and leaves hung-agent detection to its 30 s heartbeat",
  },
  vmListIntervalMs: {
    default: 15_000, unit: 'ms', min: 500, max: 600_000,
    reason: "period of the full Host.getVMList per host (oVirt's PollVmStatsRefresher: VdsRefreshRate x NumberVmRefreshesBeforeSave = 3 s x 5); VM_status events carry the changes in between, and a new connection or a host answering again fetches the list at once",
  },
  agentConnectTimeoutMs: {
    default: 20_000, unit: 'ms', min: 500, max: 300_000,
    reason: "bound on one connect to an agent (TCP, TLS and the WebSocket upgrade; oVirt's vdsConnectionTimeout, 20 s): a host that drops packets must not hold a connect attempt forever, and a loaded one gets time to answer the handshake",
  },
  agentReconnectMaxMs: {
    default: 3_000, unit: 'ms', min: 200, max: 300_000,
    reason: "longest pause between two connect attempts to an unreachable agent (backoff from 200 ms, jittered): one poll period, as oVirt tries again at every refresh, so a returning agent is Up within about a poll of listening; a refused connect costs the host one SYN",
  },
  agentKeepaliveMs: {
    default: 10_000, unit: 'ms', min: 200, max: 300_000,
    reason: "WebSocket ping period on every agent connection; a connection that hears nothing for a full period is ended and redialled. Catches a host cut off without a TCP reset within 20 s, well inside the 60 s grace, so the controller is already redialling when the host is declared lost (oVirt's 30 s heartbeat would take the whole grace). The agent stops reading, and so stops answering pings, only past 256 unanswered calls on a connection, far above the few the controller keeps in flight",
  },
  agentCallTimeoutMs: {
    default: 75_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: "default bound on any other agent call: longer than the agent's own 60 s request timeout (rpc.requestTimeoutMs), so the agent's 1007 answer (it may still complete) normally comes first; long work runs as tasks and events, so unlike oVirt's 180 s vdsTimeout no call needs minutes",
  },
  nonResponsiveAttempts: {
    default: 2, unit: 'count', min: 0, max: 100,
    reason: "a host turns NonResponsive only after MORE than this many failed polls (oVirt's VDSAttemptsToResetCount); one lost reply is a blip, not a dead host",
  },
  nonResponsiveGraceMs: {
    default: 60_000, unit: 'ms', min: 0, max: 3_600_000,
    reason: "and only after MORE than this since the last good poll (oVirt's TimeoutToResetVdsInSeconds): a restarting agent or a network hiccup must not make its VMs Unknown",
  },
  spmExtraGraceMs: {
    default: 20_000, unit: 'ms', min: 0, max: 3_600_000,
    reason: "added to the grace when the host is the SPM (oVirt's DelayResetForSpmInSeconds): losing the SPM stops storage changes cluster-wide, so be surer first",
  },
  perVmGraceMs: {
    default: 500, unit: 'ms', min: 0, max: 60_000,
    reason: "added to the grace per VM on the host (oVirt's DelayResetPerVmInSeconds): a busy host answers slower, and declaring it lost affects more VMs",
  },
  recoveryTimeoutMs: {
    default: 180_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: "a host still Initializing (agent answers 99, recovering) after this is NonOperational (oVirt's VdsRecoveryTimeoutInMinutes, 3 min): recovery that never ends needs a person",
  },
  storageUnreachableGraceMs: {
    default: 300_000, unit: 'ms', min: 0, max: 86_400_000,
    reason: "a pool domain must be unreachable from a host this long before the host is NonOperational (oVirt's StorageDomainFailureTimeoutInMinutes, 5 min): a storage blip must not make hosts unfit",
  },
  spmRetryIntervalMs: {
    default: 10_000, unit: 'ms', min: 500, max: 600_000,
    reason: 'after a failed spmStart a host is tried again only after this; the old SPM lease frees 140 s after its last renewal (sanlock host_dead_seconds), so trying every 10 s finds it free within one interval without flooding the agents',
  },
  spmOpTimeoutMs: {
    default: 90_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: 'an spmStart/spmStop with no result after this (a controller restart lost the call) is given up; safe because the sanlock lease, not the controller, decides who is SPM',
  },
  spmReportMaxAgeMs: {
    default: 9_000, unit: 'ms', min: 1_000, max: 600_000,
    reason: "a host's getSpmStatus answer older than this (three polls) is not used to adopt or drop an SPM: a stale report must not move the role",
  },
  poolConnectRetryMs: {
    default: 10_000, unit: 'ms', min: 500, max: 600_000,
    reason: 'a host whose StoragePool.connect failed (or that lacks a pool domain) is asked again only after this: a connect joins the lockspace (2 x sanlock io_timeout + 1 s), so asking faster only piles attempts up on a host that cannot reach the storage',
  },
  spmWaitMs: {
    default: 300_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: "a disk job waits this long for its cluster to have an SPM before it fails: an election after the SPM's host died waits for its lease, which frees at most 140 s (sanlock host_dead_seconds) after its last renewal, plus retries",
  },
  spmTaskTimeoutMs: {
    default: 3_600_000, unit: 'ms', min: 1_000, max: 86_400_000,
    reason: 'bound on following one SPM task (a preallocated volume is written in full, GiB by GiB); the task goes on on the SPM regardless, and a resumed job follows the same task again',
  },
  domainConnectWaitMs: {
    default: 180_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: 'a storage-domain.create job waits this long for a host to see the new domain through the pool (connect: lockspace join, first monitor check) before it fails; the connector keeps trying afterwards',
  },
  startInFlightTimeoutMs: {
    default: 120_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: "a VM start whose host is reachable but does not list the VM after this has failed (VM.create's own timeout is shorter); until then, and while the host is unreachable, no second start is allowed",
  },
  vmStartTimeoutMs: {
    default: 120_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: "a vm.start job whose VM is not Up on its host after this fails with that reason (the agent reports Up once libvirt has launched the domain, seconds after VM.create; disks on block storage are activated first). The VM is left as the agent has it: if it comes Up later, reconcile shows it Up",
  },
  vmShutdownTimeoutMs: {
    default: 25_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: "what a vm.shutdown that names no timeout gives each step of the agent's VM.shutdown (guest agent, then ACPI) before the VM is powered off: both steps fit in the agent's 60 s request bound, and a guest that has not stopped in 25 s after the power button is not going to",
  },
  consoleTicketTtlMs: {
    default: 120_000, unit: 'ms', min: 5_000, max: 3_600_000,
    reason: "how long a console ticket (POST /vms/{id}/console without ttlSeconds) opens the VM's display: time to start a viewer and connect, and no longer, since the password is in the answer (oVirt's 120 s default). A viewer connected before it ends stays connected",
  },
  hostFactsRefreshMs: {
    default: 60_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: "how often placement re-reads each host's capabilities (CPUs, the networks up on it) and pool connection; each new connection to an agent reads them at once. They change only when the host's networks or storage are set up, which other parts do through the controller",
  },
  hostReservedMemoryMiB: {
    default: 512, unit: 'MiB', min: 0, max: 1_048_576,
    reason: "memory kept for the host itself (kernel, agent, QEMU overhead) and never given to VM reservations, so a fully booked host does not swap or OOM",
  },
  networkObserveIntervalMs: {
    default: 15_000, unit: 'ms', min: 500, max: 600_000,
    reason: "how often each host's networks are read (Host.getNetworkCapabilities: a few ip reads, milliseconds) to find a required cluster network gone (a bridge deleted by hand, a nic unplugged); a new connection to the agent reads them at once",
  },
  networkRetryIntervalMs: {
    default: 60_000, unit: 'ms', min: 500, max: 3_600_000,
    reason: 'a cluster network that could not be set up on a host is tried again after this (the nic may be plugged in or renamed later); not sooner, so a request the host refuses is not sent in a tight loop. A changed nic map is tried at once',
  },
  networkConnectivityTimeoutMs: {
    default: 20_000, unit: 'ms', min: 1_000, max: 600_000,
    reason: "the connectivityTimeout sent with Host.setupNetworks: the agent keeps a change only if the controller still reaches it within this, else rolls it back. The controller confirms every 500 ms while it waits, so a host it still reaches keeps the change at once; a change that cut the host off is undone after this long (VDSM's own default, 4 s, is too short for a loaded host)",
  },
  highUtilizationPct: {
    default: 80, unit: '%', min: 50, max: 99,
    reason: "default of a cluster policy's HighUtilization (oVirt's evenly_distributed and power_saving, 80 %): power_saving packs hosts only up to this",
  },
  lowUtilizationPct: {
    default: 20, unit: '%', min: 0, max: 49,
    reason: "default of a cluster policy's LowUtilization (oVirt's power_saving, 20 %): a host under it for the whole duration is emptied onto the others and put into maintenance",
  },
  balancingIntervalMs: {
    default: 60_000, unit: 'ms', min: 200, max: 3_600_000,
    reason: "period of the balancing loop (oVirt's VdsLoadBalancingIntervalInMinutes, 1 min); each cycle migrates at most one VM per cluster, so a cluster evens out one VM a minute and a migration has finished before the next is decided",
  },
  balancingOverCommitDurationMs: {
    default: 120_000, unit: 'ms', min: 200, max: 5_940_000,
    reason: "how long a host must stay over HighUtilization (or under LowUtilization) before the balancer acts, when the cluster sets no cpuOverCommitDurationMinutes (oVirt's CpuOverCommitDurationMinutes, 2 min): a burst is not an overload, and moving a VM costs more than a short burst",
  },
  balancingSampleGapMs: {
    default: 10_000, unit: 'ms', min: 100, max: 600_000,
    reason: "two utilisation samples further apart than this (failed polls, a controller restart) break a run of over- or under-utilisation: the time between is unknown, and unknown is not 'still over'. Three 3 s polls: one lost poll does not reset the clock",
  },
  balancingHistorySamples: {
    default: 2_000, unit: 'count', min: 10, max: 100_000,
    reason: "utilisation samples kept per host (one per good poll): 2000 polls of 3 s cover 100 min, more than the longest CpuOverCommitDuration a cluster can set (99 min), in about 100 KiB per host",
  },
  balancingHighVmCount: {
    default: 10, unit: 'count', min: 0, max: 1_000,
    reason: "vm_evenly_distributed's HighVmCount when the cluster sets none (oVirt's default, 10): a host running fewer VMs is never a source, so small clusters are not shuffled",
  },
  balancingMigrationThreshold: {
    default: 5, unit: 'count', min: 2, max: 1_000,
    reason: "vm_evenly_distributed's MigrationThreshold when the cluster sets none (oVirt's MigrationThresholdForEvenGuestDistribute, 5): the VM-count difference between source and destination a move needs; at least 2, so a move never just swaps which host has more",
  },
  balancingSpmVmGrace: {
    default: 5, unit: 'count', min: 0, max: 1_000,
    reason: "vm_evenly_distributed's SpmVmGrace when the cluster sets none (oVirt's SpmVmGraceForEvenGuestDistribute, 5): the SPM host counts as this many extra VMs, as its storage work loads it",
  },
  migrationTimeoutMs: {
    default: 900_000, unit: 'ms', min: 5_000, max: 86_400_000,
    reason: "a vm.migrate job that has not seen the VM Up on the destination after this fails (the agent's own migration.timeoutSec and its progress timeout abort a copy that does not converge well before; this bounds the controller's wait when the agent never says). 15 min: a 16 GiB guest at 100 MiB/s with several dirty passes fits",
  },
  migrationStatusPollMs: {
    default: 1_000, unit: 'ms', min: 100, max: 60_000,
    reason: 'period of VM.getMigrationStatus while a vm.migrate job follows its migration: VM_migration_status events bring the progress sooner, this catches an event lost with a reconnect. One call per second per migration is cheap for the agent',
  },
  maintenanceMigrationAttempts: {
    default: 3, unit: 'count', min: 1, max: 20,
    reason: "tries per VM (vm.migrate jobs, each to the scheduler's best host at that moment) before maintenance gives up on it and the host goes MaintenanceFailed naming it: a transient failure (destination at its incoming limit, a blip) gets retried, a VM that cannot move does not leave the host in PreparingForMaintenance forever, oVirt's most common complaint (it retries every 300 s without end)",
  },
  maintenanceParallelMigrations: {
    default: 2, unit: 'count', min: 1, max: 16,
    reason: "VMs migrated off a host entering maintenance at once: the agent's outgoing limit (migration.maxOutgoing, VDSM's max_outgoing_migrations 2); more would only queue on the agent",
  },
  maintenanceSpmHandoverTimeoutMs: {
    default: 300_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: "a host entering maintenance while it is the SPM waits this long for the SPM loop to stop it and elect another host before the maintenance fails: spmStop is quick, but a new spmStart may wait for the lease (sanlock, up to 140 s host_dead_seconds after a lost holder)",
  },
  vmSuspendTimeoutMs: {
    default: 600_000, unit: 'ms', min: 1_000, max: 3_600_000,
    reason: "a vm.suspend job whose VM is still Saving State after this fails (the VM is left as the agent has it): libvirt writes the RAM at disk speed, a few seconds per GiB, and a busy guest's dirty pages add to it; 10 min covers tens of GiB on a slow domain",
  },
  vmMergeTimeoutMs: {
    default: 3_600_000, unit: 'ms', min: 1_000, max: 86_400_000,
    reason: "a snapshot delete (live merge) whose agent job has not ended after this fails, and the merge goes on on the agent: a commit copies the top volume's data at disk speed, and a guest that writes hard keeps an active commit from converging for a while",
  },
  vmStatePollMs: {
    default: 500, unit: 'ms', min: 50, max: 60_000,
    reason: "period of Host.getVMList on the VM's host while a vm.suspend job follows the save: the agent forgets a VM once its state is saved, which the list shows at once, and an event lost with a reconnect changes nothing",
  },
  hibernationReconcileMs: {
    default: 15_000, unit: 'ms', min: 500, max: 600_000,
    reason: "period at which a hibernation left `saving` by a suspend whose outcome is unknown is looked at again (every host's VM list, then the state volume's header): such records are rare, and one pass costs a Host.getVMList per host",
  },
} as const satisfies Record<string, SettingDef>;

export type DecisionSettingName = keyof typeof DECISION_SETTINGS;
export type DecisionSettings = { readonly [K in DecisionSettingName]: number };

/** A setting out of its range or unknown: the operator's mistake (a config error), never a fault. */
export class DecisionSettingError extends Error {
  override readonly name = 'DecisionSettingError';
  readonly code = 1201;
  constructor(readonly setting: string, message: string, options?: { cause?: unknown }) {
    super(`${setting}: ${message}`, options);
  }
}

export function defaultDecisionSettings(): DecisionSettings {
  const out: Partial<Record<DecisionSettingName, number>> = {};
  for (const [name, def] of Object.entries(DECISION_SETTINGS)) out[name as DecisionSettingName] = def.default;
  return Object.freeze(out as Record<DecisionSettingName, number>);
}

/** The defaults with the given overrides, each checked against its range. */
export function resolveDecisionSettings(overrides: Readonly<Record<string, unknown>> = {}): DecisionSettings {
  const out: Record<string, number> = { ...defaultDecisionSettings() };
  for (const [name, value] of Object.entries(overrides)) {
    const def: SettingDef | undefined = (DECISION_SETTINGS as Record<string, SettingDef>)[name];
    if (def === undefined) throw new DecisionSettingError(name, 'unknown setting');
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new DecisionSettingError(name, `must be a number (${def.unit})`);
    if (value < def.min || value > def.max) throw new DecisionSettingError(name, `must be within ${def.min}..${def.max} ${def.unit}, got ${value}`);
    if (def.unit === 'count' && !Number.isInteger(value)) throw new DecisionSettingError(name, 'must be a whole number');
    out[name] = value;
  }
  return Object.freeze(out as Record<DecisionSettingName, number>);
}
