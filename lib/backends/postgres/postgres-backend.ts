/**
 * The `postgres` backend: the engine over one `pg.Client` per pooled connection (not pg.Pool). The driver
 * is imported when the first pool starts, so `pg` stays an optional peer dependency.
 */
import type { Client } from 'pg';
import { PoolConfigError, PoolError } from '../../core/index.js';
import type { BackendDefinition } from '../backend-definition.js';
import { loadDriver, moduleExport } from '../load-driver.js';
import {
  closeClient,
  connectionStats,
  isClientBroken,
  isConnectionError,
  openClient,
  pingClient,
  resetClient,
  type PgDriver,
} from './postgres-connection.js';
import {
  describePostgresTarget,
  POSTGRES_OPTION_KEYS,
  POSTGRES_URI_SCHEMES,
  readPipelineDepth,
  validatePostgresOptions,
} from './postgres-options.js';
import { PostgresPool } from './postgres-pool.js';

export const postgresBackend: BackendDefinition<Client, PgDriver> = {
  driverPackage: 'pg',
  uriSchemes: POSTGRES_URI_SCHEMES,
  optionKeys: POSTGRES_OPTION_KEYS,
  validateOptions: validatePostgresOptions,
  describeTarget: describePostgresTarget,

  async loadDriver(context): Promise<PgDriver> {
    const namespace = await loadDriver({
      poolName: context.poolName,
      backend: context.backend,
      packageName: 'pg',
      importer: () => import('pg'),
    });
    const ClientClass = moduleExport(namespace, 'Client');
    if (typeof ClientClass !== 'function') {
      throw new PoolError(
        context.poolName,
        'the installed "pg" package has no Client class; pg 8 is required',
      );
    }
    if (readPipelineDepth(context.options) > 1 && !hasPipelineMode(ClientClass)) {
      throw new PoolConfigError(
        context.poolName,
        'pipelineDepth',
        'needs pg 8.23 or later (pipeline mode); the installed "pg" has none',
      );
    }
    return { Client: ClientClass as PgDriver['Client'] };
  },

  connect: (signal, context) => openClient(signal, context),
  close: (client) => closeClient(client),
  ping: (client) => pingClient(client),
  reset: (client) => resetClient(client),
  isBroken: (client, error) => isClientBroken(client, error),
  isConnectionError: (error) => isConnectionError(error),
  connectionStats: (client) => connectionStats(client),
  createPool: (init) => new PostgresPool(init),
};
Object.freeze(postgresBackend);

/**
 * Does this pg Client class have pipeline mode (pg 8.23+)? Read from its prototype, since the `pipeline`
 * switch itself is only set on an instance.
 */
export function hasPipelineMode(ClientClass: unknown): boolean {
  const prototype = (ClientClass as { prototype?: Record<string, unknown> } | null)?.prototype;
  return typeof prototype?.['_pulsePipelinedQueryQueue'] === 'function';
}
