/**
 * One global module instance per forRoot()/forRootAsync() call (Nest keys dynamic modules by reference),
 * each providing and exporting one pool under its string token. Like @nestjs/typeorm's TypeOrmCoreModule.
 */
import { Global, Module, type DynamicModule, type Provider } from '@nestjs/common';
import { PoolConfigError } from '../core/index.js';
import type { PoolModuleAsyncOptions, PoolModuleOptions, PoolOptionsFactory } from './interfaces/index.js';
import { DEFAULT_POOL_NAME } from './pool.constants.js';
import { PoolManager } from './pool-manager.js';
import { PoolManagerModule } from './pool-manager.module.js';
import { getPoolOptionsToken, getPoolToken } from './pool.utils.js';

@Global()
@Module({})
export class PoolCoreModule {
  static forRoot(options: PoolModuleOptions): DynamicModule {
    const name = readName(options?.name);
    const poolProvider: Provider = {
      provide: getPoolToken(name),
      inject: [PoolManager],
      useFactory: (manager: PoolManager) => manager.openPool(name, options),
    };
    return {
      module: PoolCoreModule,
      imports: [PoolManagerModule],
      providers: [poolProvider],
      exports: [poolProvider],
    };
  }

  static forRootAsync(options: PoolModuleAsyncOptions): DynamicModule {
    const name = readName(options?.name);
    const sources = [options.useFactory, options.useClass, options.useExisting].filter(
      (s) => s !== undefined,
    );
    if (sources.length !== 1) {
      throw new PoolConfigError(
        name,
        'forRootAsync',
        `needs exactly one of useFactory, useClass or useExisting (got ${sources.length})`,
      );
    }
    const optionsToken = getPoolOptionsToken(name);
    const poolProvider: Provider = {
      provide: getPoolToken(name),
      inject: [PoolManager, optionsToken],
      useFactory: async (manager: PoolManager, factoryOptions: PoolModuleOptions) => {
        // Lifecycle options may be given on forRootAsync() itself or returned by the factory.
        const resolved = await manager.failBootstrapOnError(
          () =>
            ({ ...pickLifecycle(options), ...checkFactoryResult(name, factoryOptions) }) as PoolModuleOptions,
        );
        return manager.openPool(name, resolved);
      },
    };
    return {
      module: PoolCoreModule,
      imports: [PoolManagerModule, ...(options.imports ?? [])],
      providers: [
        ...createOptionsProviders(name, optionsToken, options),
        poolProvider,
        ...(options.extraProviders ?? []),
      ],
      exports: [poolProvider],
    };
  }
}

/**
 * The provider of one forRootAsync() call's options. The user's factory runs under the manager's eye: if it
 * throws (DATABASE_URL not set), bootstrap fails and Nest runs no shutdown hook, so the pools other
 * forRoot() calls already opened are closed here.
 */
function createOptionsProviders(name: string, token: string, options: PoolModuleAsyncOptions): Provider[] {
  const guarded =
    <A extends unknown[]>(produce: (...args: A) => unknown) =>
    (manager: PoolManager, ...args: A): Promise<unknown> =>
      manager.failBootstrapOnError(() => produce(...args));
  if (options.useFactory !== undefined) {
    // Its parameters are whatever `inject` lists: typed `never[]` so any factory fits.
    const useFactory = options.useFactory as (...args: unknown[]) => unknown;
    return [
      {
        provide: token,
        useFactory: guarded((...args: unknown[]) => useFactory(...args)),
        inject: [PoolManager, ...(options.inject ?? [])],
      },
    ];
  }
  const factoryClass = (options.useClass ?? options.useExisting)!;
  const providers: Provider[] = [
    {
      provide: token,
      useFactory: guarded((factory: PoolOptionsFactory) => factory.createPoolOptions(name)),
      inject: [PoolManager, factoryClass],
    },
  ];
  if (options.useClass !== undefined)
    providers.push({ provide: options.useClass, useClass: options.useClass });
  return providers;
}

function pickLifecycle(options: PoolModuleAsyncOptions): Partial<PoolModuleOptions> {
  const picked: Record<string, unknown> = {};
  if (options.retryAttempts !== undefined) picked['retryAttempts'] = options.retryAttempts;
  if (options.retryDelayMs !== undefined) picked['retryDelayMs'] = options.retryDelayMs;
  if (options.shutdown !== undefined) picked['shutdown'] = options.shutdown;
  if (options.logger !== undefined) picked['logger'] = options.logger;
  return picked;
}

function checkFactoryResult(name: string, value: unknown): object {
  if (typeof value !== 'object' || value === null) {
    throw new PoolConfigError(name, 'useFactory', 'must return the pool options (an object)');
  }
  if (
    'name' in value &&
    (value as { name?: unknown }).name !== undefined &&
    (value as { name?: unknown }).name !== name
  ) {
    throw new PoolConfigError(
      name,
      'name',
      'is set by forRootAsync({ name }); the factory must not return a different one',
    );
  }
  return value;
}

function readName(name: unknown): string {
  if (name === undefined) return DEFAULT_POOL_NAME;
  if (typeof name !== 'string' || name.trim() === '') {
    throw new PoolConfigError(DEFAULT_POOL_NAME, 'name', 'must be a non-empty string');
  }
  return name;
}
