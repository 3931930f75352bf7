/**
 * The `mongodb` backend: one MongoClient per pool, whose own connection pool is sized from the engine's
 * options; the engine's "connections" are lease slots over the client's Db (see mongodb-client.ts). The
 * driver is imported when the first pool starts, so `mongodb` stays an optional peer dependency.
 */
import type { Db } from 'mongodb';
import { PoolError } from '../../core/index.js';
import type { BackendDefinition } from '../backend-definition.js';
import { loadDriver, moduleExport } from '../load-driver.js';
import { holderOf, isUnreachableError, type MongoDriver } from './mongodb-client.js';
import {
  MONGODB_OPTION_KEYS,
  MONGODB_URI_SCHEMES,
  mongoSecrets,
  validateMongoOptions,
} from './mongodb-options.js';
import { MongoPool } from './mongodb-pool.js';

export const mongodbBackend: BackendDefinition<Db, MongoDriver> = {
  driverPackage: 'mongodb',
  uriSchemes: MONGODB_URI_SCHEMES,
  optionKeys: MONGODB_OPTION_KEYS,
  // A slot holds no socket: the driver checks its own connections, and an unreachable server shows up as an
  // operation error (isBroken below) or a failed create. Pinging on every borrow would only add a round trip.
  poolDefaults: Object.freeze({ validateOnBorrow: false }),
  validateOptions: validateMongoOptions,
  secrets: mongoSecrets,

  async loadDriver(context): Promise<MongoDriver> {
    const namespace = await loadDriver({
      poolName: context.poolName,
      backend: context.backend,
      packageName: 'mongodb',
      importer: () => import('mongodb'),
    });
    const MongoClientClass = moduleExport(namespace, 'MongoClient');
    if (typeof MongoClientClass !== 'function') {
      throw new PoolError(
        context.poolName,
        'the installed "mongodb" package has no MongoClient class; mongodb 6 or 7 is required',
      );
    }
    return { MongoClient: MongoClientClass as MongoDriver['MongoClient'] };
  },

  connect: (signal, context) => holderOf(context).openSlot(signal),
  // Nothing per slot: the client (and its sockets) is closed by pool.close().
  close: () => Promise.resolve(),
  ping: (db, signal, context) => holderOf(context).ping(db, signal),
  isBroken: (_db, error) => isUnreachableError(error),
  createPool: (init) => new MongoPool(init),
};
Object.freeze(mongodbBackend);
