export type {
  PoolModuleOptions,
  PoolModuleFactoryOptions,
  PoolModuleLifecycleOptions,
  BackendOptionsOf,
} from './pool-module-options.interface.js';
export type { PoolModuleAsyncOptions, PoolOptionsFactory } from './pool-module-async-options.interface.js';
