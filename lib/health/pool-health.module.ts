import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PoolHealthIndicator } from './pool-health.indicator.js';

/**
 * Provides PoolHealthIndicator. It imports TerminusModule itself because TerminusModule (which provides
 * HealthIndicatorService) is not global; the PoolManager comes from PoolModule's global PoolManagerModule,
 * by its string token.
 */
@Module({ imports: [TerminusModule], providers: [PoolHealthIndicator], exports: [PoolHealthIndicator] })
export class PoolHealthModule {}
