import { Global, Module } from '@nestjs/common';
import { POOL_MANAGER } from './pool.constants.js';
import { PoolManager } from './pool-manager.js';

/**
 * Provides the one PoolManager of an application. A static (not dynamic) global module, so however many
 * PoolModule.forRoot() calls an app makes, Nest instantiates it once. Being global, its shutdown hooks run
 * after those of the modules that use the pools.
 */
@Global()
@Module({
  providers: [PoolManager, { provide: POOL_MANAGER, useExisting: PoolManager }],
  exports: [PoolManager, POOL_MANAGER],
})
export class PoolManagerModule {}
