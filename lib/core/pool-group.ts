/**
 * PoolGroup: several pools that can serve the same work (the replicas of one database, say), and which of
 * them to use next. It knows nothing of backends: a member is anything with `metrics()` reporting its state,
 * circuit and load (an engine Pool or a BackendPool), plus an optional `check` that proves it works.
 *
 * A member is in the rotation while it lends (state `ready` or `starting`), its circuit breaker is closed and
 * nobody marked it down. It leaves when its circuit opens (noticed at the next pick, or told through
 * `markDown()` by whoever sees the failure first) and comes back when a check passes: down members are
 * re-checked every `recheckIntervalMs` (an unref'd timer that only runs while one is down), and `check()`
 * can be called at any time (on a circuit closing, say). A paused, draining or closed member is skipped
 * without being marked down: that is its lifecycle, not its health.
 *
 * What to do when no member can serve (fall back to something else, or fail) is the caller's decision:
 * `pick()` then returns undefined.
 */
import {
  createBalanceStrategy,
  DEFAULT_BALANCE_STRATEGY,
  type BalanceCandidate,
  type BalanceStrategy,
  type BalanceStrategyName,
} from './balance-strategy.js';
import { PoolConfigError } from './pool-errors.js';
import { MAX_TIMER_MS } from './pool-options.js';
import { toError } from './pool-events.js';
import type { PoolCircuitState, PoolState } from './pool-metrics.js';

/** The part of PoolMetrics a group reads (so an engine Pool or a BackendPool is a member as it is). */
export interface PoolGroupLoad {
  readonly state: PoolState;
  readonly circuit: PoolCircuitState;
  readonly active: number;
  readonly waiting: number;
}

export interface PoolGroupPool {
  metrics(): PoolGroupLoad;
}

export interface PoolGroupMemberOptions<P> {
  /** Unique within the group; names the member in events, status and errors. */
  readonly name: string;
  readonly pool: P;
  /** For `balance: 'weighted'`: a positive whole number. Default 1. */
  readonly weight?: number;
}

export interface PoolGroupOptions<P extends PoolGroupPool> {
  /** The group's name, for errors. */
  readonly name: string;
  readonly members: readonly PoolGroupMemberOptions<P>[];
  /** Default `least-active`. */
  readonly balance?: BalanceStrategyName;
  /**
   * Proves a member works (e.g. a bounded health check): resolves when healthy, rejects with why not. It
   * must bound its own duration. Omitted: a member is healthy when it lends with a closed circuit.
   */
  readonly check?: (pool: P, member: string) => Promise<unknown>;
  /** How often down members are re-checked. Default 1000. */
  readonly recheckIntervalMs?: number;
  /** How often every member is checked (catching a silent failure before a caller does). 0: never (default). */
  readonly checkIntervalMs?: number;
  /** A uniform number in [0, 1) for `balance: 'random'`; default Math.random. */
  readonly random?: () => number;
}

/** A member's place in the rotation, as `members()` reports it. */
export interface PoolGroupMemberStatus {
  readonly name: string;
  readonly weight: number;
  /** Not marked down (its last check passed or it never failed). */
  readonly healthy: boolean;
  /** Would a pick consider it now: healthy, lending, circuit closed. */
  readonly inRotation: boolean;
  /** Why it is down (already redacted by whoever reported it). */
  readonly error?: string;
  /** Epoch ms it went down. */
  readonly downSince?: number;
}

export interface PoolGroupPick<P> {
  readonly name: string;
  readonly pool: P;
}

export interface PoolGroupEvents {
  /** A member left the rotation. */
  down: [member: string, error: Error];
  /** A member came back, after `downForMs`. */
  up: [member: string, downForMs: number];
}

export type PoolGroupEventName = keyof PoolGroupEvents;
export type PoolGroupListener<K extends PoolGroupEventName> = (...args: PoolGroupEvents[K]) => void;

export const DEFAULT_RECHECK_INTERVAL_MS = 1_000;
export const MAX_MEMBER_WEIGHT = 1_000_000;

interface Member<P> {
  readonly name: string;
  readonly pool: P;
  readonly index: number;
  readonly weight: number;
  down: { error: Error; since: number } | undefined;
  /** Bumped by every markDown(): a check that started before the last one can't vouch for the member. */
  downs: number;
  /** The check in flight, and the `downs` it started at. */
  checking: { promise: Promise<boolean>; downs: number } | undefined;
}

export class PoolGroup<P extends PoolGroupPool> {
  readonly name: string;
  readonly balance: BalanceStrategyName;
  readonly #members: readonly Member<P>[];
  readonly #byName: ReadonlyMap<string, Member<P>>;
  readonly #strategy: BalanceStrategy;
  readonly #check: ((pool: P, member: string) => Promise<unknown>) | undefined;
  readonly #recheckIntervalMs: number;
  readonly #checkIntervalMs: number;
  readonly #listeners: { [K in PoolGroupEventName]: Set<PoolGroupListener<K>> } = {
    down: new Set(),
    up: new Set(),
  };
  #recheckTimer: ReturnType<typeof setTimeout> | undefined;
  #checkTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(options: PoolGroupOptions<P>) {
    this.name = options.name;
    const fail = (field: string, reason: string): never => {
      throw new PoolConfigError(options.name, field, reason);
    };
    this.balance = options.balance ?? DEFAULT_BALANCE_STRATEGY;
    if (!['least-active', 'round-robin', 'random', 'weighted'].includes(this.balance)) {
      fail('balance', `must be 'least-active', 'round-robin', 'random' or 'weighted'`);
    }
    if (!Array.isArray(options.members)) fail('members', 'must be an array');
    const byName = new Map<string, Member<P>>();
    this.#members = options.members.map((member, index) => {
      const weight = member.weight ?? 1;
      if (!Number.isInteger(weight) || weight < 1 || weight > MAX_MEMBER_WEIGHT) {
        fail(`members[${index}].weight`, `must be a whole number from 1 to ${MAX_MEMBER_WEIGHT}`);
      }
      if (typeof member.name !== 'string' || member.name === '') {
        fail(`members[${index}].name`, 'must be a non-empty string');
      }
      if (byName.has(member.name)) fail(`members[${index}].name`, `"${member.name}" is used twice`);
      const entry: Member<P> = {
        name: member.name,
        pool: member.pool,
        index,
        weight,
        down: undefined,
        downs: 0,
        checking: undefined,
      };
      byName.set(member.name, entry);
      return entry;
    });
    this.#byName = byName;
    this.#check = options.check;
    this.#recheckIntervalMs = readInterval(options, 'recheckIntervalMs', DEFAULT_RECHECK_INTERVAL_MS, fail);
    this.#checkIntervalMs = readInterval(options, 'checkIntervalMs', 0, fail);
    if (this.#recheckIntervalMs === 0) fail('recheckIntervalMs', 'must be greater than 0');
    this.#strategy = createBalanceStrategy(this.balance, {
      memberCount: this.#members.length,
      random: options.random,
    });
  }

  /** Member names, in order. */
  get names(): string[] {
    return this.#members.map((member) => member.name);
  }

  get size(): number {
    return this.#members.length;
  }

  /** The member's pool; throws for an unknown name. */
  pool(name: string): P {
    return this.#member(name).pool;
  }

  /**
   * The member to use next, by the balance strategy among those in the rotation, skipping `exclude` (a
   * member that just failed this caller, say). undefined when none can serve.
   */
  pick(exclude?: string): PoolGroupPick<P> | undefined {
    const candidates: BalanceCandidate[] = [];
    for (const member of this.#members) {
      if (member.down !== undefined || member.name === exclude) continue;
      const load = this.#lendingLoad(member);
      if (load !== undefined) candidates.push({ index: member.index, weight: member.weight, load });
    }
    if (candidates.length === 0) return undefined;
    const chosen = this.#members[this.#strategy.pick(candidates).index]!;
    return { name: chosen.name, pool: chosen.pool };
  }

  /** Takes a member out of the rotation until a check passes. Idempotent (keeps the first `since`). */
  markDown(name: string, error: unknown): void {
    const member = this.#member(name);
    const cause = toError(error);
    member.downs++;
    if (member.down !== undefined) {
      member.down = { error: cause, since: member.down.since };
      return;
    }
    member.down = { error: cause, since: Date.now() };
    this.#emit('down', member.name, cause);
    this.#scheduleRecheck();
  }

  /** Puts a member back in the rotation (whoever calls this vouches for it). */
  markUp(name: string): void {
    const member = this.#member(name);
    const down = member.down;
    if (down === undefined) return;
    member.down = undefined;
    this.#emit('up', member.name, Date.now() - down.since);
  }

  /**
   * Checks one member now (or all, without a name) and updates the rotation: a pass brings a down member
   * back, a failure takes it out. Concurrent calls for the same member share one check. Resolves with
   * whether it (or every member) is healthy; never rejects.
   */
  async check(name?: string): Promise<boolean> {
    if (name === undefined) {
      const results = await Promise.all(this.#members.map((member) => this.#runCheck(member)));
      return results.every(Boolean);
    }
    return this.#runCheck(this.#member(name));
  }

  /** Each member's health and whether a pick would consider it now. */
  members(): PoolGroupMemberStatus[] {
    return this.#members.map((member) => this.status(member.name));
  }

  status(name: string): PoolGroupMemberStatus {
    const member = this.#member(name);
    const down = member.down;
    const base = {
      name: member.name,
      weight: member.weight,
      healthy: down === undefined,
      inRotation: down === undefined && this.#lendingLoad(member, false) !== undefined,
    };
    return down === undefined ? base : { ...base, error: down.error.message, downSince: down.since };
  }

  /** Starts the periodic check of every member (`checkIntervalMs`; nothing when it is 0). Idempotent. */
  watch(): void {
    if (this.#closed || this.#checkIntervalMs === 0 || this.#checkTimer !== undefined) return;
    this.#checkTimer = setInterval(() => void this.check(), this.#checkIntervalMs);
    this.#checkTimer.unref();
  }

  /** Stops every timer for good (the members themselves are the owner's to close). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#recheckTimer);
    clearInterval(this.#checkTimer);
    this.#recheckTimer = undefined;
    this.#checkTimer = undefined;
  }

  on<K extends PoolGroupEventName>(event: K, listener: PoolGroupListener<K>): this {
    this.#listeners[event].add(listener);
    return this;
  }

  off<K extends PoolGroupEventName>(event: K, listener: PoolGroupListener<K>): this {
    this.#listeners[event].delete(listener);
    return this;
  }

  // ---------------------------------------------------------------------------------------------------

  #member(name: string): Member<P> {
    const member = this.#byName.get(name);
    if (member === undefined) {
      throw new PoolConfigError(
        this.name,
        'member',
        `no member named "${name}" (members: ${this.names.join(', ')})`,
      );
    }
    return member;
  }

  /**
   * The member's load when it lends with a closed circuit, else undefined. A circuit that is not closed
   * takes the member out (when `react`): its recovery needs a check, which is what down members get.
   */
  #lendingLoad(member: Member<P>, react = true): number | undefined {
    const m = member.pool.metrics();
    if (m.state !== 'ready' && m.state !== 'starting') return undefined;
    if (m.circuit !== 'closed') {
      if (react) this.markDown(member.name, new Error(`circuit breaker is ${m.circuit}`));
      return undefined;
    }
    return m.active + m.waiting;
  }

  #runCheck(member: Member<P>): Promise<boolean> {
    // A paused, draining or closed member is out by its lifecycle: checking it would only time out.
    const state = member.pool.metrics().state;
    if (state !== 'ready' && state !== 'starting') return Promise.resolve(member.down === undefined);
    // Shared with a check in flight, unless the member was marked down since it started: a new one then.
    const inFlight = member.checking;
    if (inFlight !== undefined && inFlight.downs === member.downs) return inFlight.promise;
    const downs = member.downs;
    const promise = this.#probe(member, downs).then((healthy) => {
      if (member.checking?.promise === promise) member.checking = undefined;
      return healthy;
    });
    member.checking = { promise, downs };
    return promise;
  }

  async #probe(member: Member<P>, downs: number): Promise<boolean> {
    let failure: unknown;
    try {
      if (this.#check !== undefined) await this.#check(member.pool, member.name);
      const m = member.pool.metrics();
      if (m.circuit !== 'closed') failure = new Error(`circuit breaker is ${m.circuit}`);
    } catch (error) {
      failure = error;
    }
    if (this.#closed) return failure === undefined;
    if (failure !== undefined) {
      this.markDown(member.name, failure);
      return false;
    }
    // Passed, but a failure was reported meanwhile: it proves nothing after that (a newer check will).
    if (member.downs !== downs) return member.down === undefined;
    this.markUp(member.name);
    return true;
  }

  #scheduleRecheck(): void {
    if (this.#closed || this.#recheckTimer !== undefined) return;
    this.#recheckTimer = setTimeout(() => {
      const down = this.#members.filter((member) => member.down !== undefined);
      void Promise.all(down.map((member) => this.#runCheck(member))).then(() => {
        this.#recheckTimer = undefined;
        if (this.#members.some((member) => member.down !== undefined)) this.#scheduleRecheck();
      });
    }, this.#recheckIntervalMs);
    this.#recheckTimer.unref();
  }

  #emit<K extends PoolGroupEventName>(event: K, ...args: PoolGroupEvents[K]): void {
    for (const listener of this.#listeners[event]) {
      try {
        listener(...args);
      } catch {
        // A listener's failure must not break the pick or check that reported the change.
      }
    }
  }
}

function readInterval(
  options: object,
  field: 'recheckIntervalMs' | 'checkIntervalMs',
  fallback: number,
  fail: (field: string, reason: string) => never,
): number {
  const value = (options as Record<string, unknown>)[field];
  if (value === undefined) return fallback;
  // A Node timer fires a delay above MAX_TIMER_MS after 1 ms: an over-long interval would become a busy loop.
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_TIMER_MS) {
    fail(
      field,
      `must be a number of milliseconds from 0 to ${MAX_TIMER_MS}, the longest a Node timer can wait`,
    );
  }
  return value as number;
}
