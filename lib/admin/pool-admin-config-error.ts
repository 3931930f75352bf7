import { brandPoolError, PoolConfigError } from '../core/index.js';

/**
 * PoolAdminModule was configured wrongly (no auth at all, a short token, a bad path...). A PoolConfigError,
 * so `field` names the option; `poolName` is `'admin'` since no single pool is concerned.
 */
export class PoolAdminConfigError extends PoolConfigError {
  override name = 'PoolAdminConfigError';

  constructor(field: string, reason: string) {
    super('admin', field, reason);
    this.message = `PoolAdminModule: invalid option "${field}": ${reason}`;
  }
}
brandPoolError(PoolAdminConfigError, PoolConfigError);
