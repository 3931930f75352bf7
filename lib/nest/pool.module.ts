import { Module, type DynamicModule } from '@nestjs/common';
import type { PoolModuleAsyncOptions, PoolModuleOptions } from './interfaces/index.js';
import { PoolCoreModule } from './pool-core.module.js';

/**
 * The module users import. Each call registers one named pool (default name `'default'`), injectable with
 * `@InjectPool(name)` anywhere in the app; call it once per pool.
 *
 * ```ts
 * PoolModule.forRoot({ name: 'users', backend: 'postgres', uri: process.env.DATABASE_URL, pool: { max: 10 } })
 * ```
 */
@Module({})
export class PoolModule {
  static forRoot(options: PoolModuleOptions | PoolModuleOptions[]): DynamicModule {
    const list = Array.isArray(options) ? options : [options];
    return { module: PoolModule, imports: list.map((o) => PoolCoreModule.forRoot(o)) };
  }

  static forRootAsync(options: PoolModuleAsyncOptions): DynamicModule {
    return { module: PoolModule, imports: [PoolCoreModule.forRootAsync(options)] };
  }
}
