/**
 * PoolMetricsModule: registers the pool collectors (registerPoolMetrics over the app's PoolManager) when
 * the app starts, removes them when it closes, and by default serves them at GET /metrics.
 */
import {
  Controller,
  Get,
  Header,
  Inject,
  Injectable,
  Module,
  Optional,
  type DynamicModule,
  type OnModuleDestroy,
  type OnModuleInit,
  type Provider,
  type Type,
} from '@nestjs/common';
import { register as globalRegistry, type Registry } from 'prom-client';
import { runBootstrapStep } from '../nest/bootstrap-step.js';
import { POOL_MANAGER } from '../nest/pool.constants.js';
import { NO_POOLS, type PoolRegistry } from '../nest/pool-registry.js';
import {
  registerPoolMetrics,
  type PoolMetricsOptions,
  type UnregisterPoolMetrics,
} from './register-pool-metrics.js';

export interface PoolMetricsModuleOptions extends PoolMetricsOptions {
  /**
   * The route that serves the registry in Prometheus' text format (default `'metrics'`, i.e. GET /metrics,
   * under any global prefix). `false` serves nothing: expose the registry yourself (e.g. with other metrics).
   */
  path?: string | false;
}

/** Injection token of the prom-client Registry the module registered the collectors in. */
export const POOL_METRICS_REGISTRY = 'nestjs-pool:metrics:registry';
const POOL_METRICS_OPTIONS = 'nestjs-pool:metrics:options';
export const DEFAULT_METRICS_PATH = 'metrics';

@Injectable()
export class PoolMetricsRegistration implements OnModuleInit, OnModuleDestroy {
  #unregister: UnregisterPoolMetrics | undefined;

  constructor(
    @Inject(POOL_METRICS_OPTIONS) private readonly options: PoolMetricsOptions,
    // By its string token (the manager may be the other build's); without PoolModule, no pools.
    @Optional() @Inject(POOL_MANAGER) private readonly manager: PoolRegistry = NO_POOLS,
  ) {}

  async onModuleInit(): Promise<void> {
    // It throws if the metrics are already in the registry: then the pools already open must be closed.
    this.#unregister ??= await runBootstrapStep(this.manager, () =>
      registerPoolMetrics(this.manager, this.options),
    );
  }

  onModuleDestroy(): void {
    this.#unregister?.();
    this.#unregister = undefined;
  }
}

@Module({})
export class PoolMetricsModule {
  static forRoot(options: PoolMetricsModuleOptions = {}): DynamicModule {
    const { path = DEFAULT_METRICS_PATH, ...metricsOptions } = options;
    const registry = metricsOptions.registry ?? globalRegistry;
    const providers: Provider[] = [
      { provide: POOL_METRICS_OPTIONS, useValue: { ...metricsOptions, registry } },
      { provide: POOL_METRICS_REGISTRY, useValue: registry },
      PoolMetricsRegistration,
    ];
    return {
      module: PoolMetricsModule,
      providers,
      exports: [POOL_METRICS_REGISTRY],
      controllers: path === false ? [] : [createMetricsController(path, registry)],
    };
  }
}

/** A controller at `path` answering the registry's exposition (its content type: text or OpenMetrics). */
function createMetricsController(path: string, registry: Registry): Type<unknown> {
  @Controller(path)
  class PoolMetricsController {
    @Get()
    @Header('Content-Type', registry.contentType)
    scrape(): Promise<string> {
      return registry.metrics();
    }
  }
  return PoolMetricsController;
}
