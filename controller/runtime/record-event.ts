// A decision function's event, written to the audit log (and so to /events/stream).
import type { DecisionEvent } from '../decision-event.js';
import type { Store } from '../store/store.js';

export async function recordDecisionEvent(store: Store, e: DecisionEvent, correlationId?: string): Promise<void> {
  const subjectKind = e.vm !== undefined ? 'vm' : e.host !== undefined ? 'host' : 'cluster';
  await store.event({
    kind: e.kind, severity: e.severity, subjectKind, subjectId: e.vm ?? e.host ?? '', message: e.reason, ...(correlationId && { correlationId }),
    details: { at: e.at, ...(e.host !== undefined && { hostId: e.host }), ...(e.vm !== undefined && { vmId: e.vm }), ...e.data },
  });
}
