/**
 * PoolAdminModule: an opt-in admin API and dashboard for the app's pools. Nothing is served unless the app
 * imports it, and it refuses to start without a token or a guard.
 *
 * ```ts
 * PoolAdminModule.forRoot({ token: process.env.POOL_ADMIN_TOKEN })   // GET /admin/pools, /admin/dashboard
 * ```
 */
import { Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { PoolManagerModule } from '../nest/pool-manager.module.js';
import { POOL_ADMIN_OPTIONS } from './pool-admin.constants.js';
import { createPoolAdminController } from './pool-admin.controller.js';
import { createPoolAdminPageController } from './pool-admin-page.controller.js';
import {
  resolvePoolAdminAuth,
  resolvePoolAdminRoutes,
  type PoolAdminModuleAsyncOptions,
  type PoolAdminModuleOptions,
  type PoolAdminRouteOptions,
} from './pool-admin-options.js';
import { PoolAdminConfigError } from './pool-admin-config-error.js';

@Module({})
export class PoolAdminModule {
  /** Validates at once: a missing token and guard, or a bad path, throws PoolAdminConfigError here. */
  static forRoot(options: PoolAdminModuleOptions): DynamicModule {
    if (typeof options !== 'object' || options === null) {
      throw new PoolAdminConfigError('options', 'must be an object with a `token` and/or a `guard`');
    }
    const auth = resolvePoolAdminAuth(options);
    return PoolAdminModule.build(options, { provide: POOL_ADMIN_OPTIONS, useValue: auth });
  }

  /** The token/guard come from a factory (validated when it resolves, failing bootstrap); paths are static. */
  static forRootAsync(options: PoolAdminModuleAsyncOptions): DynamicModule {
    if (typeof options?.useFactory !== 'function') {
      throw new PoolAdminConfigError('useFactory', 'must be a function returning `{ token?, guard? }`');
    }
    const { useFactory } = options;
    return PoolAdminModule.build(options, {
      provide: POOL_ADMIN_OPTIONS,
      useFactory: async (...args: never[]) => resolvePoolAdminAuth(await useFactory(...args)),
      inject: options.inject ?? [],
    });
  }

  private static build(options: PoolAdminRouteOptions, authProvider: Provider): DynamicModule {
    const { path, dashboardPath } = resolvePoolAdminRoutes(options);
    const controllers: Type<unknown>[] = [createPoolAdminController(path)];
    if (dashboardPath !== false) controllers.push(createPoolAdminPageController(dashboardPath, path));
    return {
      module: PoolAdminModule,
      // PoolManagerModule is global and static: importing it again is a no-op when PoolModule is there,
      // and lets the admin start (listing no pools) when it is not.
      imports: [PoolManagerModule, ...(options.imports ?? [])],
      controllers,
      providers: [authProvider],
    };
  }
}
