/** The shape of `pool.connections()`: a per-connection snapshot for dashboards and debugging. */

/**
 * Where a connection is. `validating` covers borrow validation and keepalive checks; `resetting` is a
 * returned connection being reset (factory.reset) or tested (testOnReturn).
 */
export type PoolConnectionState = 'idle' | 'lent' | 'validating' | 'resetting';

export interface PoolConnectionInfo<T> {
  /** The engine's connection id, stable for the connection's life. */
  readonly id: number;
  readonly state: PoolConnectionState;
  /** When it was opened, epoch ms. */
  readonly createdAt: number;
  readonly ageMs: number;
  /** How long it has been available; 0 unless idle. */
  readonly idleMs: number;
  /** Times it was lent. */
  readonly uses: number;
  /** Message of the last failed validation or reset on it (redacted by the factory's errors, not here). */
  readonly lastError?: string;
  /** The raw connection; backends strip it before exposing the snapshot. */
  readonly connection: T;
}
