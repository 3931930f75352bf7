/**
 * The log lines of one registered pool, whatever it routes over: a PoolLogger per physical pool (the
 * primary's lines as before; a replica's or a shard's prefixed with its own name, `users.replica[0]: ...`,
 * all in the registered pool's context), plus one line each time a replica leaves the read rotation and
 * one when it comes back (the rotation reports each transition once, however many reads failed).
 */
import type { PoolGroupListener } from '../core/pool-group.js';
import type { ReplicaSet, RoutedMemberPool } from '../backends/routing/replica-set.js';
import type { ManagedPool } from './managed-pool.js';
import type { PoolLogSink } from './pool-log-sink.js';
import { PoolLogger, type PoolLoggerOptions } from './pool-logger.js';
import { listPoolMembers, replicaSetOf } from './pool-members.js';

export class RoutedPoolLogger {
  readonly #loggers: PoolLogger[];
  readonly #rotations: {
    set: ReplicaSet<RoutedMemberPool>;
    down: PoolGroupListener<'down'>;
    up: PoolGroupListener<'up'>;
  }[] = [];
  #attached = false;

  constructor(pool: ManagedPool, sink: PoolLogSink, options: PoolLoggerOptions = {}) {
    const members = listPoolMembers(pool);
    this.#loggers = members.map((member) => {
      // The registered pool's own lines stay unprefixed, as for a plain pool.
      const own = member.pool === pool;
      return new PoolLogger(member.pool, own ? sink : prefixed(sink, `${member.name}: `), options);
    });
    for (const member of members) {
      const set = replicaSetOf(member.pool);
      if (set === undefined || set.group.size === 0) continue;
      this.#rotations.push({ set, ...rotationListeners(set, sink) });
    }
  }

  /** Subscribes to every member's events and every rotation (idempotent). */
  attach(): this {
    if (this.#attached) return this;
    this.#attached = true;
    for (const logger of this.#loggers) logger.attach();
    for (const { set, down, up } of this.#rotations) set.group.on('down', down).on('up', up);
    return this;
  }

  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    for (const logger of this.#loggers) logger.detach();
    for (const { set, down, up } of this.#rotations) set.group.off('down', down).off('up', up);
  }
}

/** Lines for a replica leaving and rejoining the read rotation, with what reads do meanwhile. */
function rotationListeners(
  set: ReplicaSet<RoutedMemberPool>,
  sink: PoolLogSink,
): { down: PoolGroupListener<'down'>; up: PoolGroupListener<'up'> } {
  const nameOf = (member: string): string => set.group.pool(member).name;
  const remaining = (): string => {
    const statuses = set.group.members();
    const inRotation = statuses.filter((status) => status.inRotation).length;
    const where =
      inRotation > 0
        ? ''
        : set.readFallback === 'primary'
          ? '; reads go to the primary'
          : '; reads fail (readFallback: fail)';
    return `${inRotation} of ${statuses.length} replica(s) in rotation${where}`;
  };
  return {
    down: (member, error) =>
      sink.write('warn', `${nameOf(member)} left the read rotation: ${error.message} (${remaining()})`),
    up: (member, downForMs) =>
      sink.write(
        'log',
        `${nameOf(member)} is back in the read rotation after ${formatSeconds(downForMs)} (${remaining()})`,
      ),
  };
}

function prefixed(sink: PoolLogSink, prefix: string): PoolLogSink {
  return { context: sink.context, write: (level, message) => sink.write(level, `${prefix}${message}`) };
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
