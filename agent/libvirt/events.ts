// Typed domain events. Each kind maps to one libvirt VIR_DOMAIN_EVENT_ID_*.
import { DomainEventID, DomainEventType, DomainEventIOErrorAction } from './generated/enums.js';
import type { Int64, RawDomainEvent, TypedParamsRecord } from './native.js';

export interface DomainRef {
  name: string;
  uuid: string;
  /** libvirt's runtime id, -1 when not running. */
  id: number;
}

export interface DomainEventPayloads {
  lifecycle: { event: DomainEventType; detail: number };
  reboot: Record<string, never>;
  'block-threshold': { dev: string; path: string; threshold: Int64; excess: Int64 };
  'io-error-reason': { srcPath: string; devAlias: string; action: DomainEventIOErrorAction; reason: string };
  'job-completed': { params: TypedParamsRecord };
  'device-removed': { devAlias: string };
  'device-removal-failed': { devAlias: string };
  'agent-lifecycle': { state: number; reason: number };
  'migration-iteration': { iteration: number };
  'metadata-change': { type: number; nsuri: string };
  /** BLOCK_JOB_2: disk is the target (vda); status a ConnectDomainEventBlockJobStatus. */
  'block-job': { disk: string; type: number; status: number };
}

export type DomainEventKind = keyof DomainEventPayloads;

export type DomainEvent<K extends DomainEventKind = DomainEventKind> = {
  [P in K]: { kind: P; domain: DomainRef } & DomainEventPayloads[P];
}[K];

export const DOMAIN_EVENT_IDS: Readonly<Record<DomainEventKind, DomainEventID>> = {
  lifecycle: DomainEventID.LIFECYCLE,
  reboot: DomainEventID.REBOOT,
  'block-threshold': DomainEventID.BLOCK_THRESHOLD,
  'io-error-reason': DomainEventID.IO_ERROR_REASON,
  'job-completed': DomainEventID.JOB_COMPLETED,
  'device-removed': DomainEventID.DEVICE_REMOVED,
  'device-removal-failed': DomainEventID.DEVICE_REMOVAL_FAILED,
  'agent-lifecycle': DomainEventID.AGENT_LIFECYCLE,
  'migration-iteration': DomainEventID.MIGRATION_ITERATION,
  'metadata-change': DomainEventID.METADATA_CHANGE,
  'block-job': DomainEventID.BLOCK_JOB_2,
};

/** Turns the addon's flat event object into the typed event for `kind`. */
export function toDomainEvent<K extends DomainEventKind>(kind: K, raw: RawDomainEvent): DomainEvent<K> {
  const { eventId: _id, domain, ...fields } = raw;
  return { kind, domain, ...fields } as unknown as DomainEvent<K>;
}
