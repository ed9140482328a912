// Hostvisor's libvirt binding: a typed facade over our N-API addon.
export { Connection, withTimeout, DEFAULT_CALL_TIMEOUT_MS } from './connection.js';
export type { ConnectionOptions, DisconnectInfo, EventSubscription } from './connection.js';
export { Domain } from './domain.js';
export type { LongCallOptions } from './domain.js';
export { LibvirtError, LibvirtTimeoutError, LibvirtUnavailableError, isLibvirtError } from './errors.js';
export type { DomainEvent, DomainEventKind, DomainEventPayloads, DomainRef } from './events.js';
export { encodeTypedParams, toNumber, TypedParamError } from './typed-params.js';
export { ReconnectingLibvirtClient, backoffDelay, DEFAULT_BACKOFF } from './reconnecting-client.js';
export type { DurableSubscription, ReconnectingClientOptions } from './reconnecting-client.js';
export { domainStatsFlags } from './domain-stats.js';
export type { DomainStatsQuery, StatsGroup, StatsDomainState } from './domain-stats.js';
export { closeInheritedFdsOnExec } from './inherited-fds.js';
export { releaseFreedMalloc } from './malloc-trim.js';
export {
  sanlockBinding, SANLOCK_ERROR_DOMAIN, AcquireFlags, AddLockspaceFlags, HostState, KillpathFlags, LockspaceStateFlags, ReleaseFlags,
  RemLockspaceFlags, ResourceFlags, RestrictFlags, SanlockRc, sanlockRcName,
} from './sanlock.js';
export type { SanlockBinding, RawSanlockHost, RawSanlockHeld, RawSanlockLockspace } from './sanlock.js';
export { native } from './native.js';
export { blockCommit, blockJobInfo, blockJobAbort } from './block-jobs.js';
export type { BlockJobInfo, CommitOptions } from './block-jobs.js';
export type { NodeInfo, DomainInfo, BlockInfo, RawDomainStats, InterfaceAddresses, Int64, TypedParamsRecord } from './native.js';
export * as enums from './generated/enums.js';
