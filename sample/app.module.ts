import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { TerminusModule } from '@nestjs/terminus';
import { PoolModule } from 'nestjs-pool';
import { PoolAdminModule } from 'nestjs-pool/admin';
import { PoolHealthModule } from 'nestjs-pool/health';
import { PoolMetricsModule } from 'nestjs-pool/metrics';
import { EventsModule } from './events/events.module.js';
import { HealthController } from './health/health.controller.js';
import { UsersModule } from './users/users.module.js';

const env = (name: string, fallback: string): string => process.env[name] ?? fallback;

/** Read replicas, if any: `DATABASE_REPLICA_URLS=postgres://r1/db,postgres://r2/db`. */
const replicaUrls = (process.env['DATABASE_REPLICA_URLS'] ?? '')
  .split(',')
  .map((url) => url.trim())
  .filter((url) => url !== '');

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true }),
    // PostgreSQL, configured inline. Writes go to DATABASE_URL; `users.read` goes to a healthy replica
    // (none configured: to the primary, so the same code runs against one server).
    PoolModule.forRoot({
      name: 'users',
      backend: 'postgres',
      uri: env('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/test?application_name=nestjs-pool-sample'),
      queryTimeoutMs: 5_000,
      // Under load, up to 4 `users.query()` calls share a busy connection, pipelined (pg 8.23+); the service's
      // transaction still gets a connection to itself.
      pipelineDepth: 4,
      // A connection attempt into a black hole gives up after 2 s, so the pool recovers quickly after one.
      pool: { min: 1, max: 10, createTimeoutMs: 2_000 },
      ...(replicaUrls.length > 0 ? { replicas: replicaUrls, readFallback: 'primary' as const } : {}),
    }),
    // Redis, configured from ConfigService (e.g. REDIS_URL in the environment or a .env file).
    PoolModule.forRootAsync({
      name: 'cache',
      imports: [ConfigModule],
      inject: [ConfigService],
      useFactory: (config: ConfigService) => ({
        backend: 'redis',
        uri: config.get<string>('REDIS_URL') ?? 'redis://127.0.0.1:6379/0',
        queryTimeoutMs: 1_000,
      }),
    }),
    // MongoDB (or FerretDB), for an event log. `node scripts/services.mjs` starts FerretDB on a free port:
    // export the MONGODB_URI it prints before `nest start` (`npm run start:sample`).
    PoolModule.forRoot({
      name: 'events',
      backend: 'mongodb',
      uri: env('MONGODB_URI', 'mongodb://127.0.0.1:27017/nestjs_pool_sample'),
      pool: { max: 5 },
    }),
    TerminusModule,
    PoolHealthModule,
    // Prometheus metrics of every pool at GET /metrics (prom-client's default registry).
    PoolMetricsModule.forRoot(),
    // The admin API and dashboard (GET /admin/pools, /admin/dashboard) are opt-in and need a token (or a
    // guard): served only when POOL_ADMIN_TOKEN is set.
    ...(process.env['POOL_ADMIN_TOKEN']
      ? [PoolAdminModule.forRoot({ token: process.env['POOL_ADMIN_TOKEN'] })]
      : []),
    UsersModule,
    EventsModule,
  ],
  controllers: [HealthController],
})
export class AppModule {}
