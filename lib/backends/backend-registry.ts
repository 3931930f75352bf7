/**
 * The backends `createPool()` knows: the built-in ones and those added with `registerBackend()`.
 *
 * `createPool()` is synchronous: it validates every option at once (typed errors naming the pool and the
 * field) and returns the pool; the driver is imported by `start()` (or the first `acquire()`), because
 * loading is asynchronous and drivers are optional peer dependencies.
 */
import { PoolConfigError } from '../core/index.js';
import type { BackendDefinition, BackendPoolInit } from './backend-definition.js';
import {
  readBackendName,
  readPoolName,
  resolveBackendOptions,
  type BackendPoolOptions,
} from './backend-options.js';
import { BackendPool } from './backend-pool.js';
import { postgresBackend } from './postgres/postgres-backend.js';
import type { PostgresPool } from './postgres/postgres-pool.js';
import type { PostgresPoolOptions } from './postgres/postgres-options.js';
import { mongodbBackend } from './mongodb/mongodb-backend.js';
import type { MongoPool } from './mongodb/mongodb-pool.js';
import type { MongoPoolOptions } from './mongodb/mongodb-options.js';
import { redisBackend } from './redis/redis-backend.js';
import type { RedisPool } from './redis/redis-pool.js';
import type { RedisPoolOptions } from './redis/redis-options.js';

/**
 * Backend name → its options and pool type, so `createPool({ backend: 'postgres', ... })` is typed as a
 * PostgresPool. Backends added later (or by users, through declaration merging on 'nestjs-pool') extend it.
 */
export interface BackendPoolTypes {
  postgres: { options: PostgresPoolOptions; pool: PostgresPool };
  mongodb: { options: MongoPoolOptions; pool: MongoPool };
  redis: { options: RedisPoolOptions; pool: RedisPool };
}

type AnyDefinition = BackendDefinition<unknown, unknown>;

const BUILT_IN: ReadonlyMap<string, AnyDefinition> = new Map<string, AnyDefinition>([
  ['postgres', postgresBackend as AnyDefinition],
  ['mongodb', mongodbBackend as AnyDefinition],
  ['redis', redisBackend as AnyDefinition],
]);

const registered = new Map<string, AnyDefinition>();

/** Names `createPool()` accepts as `backend`, built-in first. */
export function knownBackends(): string[] {
  return [...BUILT_IN.keys(), ...registered.keys()];
}

/**
 * Adds a backend. Its definition says how to open, ping, reset and close one connection (and optionally
 * load a driver); the pool, option validation, redaction, query timeouts and health checks come with it.
 * Throws TypeError for a bad name or definition, or a name already taken.
 */
export function registerBackend<TConnection, TDriver = undefined>(
  name: string,
  definition: BackendDefinition<TConnection, TDriver>,
): void {
  if (typeof name !== 'string' || !/^[a-z][a-z0-9._-]*$/i.test(name)) {
    throw new TypeError(
      `registerBackend(): the name must be a word like "my-backend" (got ${JSON.stringify(name)})`,
    );
  }
  if (BUILT_IN.has(name) || registered.has(name)) {
    throw new TypeError(`registerBackend(): a backend named "${name}" already exists`);
  }
  if (typeof definition !== 'object' || definition === null) {
    throw new TypeError(`registerBackend("${name}"): the definition must be an object`);
  }
  for (const method of ['connect', 'close', 'ping'] as const) {
    if (typeof definition[method] !== 'function') {
      throw new TypeError(`registerBackend("${name}"): definition.${method} must be a function`);
    }
  }
  for (const method of [
    'loadDriver',
    'reset',
    'isBroken',
    'validateOptions',
    'secrets',
    'describeTarget',
    'createPool',
  ] as const) {
    if (definition[method] !== undefined && typeof definition[method] !== 'function') {
      throw new TypeError(`registerBackend("${name}"): definition.${method} must be a function`);
    }
  }
  registered.set(name, Object.freeze({ ...definition }) as AnyDefinition);
}

/** Removes a backend added with registerBackend(); built-in ones stay. Returns whether it existed. */
export function unregisterBackend(name: string): boolean {
  return registered.delete(name);
}

/**
 * Creates a pool (not yet started: call `start()`). Validates every option synchronously and throws
 * PoolConfigError naming the pool and the field: unknown backend (listing the known ones), malformed `uri`,
 * `pool.min > pool.max`, an unknown option, ...
 */
export function createPool<K extends keyof BackendPoolTypes>(
  options: BackendPoolTypes[K]['options'] & { backend: K },
): BackendPoolTypes[K]['pool'];
export function createPool<TConnection = unknown>(options: BackendPoolOptions): BackendPool<TConnection>;
export function createPool(options: BackendPoolOptions): BackendPool<unknown> {
  const name = readPoolName(options);
  const input = options as unknown as Record<string, unknown>;
  const backend = readBackendName(name, input, knownBackends());
  const definition = registered.get(backend) ?? BUILT_IN.get(backend);
  if (definition === undefined) {
    throw new PoolConfigError(
      name,
      'backend',
      `unknown backend "${backend.slice(0, 40)}"; known backends: ${knownBackends()
        .map((b) => `"${b}"`)
        .join(', ')} (add your own with registerBackend())`,
    );
  }
  const resolved = resolveBackendOptions(input, name, backend, {
    uriSchemes: definition.uriSchemes,
    optionKeys: definition.optionKeys,
    requiresTarget: definition.requiresTarget,
  });
  definition.validateOptions?.(resolved, (field, reason) => {
    throw new PoolConfigError(name, field, reason);
  });
  const init: BackendPoolInit<unknown, unknown> = { definition, options: resolved };
  return definition.createPool?.(init) ?? new BackendPool<unknown>(init);
}
