/**
 * The server (or its deployment) cannot do what was asked, e.g. MongoDB transactions on a standalone server
 * or FerretDB, which need a replica set or a sharded cluster. Not a transient failure: retrying won't help.
 */
import { brandPoolError, PoolError, type PoolErrorOptions } from '../core/index.js';

export class PoolUnsupportedError extends PoolError {
  override name = 'PoolUnsupportedError';
  /** What is unsupported, e.g. `transactions`. */
  readonly feature: string;

  constructor(poolName: string, feature: string, reason: string, options?: PoolErrorOptions) {
    super(poolName, `${feature} are not supported here: ${reason}`, options);
    this.feature = feature;
  }
}
brandPoolError(PoolUnsupportedError, PoolError);
