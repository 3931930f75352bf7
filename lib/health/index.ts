/** nestjs-pool/health: the Terminus indicator. Only this entry imports @nestjs/terminus (an optional peer). */
export { PoolHealthIndicator } from './pool-health.indicator.js';
export type {
  PoolHealthCheckOptions,
  PoolHealthDetails,
  PoolMemberHealthDetails,
} from './pool-health.indicator.js';
export { PoolHealthModule } from './pool-health.module.js';
