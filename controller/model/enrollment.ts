// Enrollment: a one-time token for a host to join, and what the controller answers it with.
import { Type, type Static } from '@sinclair/typebox';
import { EpochMs, Id, Name } from './common.js';

export const EnrollmentToken = Type.Object({
  id: Id,
  hostName: Name,
  address: Type.String(),
  port: Type.Integer(),
  clusterId: Id,
  expiresAt: EpochMs,
  usedAt: Type.Union([EpochMs, Type.Null()]),
  hostId: Type.Union([Id, Type.Null()]),
  createdAt: EpochMs,
});
export type EnrollmentToken = Static<typeof EnrollmentToken>;
