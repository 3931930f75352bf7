/** Errors of routed pools: no member to route to, a shard that does not exist, a fan-out that failed. */
import { brandPoolError, PoolError, PoolUnavailableError, type PoolErrorOptions } from '../../core/index.js';

/**
 * No member of the group can serve (every replica down and `readFallback: 'fail'`). An instance of
 * PoolUnavailableError, so code that handles an unreachable pool handles this too. `members` says why each
 * is out (already redacted).
 */
export class PoolNoHealthyMemberError extends PoolUnavailableError {
  override name = 'PoolNoHealthyMemberError';
  readonly members: Readonly<Record<string, string>>;

  constructor(poolName: string, what: string, members: Record<string, string>, options?: PoolErrorOptions) {
    const reasons = Object.entries(members)
      .map(([member, reason]) => `${member}: ${reason}`)
      .join('; ');
    super(poolName, `no healthy ${what}${reasons === '' ? '' : ` (${reasons})`}`, options);
    this.members = Object.freeze({ ...members });
  }
}
brandPoolError(PoolNoHealthyMemberError, PoolUnavailableError);

/** `shard(name)` or the `shardKey` function named a shard the pool does not have. The key is never echoed. */
export class PoolUnknownShardError extends PoolError {
  override name = 'PoolUnknownShardError';
  /** What was asked for (a shard name, truncated); not the key. */
  readonly shard: string;
  readonly shards: readonly string[];

  constructor(poolName: string, shard: string, shards: readonly string[], via: string) {
    const shown = shard.slice(0, 60);
    super(
      poolName,
      `${via} "${shown}" is not a shard of this pool (shards: ${shards.map((s) => `"${s}"`).join(', ')})`,
    );
    this.shard = shown;
    this.shards = Object.freeze([...shards]);
  }
}
brandPoolError(PoolUnknownShardError, PoolError);

/**
 * `each()` ran on every shard and some failed. Every shard ran (a fan-out is not cut short, so the
 * outcome of each is known): `errors` has the failures, `results` the successes, both by shard name.
 */
export class PoolFanOutError<R = unknown> extends PoolError {
  override name = 'PoolFanOutError';
  readonly errors: Readonly<Record<string, Error>>;
  readonly results: Readonly<Record<string, R>>;

  constructor(poolName: string, errors: Record<string, Error>, results: Record<string, R>) {
    const failed = Object.keys(errors);
    const first = errors[failed[0]!];
    super(
      poolName,
      `${failed.length} of ${failed.length + Object.keys(results).length} shards failed ` +
        `(${failed.map((s) => `"${s}"`).join(', ')}): ${first?.message ?? ''}`,
      { cause: first },
    );
    this.errors = Object.freeze({ ...errors });
    this.results = Object.freeze({ ...results });
  }
}
brandPoolError(PoolFanOutError, PoolError);
