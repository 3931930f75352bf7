/**
 * PoolAdminModule: an opt-in admin API and dashboard for the app's pools. Nothing is served unless the app
 * imports it, and it refuses to start without a token or a guard.
 *
 * ```ts
 * PoolAdminModule.forRoot({ token: process.env.POOL_ADMIN_TOKEN })   // GET /admin/pools, /admin/dashboard
 * ```
 */
import { Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { runBootstrapStep } from '../nest/bootstrap-step.js';
import { POOL_MANAGER } from '../nest/pool.constants.js';
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

  /**
   * The token/guard come from a factory (validated when it resolves, failing bootstrap); paths are static.
   * The factory runs under the PoolManager's eye: if it throws, the pools already open are closed.
   */
  static forRootAsync(options: PoolAdminModuleAsyncOptions): DynamicModule {
    if (typeof options?.useFactory !== 'function') {
      throw new PoolAdminConfigError('useFactory', 'must be a function returning `{ token?, guard? }`');
    }
    const { useFactory } = options;
    return PoolAdminModule.build(options, {
      provide: POOL_ADMIN_OPTIONS,
      useFactory: (manager: unknown, ...args: never[]) =>
        runBootstrapStep(manager, async () => resolvePoolAdminAuth(await useFactory(...args))),
      // Optional: without PoolModule the admin still starts (and lists no pools).
      inject: [{ token: POOL_MANAGER, optional: true }, ...(options.inject ?? [])],
    });
  }

  private static build(options: PoolAdminRouteOptions, authProvider: Provider): DynamicModule {
    const { path, dashboardPath } = resolvePoolAdminRoutes(options);
    const controllers: Type<unknown>[] = [createPoolAdminController(path)];
    if (dashboardPath !== false) controllers.push(createPoolAdminPageController(dashboardPath, path));
    return {
      module: PoolAdminModule,
      // No PoolManagerModule of its own: the manager comes by its string token from PoolModule's (global),
      // which may be the other build's. Without PoolModule, the admin starts and lists no pools.
      imports: [...(options.imports ?? [])],
      controllers,
      providers: [authProvider],
    };
  }
}
