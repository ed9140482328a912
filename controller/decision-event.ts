// What a decision function reports happened: the audit log's raw material. The caller persists
// these (with a sequence number) and streams them; the decision functions only build them.

export type EventSeverity = 'info' | 'warning' | 'error';

export interface DecisionEvent {
  /** ms since the epoch, from the clock the decision was given (never read inside). */
  at: number;
  /** dotted name, e.g. host.status, spm.elected, vm.differs */
  kind: string;
  severity: EventSeverity;
  host?: string;
  vm?: string;
  /** a sentence a person can read: why this happened */
  reason: string;
  data?: Record<string, unknown>;
}

export function decisionEvent(at: number, kind: string, severity: EventSeverity, reason: string,
  about: { host?: string; vm?: string; data?: Record<string, unknown> } = {}): DecisionEvent {
  const e: DecisionEvent = { at, kind, severity, reason };
  if (about.host !== undefined) e.host = about.host;
  if (about.vm !== undefined) e.vm = about.vm;
  if (about.data !== undefined) e.data = about.data;
  return e;
}
