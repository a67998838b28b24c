/** Errors particular to the registry, on top of the shared InferdError hierarchy. */
import { InferdError } from '../core/errors.js';

/**
 * A compare-and-set lost: the alias or stage no longer points where the caller expected.
 * `current` is where it points now (null: nowhere), so the caller can decide what to do.
 */
export class RegistryConflictError extends InferdError {
  readonly current: number | null;

  constructor(message: string, current: number | null) {
    super('FAILED_PRECONDITION', message, { details: { current } });
    this.current = current;
  }
}

/** The store cannot be reached or is locked; retrying later may work. */
export function storeUnavailable(label: string, problem: string, cause?: unknown): InferdError {
  return new InferdError('UNAVAILABLE', `registry store ${label} ${problem}`, { cause, retryAfterSeconds: 1 });
}
