/**
 * PoolMetricsModule in a Nest app over a real PostgreSQL pool: GET /metrics (or a chosen path, or none),
 * the registry's content type, and collectors removed when the app closes.
 */
import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Gauge, Registry } from 'prom-client';
import request from 'supertest';
import { getPoolToken, PoolModule, type PostgresPool } from '../../lib/index.js';
import {
  METRIC_NAMES,
  PoolMetricsModule,
  POOL_METRICS_REGISTRY,
  type PoolMetricsModuleOptions,
} from '../../lib/metrics/index.js';
import { pgUrl, uniqueName } from '../backends/postgres/pg-test-support.js';
import { parseExposition, valueOf } from './prometheus-text.js';

async function createApp(options?: PoolMetricsModuleOptions): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      PoolModule.forRoot({
        name: 'users',
        backend: 'postgres',
        uri: pgUrl({ application_name: uniqueName('metricsmod') }),
        pool: { max: 3 },
        logger: false,
      }),
      PoolMetricsModule.forRoot(options),
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('PoolMetricsModule', () => {
  it('serves GET /metrics from the global registry by default; the values follow the traffic', async () => {
    const app = await createApp();
    try {
      const first = await request(app.getHttpServer()).get('/metrics').expect(200);
      expect(first.headers['content-type']).toBe(Registry.PROMETHEUS_CONTENT_TYPE);
      const labels = { pool_name: 'users', backend: 'postgres' };
      const before = valueOf(
        parseExposition(first.text),
        'db_client_connection_wait_time_seconds_count',
        labels,
      );
      const pool = app.get<PostgresPool>(getPoolToken('users'));
      for (let i = 0; i < 3; i++) await pool.query('SELECT 1');
      const second = await request(app.getHttpServer()).get('/metrics').expect(200);
      const exposition = parseExposition(second.text);
      expect(valueOf(exposition, 'db_client_connection_wait_time_seconds_count', labels)).toBe(before + 3);
      expect(valueOf(exposition, 'db_client_connection_use_time_seconds_count', labels)).toBe(3);
      expect(valueOf(exposition, 'db_client_connection_max', labels)).toBe(3);
    } finally {
      await app.close();
    }
    // Closing the app removed the collectors: another app can register them again.
    const { register } = await import('prom-client');
    expect(register.getSingleMetric('db_client_connection_count')).toBeUndefined();
  });

  it('takes its own registry and path, and exports that registry', async () => {
    const registry = new Registry();
    const app = await createApp({ registry, path: 'internal/pool-metrics', prefix: 'svc_' });
    try {
      expect(app.get(POOL_METRICS_REGISTRY)).toBe(registry);
      await request(app.getHttpServer()).get('/metrics').expect(404);
      const response = await request(app.getHttpServer()).get('/internal/pool-metrics').expect(200);
      expect(
        valueOf(parseExposition(response.text), 'svc_db_client_connection_max', { pool_name: 'users' }),
      ).toBe(3);
    } finally {
      await app.close();
    }
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it('path: false serves nothing; the registry still has the collectors for the app to expose', async () => {
    const registry = new Registry();
    const app = await createApp({ registry, path: false });
    try {
      await request(app.getHttpServer()).get('/metrics').expect(404);
      const exposition = parseExposition(await registry.metrics());
      expect(valueOf(exposition, 'nestjs_pool_state', { pool_name: 'users', state: 'ready' })).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('a registration that fails (its metrics already registered) fails bootstrap and closes the pools', async () => {
    const registry = new Registry();
    new Gauge({
      name: METRIC_NAMES.connectionMax,
      help: 'registered by the app already',
      registers: [registry],
    });
    const lines: string[] = [];
    const logger = { log: (m: string) => lines.push(m), warn: () => undefined, error: () => undefined };
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'users',
          backend: 'postgres',
          uri: pgUrl({ application_name: uniqueName('metricsfail') }),
          logger,
        }),
        PoolMetricsModule.forRoot({ registry, path: false }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      await expect(app.init()).rejects.toThrow(/"db_client_connection_max" is already registered/);
      // Nest runs no shutdown hook after a failed bootstrap: the pool must not stay open.
      expect(lines).toEqual([expect.stringMatching(/^ready/), 'closed']);
    } finally {
      await app.close();
    }
  });
});
