import type { BackendPoolOptions } from '../../backends/index.js';
import type { BackendPoolTypes, ShardedPoolOptions } from '../../backends/backend-registry.js';
import type { PoolLoggerOption } from '../pool-log-sink.js';

/** What the module adds on top of createPool()'s options. */
export interface PoolModuleLifecycleOptions {
  /** Attempts to open the pool at bootstrap before giving up (config errors are never retried). Default 3. */
  retryAttempts?: number;
  /** Delay between those attempts. Default 1000. */
  retryDelayMs?: number;
  shutdown?: {
    /** How long `onApplicationShutdown` first waits for lent connections to come back. Default 10000. */
    drainTimeoutMs?: number;
    /** How long it then waits, while closing, before destroying connections still lent. Default 5000. */
    closeTimeoutMs?: number;
  };
  /**
   * Where the pool's log lines go (lifecycle, leaks, throttled connection failures): omitted → Nest's
   * `Logger` with context `PoolModule:<name>`; `false` → nowhere; a `LoggerService` → that one (the context
   * is passed as the last argument).
   */
  logger?: PoolLoggerOption;
}

/** The options of one backend, typed by its name (`backend: 'postgres'` → PostgresPoolOptions). */
export type BackendOptionsOf<K> = K extends keyof BackendPoolTypes
  ? BackendPoolTypes[K]['options']
  : BackendPoolOptions;

/**
 * createPool()'s options plus the module's lifecycle options: `{ name, backend, uri, pool: { max }, ... }`.
 * A union over the known backends, so `backend: 'postgres'` narrows the extras (`replicas` included); any
 * registered name works. With `shards` (and no top-level `uri`), the pool is a ShardedPool of that
 * backend's pools: inject it as `ShardedPool<PostgresPool>`.
 */
export type PoolModuleOptions = (
  | { [K in keyof BackendPoolTypes]: BackendPoolTypes[K]['options'] & { backend: K } }[keyof BackendPoolTypes]
  | {
      [K in keyof BackendPoolTypes]: ShardedPoolOptions<BackendPoolTypes[K]['options']> & { backend: K };
    }[keyof BackendPoolTypes]
  | BackendPoolOptions
) &
  PoolModuleLifecycleOptions;

/** What a forRootAsync() factory returns: the options without `name` (it is fixed by the call). */
export type PoolModuleFactoryOptions = PoolModuleOptions & { name?: never };
