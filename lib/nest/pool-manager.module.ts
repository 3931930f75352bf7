import { Global, Module } from '@nestjs/common';
import { POOL_MANAGER } from './pool.constants.js';
import { PoolManager } from './pool-manager.js';

/**
 * Provides the one PoolManager of an application. A static (not dynamic) global module, so however many
 * PoolModule.forRoot() calls an app makes, Nest instantiates it once. Being global, its shutdown hooks run
 * after those of non-global modules, but before those of a global module registered earlier: so the pools
 * are drained and closed in the last phase, `onApplicationShutdown`, once every module's
 * `beforeApplicationShutdown` (which may still use them) has run.
 */
@Global()
@Module({
  providers: [PoolManager, { provide: POOL_MANAGER, useExisting: PoolManager }],
  exports: [PoolManager, POOL_MANAGER],
})
export class PoolManagerModule {}
