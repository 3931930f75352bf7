/**
 * Sizing presets: their expansion under explicit options, their validation, and the `dynamic` preset
 * driving a real pool (short real sample windows; assertions on counts and states, generous time bounds).
 */
import { describe, expect, it } from '@jest/globals';
import type { DynamicSizer, DynamicSizerHost } from '../../lib/core/dynamic-sizer.js';
import {
  Pool,
  PoolConfigError,
  POOL_DEFAULTS,
  POOL_PRESETS,
  POOL_PRESET_NAMES,
  resolvePoolOptions,
  type Lease,
  type PoolOptions,
} from '../../lib/core/index.js';
import { delay, FakeFactory, waitFor, type FakeConnection } from '../support/fake-factory.js';

function configError(options: unknown, prefix?: string): PoolConfigError {
  try {
    if (prefix === undefined) new Pool(options as PoolOptions<FakeConnection>);
    else resolvePoolOptions(options, { fieldPrefix: prefix });
  } catch (error) {
    expect(error).toBeInstanceOf(PoolConfigError);
    return error as PoolConfigError;
  }
  throw new Error('expected a PoolConfigError');
}

function sizerOf(pool: Pool<FakeConnection>): DynamicSizer | null {
  return (pool as unknown as { sizer: DynamicSizer | null }).sizer;
}

/** Every target change the sizer reports to the pool, in order. */
function recordTargetChanges(pool: Pool<FakeConnection>): [target: number, previous: number][] {
  const changes: [number, number][] = [];
  const host = (sizerOf(pool) as unknown as { host: DynamicSizerHost }).host;
  const forward = host.targetChanged;
  host.targetChanged = (target, previous) => {
    changes.push([target, previous]);
    forward(target, previous);
  };
  return changes;
}

describe('Pool presets: expansion', () => {
  const factory = new FakeFactory();
  const validating = new FakeFactory({ withValidate: true });

  it('lists every preset, frozen', () => {
    expect(Object.keys(POOL_PRESETS).sort()).toEqual([...POOL_PRESET_NAMES].sort());
    expect(Object.isFrozen(POOL_PRESETS)).toBe(true);
    for (const name of POOL_PRESET_NAMES) expect(Object.isFrozen(POOL_PRESETS[name])).toBe(true);
  });

  it("'balanced' is the plain defaults, and the resolved preset when none is given", () => {
    const plain = new Pool({ factory }).options;
    const balanced = new Pool({ factory, preset: 'balanced' }).options;
    expect(balanced).toEqual(plain);
    expect(plain.preset).toBe('balanced');
    expect(plain.dynamicSizing).toBe(false);
  });

  it("'throughput' keeps max connections warm with a long bypass and more concurrent creates", () => {
    const options = new Pool({ factory: validating, preset: 'throughput' }).options;
    expect(options).toMatchObject({
      preset: 'throughput',
      min: POOL_DEFAULTS.max,
      max: POOL_DEFAULTS.max,
      order: 'lifo',
      validationBypassMs: 5_000,
      maxConcurrentCreates: 4,
      testOnReturn: false,
      dynamicSizing: false,
    });
    // min follows whatever max is.
    expect(new Pool({ factory, preset: 'throughput', max: 4 }).options).toMatchObject({ min: 4, max: 4 });
  });

  it("'latency' fails fast and keeps idle connections proven", () => {
    const options = new Pool({ factory: validating, preset: 'latency', max: 6 }).options;
    expect(options).toMatchObject({
      min: 6,
      max: 6,
      acquireTimeoutMs: 1_000,
      createTimeoutMs: 2_000,
      validateOnBorrow: true,
      validationBypassMs: 10_000,
      keepaliveMs: 5_000,
    });
  });

  it("'latency' without factory.validate drops the options that need it instead of failing", () => {
    const options = new Pool({ factory, preset: 'latency' }).options;
    expect(options.validateOnBorrow).toBe(false);
    expect(options.keepaliveMs).toBe(Infinity);
    expect(options.acquireTimeoutMs).toBe(1_000);
    // Asked for explicitly, it still fails as before.
    expect(configError({ factory, preset: 'latency', validateOnBorrow: true }).field).toBe(
      'validateOnBorrow',
    );
  });

  it("'dynamic' turns the sizer on with default windows and keeps min as given", () => {
    const options = new Pool({ factory, preset: 'dynamic', min: 2, max: 20 }).options;
    expect(options).toMatchObject({
      min: 2,
      max: 20,
      idleTimeoutMs: 10_000,
      order: 'lifo',
      dynamicSizing: POOL_DEFAULTS.dynamicSizing,
    });
  });

  it('explicit options always win over the preset', () => {
    const options = new Pool({
      factory: validating,
      preset: 'latency',
      min: 1,
      max: 8,
      acquireTimeoutMs: 7_000,
      order: 'fifo',
      validateOnBorrow: false,
      keepaliveMs: 0,
    }).options;
    expect(options).toMatchObject({
      min: 1,
      max: 8,
      acquireTimeoutMs: 7_000,
      order: 'fifo',
      validateOnBorrow: false,
      keepaliveMs: Infinity,
      createTimeoutMs: 2_000, // not overridden: still the preset's
    });
    expect(new Pool({ factory, preset: 'dynamic', dynamicSizing: false }).options.dynamicSizing).toBe(false);
    expect(
      new Pool({ factory, preset: 'dynamic', dynamicSizing: { shrinkAfterWindows: 9 } }).options
        .dynamicSizing,
    ).toEqual({ sampleIntervalMs: 1_000, shrinkAfterWindows: 9 });
  });

  it('an explicit undefined does not clear a preset value', () => {
    const options = new Pool({ factory, preset: 'throughput', min: undefined, order: undefined }).options;
    expect(options.min).toBe(POOL_DEFAULTS.max);
    expect(options.order).toBe('lifo');
  });

  it('dynamicSizing works without a preset', () => {
    const pool = new Pool({ factory, dynamicSizing: { sampleIntervalMs: 250 } });
    expect(pool.options.preset).toBe('balanced');
    expect(pool.options.dynamicSizing).toEqual({ sampleIntervalMs: 250, shrinkAfterWindows: 5 });
  });

  it('a preset min still has to fit under max', () => {
    const error = configError({ factory, preset: 'throughput', min: 12 });
    expect(error.field).toBe('min');
  });

  it.each([
    [{ preset: 'fast' }, 'preset', /must be one of 'balanced', 'throughput', 'latency', 'dynamic'/],
    [{ preset: 3 }, 'preset', /must be one of/],
    [{ dynamicSizing: 'yes' }, 'dynamicSizing', /must be true, false or an object/],
    [{ dynamicSizing: { sampleIntervalMs: 0 } }, 'dynamicSizing.sampleIntervalMs', /at least 1/],
    [{ dynamicSizing: { shrinkAfterWindows: 1.5 } }, 'dynamicSizing.shrinkAfterWindows', /whole number/],
    [{ dynamicSizing: { sampleInterval: 10 } }, 'dynamicSizing.sampleInterval', /did you mean/],
  ])('rejects %j as field %s', (extra, field, reason) => {
    const error = configError({ name: 'orders', factory, ...extra });
    expect(error.field).toBe(field);
    expect(error.poolName).toBe('orders');
    expect(error.message).toMatch(reason);
  });

  it('names the field under the backends’ prefix', () => {
    expect(configError({ factory, preset: 'turbo' }, 'pool.').field).toBe('pool.preset');
    expect(resolvePoolOptions({ factory, preset: 'throughput', max: 3 }, { fieldPrefix: 'pool.' }).min).toBe(
      3,
    );
  });

  it('reports targetSize in metrics() only for dynamic pools', async () => {
    const plain = new Pool({ factory });
    expect('targetSize' in plain.metrics()).toBe(false);
    const dynamic = new Pool({ factory, preset: 'dynamic', min: 1, startup: 'lazy' });
    expect(dynamic.metrics().targetSize).toBe(1);
    await plain.close();
    await dynamic.close();
  });
});

describe("Pool presets: 'dynamic' on a live pool", () => {
  const WINDOW_MS = 20;

  function dynamicPool(factory: FakeFactory): Pool<FakeConnection> {
    return new Pool<FakeConnection>({
      name: 'dynamic',
      factory,
      preset: 'dynamic',
      min: 1,
      max: 10,
      idleTimeoutMs: 30,
      startup: 'lazy',
      dynamicSizing: { sampleIntervalMs: WINDOW_MS, shrinkAfterWindows: 2 },
    });
  }

  /** `callers` loops, each holding a connection for `holdMs`, until `run.stop`. */
  function load(pool: Pool<FakeConnection>, callers: number, holdMs: number, run: { stop: boolean }) {
    return Promise.all(
      Array.from({ length: callers }, async () => {
        while (!run.stop) {
          const lease: Lease<FakeConnection> = await pool.acquire();
          await delay(holdMs);
          lease.release();
        }
      }),
    );
  }

  it('grows the target under sustained waiting, then shrinks it (and the pool) back to min', async () => {
    const factory = new FakeFactory({ createDelayMs: 2 });
    const pool = dynamicPool(factory);
    await pool.start();
    expect(pool.metrics().targetSize).toBe(1);
    const changes = recordTargetChanges(pool);

    const run = { stop: false };
    const working = load(pool, 6, 10, run);
    await waitFor(() => (pool.metrics().targetSize ?? 0) >= 6, 'target to reach the load', 5_000);
    run.stop = true;
    await working;
    const grown = pool.metrics().targetSize!;
    expect(grown).toBeLessThanOrEqual(10);

    await waitFor(
      () => pool.metrics().targetSize === 1 && pool.metrics().size === 1,
      'target and size back at min',
      10_000,
    );
    // The window running when the load stopped may still have grown it; after the last grow it came down
    // one step at a time, to min.
    const lastGrow = changes.map(([target, previous]) => target > previous).lastIndexOf(true);
    const shrinks = changes.slice(lastGrow + 1);
    expect(shrinks.length).toBeGreaterThanOrEqual(grown - 1);
    for (const [target, previous] of shrinks) expect(previous - target).toBe(1);
    expect(shrinks[shrinks.length - 1]![0]).toBe(1);
    expect(pool.metrics().destroyed.idle).toBeGreaterThanOrEqual(grown - 1);
    // Idle at min: the sizer stops ticking; the next acquire wakes it.
    await waitFor(() => !sizerOf(pool)!.ticking, 'sizer to go to sleep', 2_000);
    const lease = await pool.acquire();
    expect(sizerOf(pool)!.ticking).toBe(true);
    lease.release();
    await pool.close();
    expect(sizerOf(pool)!.ticking).toBe(false);
  });

  it('keeps the target connections open while load is steady, without oscillating', async () => {
    const factory = new FakeFactory();
    const pool = dynamicPool(factory);
    await pool.start();
    const targets = new Set<number>();
    const run = { stop: false };
    const working = load(pool, 4, 5, run);
    await waitFor(() => (pool.metrics().targetSize ?? 0) >= 4, 'target to reach the load', 5_000);
    const settledAt = pool.metrics().targetSize!;
    // 20 windows of the same load.
    const until = performance.now() + 20 * WINDOW_MS;
    while (performance.now() < until) {
      targets.add(pool.metrics().targetSize!);
      await delay(WINDOW_MS / 2);
    }
    run.stop = true;
    await working;
    // 4 callers never have more than 4 demand: the target reaches 4 and at most one wait during the
    // ramp-up (a connection still being created) can push it one above, which the band then takes back.
    expect(settledAt).toBeGreaterThanOrEqual(4);
    for (const target of targets) {
      expect(target).toBeGreaterThanOrEqual(4);
      expect(target).toBeLessThanOrEqual(5);
    }
    expect(pool.metrics().size).toBeGreaterThanOrEqual(4);
    await pool.close();
  });

  it('close() stops the sizer for good', async () => {
    const pool = dynamicPool(new FakeFactory());
    await pool.start();
    expect(sizerOf(pool)!.ticking).toBe(true);
    await pool.close();
    expect(sizerOf(pool)!.ticking).toBe(false);
    await expect(pool.acquire()).rejects.toThrow(/closed/);
    expect(sizerOf(pool)!.ticking).toBe(false);
  });

  it('a pool closed before start never starts the sizer', async () => {
    const pool = dynamicPool(new FakeFactory());
    await pool.close();
    expect(sizerOf(pool)!.ticking).toBe(false);
  });
});
