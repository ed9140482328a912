// A job: one asynchronous action, from its request (pending) to its end. The executor that runs
// jobs against agents updates it; the API only reads it.
import { Type, type Static } from '@sinclair/typebox';
import { EpochMs, Id, NullableEpochMs, StringEnum } from './common.js';

export const JOB_STATES = ['pending', 'running', 'succeeded', 'failed'] as const;
export const JobState = StringEnum(JOB_STATES);
export type JobState = Static<typeof JobState>;
export const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed'];

export const JOB_KINDS = ['storage-domain.create', 'network.apply', 'disk.create', 'disk.delete',
  'vm.start', 'vm.stop', 'vm.shutdown', 'vm.migrate', 'host.maintenance',
  'vm.suspend', 'vm.snapshot', 'vm.snapshot.delete', 'vm.snapshot.restore', 'vm.hibernation.discard',
  'template.create', 'template.delete', 'vm.clone', 'disk.copy', 'disk.move'] as const;
export const JobKind = StringEnum(JOB_KINDS);
export type JobKind = Static<typeof JobKind>;

export const JobStep = Type.Object({
  name: Type.String(),
  state: JobState,
  startedAt: NullableEpochMs,
  endedAt: NullableEpochMs,
  hostId: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
});
export type JobStep = Static<typeof JobStep>;

export const JobError = Type.Object({
  code: Type.String(),
  message: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
});
export type JobError = Static<typeof JobError>;

export const Job = Type.Object({
  id: Id,
  kind: JobKind,
  targetKind: Type.String({ description: 'vm, disk, network, storage-domain' }),
  targetId: Id,
  state: JobState,
  params: Type.Record(Type.String(), Type.Unknown()),
  steps: Type.Array(JobStep),
  progress: Type.Integer({ minimum: 0, maximum: 100 }),
  error: Type.Union([JobError, Type.Null()]),
  correlationId: Type.String(),
  createdAt: EpochMs,
  startedAt: NullableEpochMs,
  endedAt: NullableEpochMs,
  updatedAt: EpochMs,
});
export type Job = Static<typeof Job>;
