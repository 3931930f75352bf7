import { Global, Module } from '@nestjs/common';
import { PoolManager } from './pool-manager.js';

/**
 * Provides the one PoolManager of an application. A static (not dynamic) global module, so however many
 * PoolModule.forRoot() calls an app makes, Nest instantiates it once. Being global, its shutdown hooks run
 * after those of the modules that use the pools.
 */
@Global()
@Module({ providers: [PoolManager], exports: [PoolManager] })
export class PoolManagerModule {}
