/**
 * Injection tokens. They are strings, not symbols or classes, so the ESM and CommonJS builds of this package
 * (two copies of every class, should an app load both) still agree on them.
 */
import { DEFAULT_POOL_NAME } from '../core/index.js';

export { DEFAULT_POOL_NAME };

/** Prefix of every pool token: `getPoolToken('users')` is `nestjs-pool:pool:users`. */
export const POOL_TOKEN_PREFIX = 'nestjs-pool:pool:';
/**
 * Token of the app's PoolManager (also provided under its class). Health, metrics and the admin inject it by
 * this string, so that loaded from the other build they still find the pools PoolModule registered.
 */
export const POOL_MANAGER = 'nestjs-pool:manager';
/** Token of one forRootAsync() call's resolved options (suffixed with the pool name). */
export const POOL_MODULE_OPTIONS_PREFIX = 'nestjs-pool:options:';

/** Defaults of the module-level options. */
export const DEFAULT_RETRY_ATTEMPTS = 3;
export const DEFAULT_RETRY_DELAY_MS = 1_000;
export const DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS = 10_000;
export const DEFAULT_SHUTDOWN_CLOSE_TIMEOUT_MS = 5_000;
