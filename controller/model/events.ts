// The audit log: every change the controller makes or observes, in one increasing sequence.
import { Type, type Static } from '@sinclair/typebox';
import { EpochMs } from './common.js';

export const Severity = Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('error')]);
export type Severity = Static<typeof Severity>;

export const Event = Type.Object({
  seq: Type.Integer({ minimum: 1, description: 'strictly increasing; never reused' }),
  time: EpochMs,
  kind: Type.String({ description: 'e.g. host.enrolled, vm.created, job.created' }),
  severity: Severity,
  subjectKind: Type.String(),
  subjectId: Type.String(),
  message: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
  correlationId: Type.Union([Type.String(), Type.Null()]),
});
export type Event = Static<typeof Event>;

export type NewEvent = Omit<Event, 'seq' | 'time' | 'details' | 'severity' | 'correlationId'> & {
  details?: Record<string, unknown>;
  severity?: Severity;
  correlationId?: string | null;
};
