/**
 * The `redis` backend: the engine over one ioredis client per lease, plus the pool's shared client (see
 * RedisPool); with `cluster`, each of them is an ioredis Cluster client. The driver is imported when the
 * first pool starts, so `ioredis` stays an optional peer.
 */
import { PoolError } from '../../core/index.js';
import type { BackendDefinition } from '../backend-definition.js';
import { loadDriver, moduleExport } from '../load-driver.js';
import {
  clientStats,
  closeClient,
  isClientBroken,
  isConnectionError,
  openLeaseClient,
  pingClient,
  resetClient,
  type RedisClient,
  type RedisDriver,
} from './redis-connection.js';
import {
  describeRedisTarget,
  redisSecrets,
  REDIS_OPTION_KEYS,
  REDIS_URI_SCHEMES,
  splitConnectionBudget,
  validateRedisOptions,
} from './redis-options.js';
import { RedisPool } from './redis-pool.js';

export const redisBackend: BackendDefinition<RedisClient, RedisDriver> = {
  driverPackage: 'ioredis',
  uriSchemes: REDIS_URI_SCHEMES,
  optionKeys: REDIS_OPTION_KEYS,
  // A cluster needs neither `uri` nor `connection`: validateRedisOptions checks there is a target.
  requiresTarget: false,
  validateOptions: validateRedisOptions,
  secrets: redisSecrets,
  describeTarget: describeRedisTarget,

  async loadDriver(context): Promise<RedisDriver> {
    const namespace = await loadDriver({
      poolName: context.poolName,
      backend: context.backend,
      packageName: 'ioredis',
      importer: () => import('ioredis'),
    });
    const RedisClass = moduleExport(namespace, 'Redis');
    if (typeof RedisClass !== 'function') {
      throw new PoolError(
        context.poolName,
        'the installed "ioredis" package has no Redis class; ioredis 5 or 6 is required',
      );
    }
    const ClusterClass = moduleExport(namespace, 'Cluster');
    if (typeof ClusterClass !== 'function') {
      throw new PoolError(
        context.poolName,
        'the installed "ioredis" package has no Cluster class; ioredis 5 or 6 is required',
      );
    }
    return { Redis: RedisClass as RedisDriver['Redis'], Cluster: ClusterClass as RedisDriver['Cluster'] };
  },

  connect: (signal, context) => openLeaseClient(signal, context),
  close: (client) => closeClient(client),
  ping: (client) => pingClient(client),
  reset: (client) => resetClient(client),
  isBroken: (client, error) => isClientBroken(client, error),
  isConnectionError: (error) => isConnectionError(error),
  connectionStats: (client) => clientStats(client),
  createPool: (init) => new RedisPool(splitConnectionBudget(init)),
};
Object.freeze(redisBackend);
