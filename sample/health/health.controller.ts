import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { PoolHealthIndicator } from 'nestjs-pool/health';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly pools: PoolHealthIndicator,
  ) {}

  /** 200 when every pool is up; 503 naming the pool that is down. */
  @Get()
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.pools.isHealthy('users', { timeoutMs: 1_000 }),
      () => this.pools.isHealthy('cache', { timeoutMs: 1_000 }),
      () => this.pools.isHealthy('events', { timeoutMs: 1_000 }),
    ]);
  }
}
