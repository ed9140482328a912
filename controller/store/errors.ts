// Errors of the store. A NotFound or Conflict is the caller's mistake and carries what it was
// about; a StoreUnavailable is ours (the database could not be opened or migrated).
export class StoreError extends Error {
  readonly code: number = 5000;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class NotFoundError extends StoreError {
  override readonly code = 5001;
  constructor(readonly kind: string, readonly id: string, readonly field?: string) {
    super(`${kind} ${id} does not exist`);
  }
}

export class ConflictError extends StoreError {
  override readonly code = 5002;
  constructor(message: string, readonly details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class StoreUnavailableError extends StoreError {
  override readonly code = 5003;
}

/** True when a driver error is a unique-constraint violation (SQLite or PostgreSQL). */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** True when a driver error is a foreign-key violation (SQLite or PostgreSQL). */
export function isForeignKeyViolation(e: unknown): boolean {
  const err = e as { code?: string };
  return err?.code === '23503' || err?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}
