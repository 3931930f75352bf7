/**
 * A backend's driver package is not installed. Drivers are optional peer dependencies (an app that only
 * uses Redis does not install `pg`), so this is a set-up mistake reported by `start()` (or the first
 * `acquire()`), with the command that fixes it.
 */
import { brandPoolError, PoolError, type PoolErrorOptions } from '../core/index.js';

export class PoolDriverMissingError extends PoolError {
  override name = 'PoolDriverMissingError';
  /** The backend that needs the package, e.g. `postgres`. */
  readonly backend: string;
  /** The npm package to install, e.g. `pg`. */
  readonly packageName: string;

  constructor(poolName: string, backend: string, packageName: string, options?: PoolErrorOptions) {
    super(
      poolName,
      `the "${backend}" backend needs the "${packageName}" package, which is not installed; ` +
        `run: npm install ${packageName}`,
      options,
    );
    this.backend = backend;
    this.packageName = packageName;
  }
}
brandPoolError(PoolDriverMissingError, PoolError);
