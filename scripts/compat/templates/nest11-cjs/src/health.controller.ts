import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
// Resolved through package.json "typesVersions" (moduleResolution node10 ignores "exports").
import { PoolHealthIndicator } from 'nestjs-pool/health';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly pools: PoolHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.pools.isHealthy('users')]);
  }
}
