/**
 * The Nest app the chaos callers go through: PoolModule.forRoot() registering one pool, and a service
 * (one per backend, using @InjectPool) whose `call()` is one request's worth of work.
 */
import 'reflect-metadata';
import { Module, type INestApplicationContext, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getPoolToken, PoolModule, type PoolModuleOptions } from '../../lib/index.js';

/** The pool's name in the chaos apps. */
export const CHAOS_POOL = 'chaos';

/** What each backend's service offers the callers. */
export interface ChaosCaller {
  /** One request: resolves with nothing on success, rejects with whatever the pool or driver threw. */
  call(caller: number): Promise<void>;
}

@Module({})
class ChaosAppModule {}

export interface ChaosApp<TPool> {
  readonly app: INestApplicationContext;
  readonly pool: TPool;
  readonly service: ChaosCaller;
}

export async function startChaosApp<TPool>(
  options: PoolModuleOptions,
  service: Type<ChaosCaller>,
): Promise<ChaosApp<TPool>> {
  const app = await NestFactory.createApplicationContext(
    { module: ChaosAppModule, imports: [PoolModule.forRoot(options)], providers: [service] },
    { logger: false },
  );
  return { app, pool: app.get<TPool>(getPoolToken(CHAOS_POOL)), service: app.get(service) };
}
