import type { ModuleMetadata, Provider, Type } from '@nestjs/common';
import type {
  PoolModuleFactoryOptions,
  PoolModuleLifecycleOptions,
} from './pool-module-options.interface.js';

/** A class that produces a pool's options (`useClass` / `useExisting`). */
export interface PoolOptionsFactory {
  createPoolOptions(poolName: string): Promise<PoolModuleFactoryOptions> | PoolModuleFactoryOptions;
}

export interface PoolModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'>, PoolModuleLifecycleOptions {
  /** The pool's name (its injection token); fixed here because the token must be known before the factory runs. */
  name?: string;
  useFactory?: (...args: never[]) => Promise<PoolModuleFactoryOptions> | PoolModuleFactoryOptions;
  inject?: (
    string | symbol | Type<unknown> | { token: string | symbol | Type<unknown>; optional: boolean }
  )[];
  useClass?: Type<PoolOptionsFactory>;
  useExisting?: Type<PoolOptionsFactory>;
  /** Providers the factory's module needs besides `imports`. */
  extraProviders?: Provider[];
}
