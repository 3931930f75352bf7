/**
 * How a PoolGroup chooses among its healthy members. A strategy sees only the candidates of one pick (the
 * members that can serve right now, in member order) and keeps whatever state it needs across picks, so a
 * member leaving and rejoining the rotation does not reset the others' share.
 */

export type BalanceStrategyName = 'least-active' | 'round-robin' | 'random' | 'weighted';

export const BALANCE_STRATEGIES: readonly BalanceStrategyName[] = Object.freeze([
  'least-active',
  'round-robin',
  'random',
  'weighted',
]);

export const DEFAULT_BALANCE_STRATEGY: BalanceStrategyName = 'least-active';

/** One member a pick may choose. */
export interface BalanceCandidate {
  /** The member's position in the group (stable for the group's life). */
  readonly index: number;
  /** Positive; only `weighted` reads it. */
  readonly weight: number;
  /** Connections in use plus callers waiting: only `least-active` reads it. */
  readonly load: number;
}

export interface BalanceStrategy {
  readonly name: BalanceStrategyName;
  /** Chooses one of `candidates` (never empty, ordered by index). */
  pick(candidates: readonly BalanceCandidate[]): BalanceCandidate;
}

export interface BalanceStrategySettings {
  /** How many members the group has (the candidates' indexes are below it). */
  readonly memberCount: number;
  /** A uniform number in [0, 1); Math.random by default (tests inject their own). */
  readonly random?: () => number;
}

export function createBalanceStrategy(
  name: BalanceStrategyName,
  settings: BalanceStrategySettings,
): BalanceStrategy {
  switch (name) {
    case 'round-robin':
      return new RoundRobin();
    case 'least-active':
      return new LeastActive();
    case 'random':
      return new RandomChoice(settings.random ?? Math.random);
    case 'weighted':
      return new SmoothWeighted(settings.memberCount);
  }
}

/**
 * Takes turns by member index: the first candidate at or after the cursor, wrapping around. Skipping the
 * members that are out keeps the turn order of the others (a plain counter modulo the candidate count
 * would hand one member two turns in a row whenever the candidate list changes).
 */
class RoundRobin implements BalanceStrategy {
  readonly name = 'round-robin' as const;
  #cursor = 0;

  pick(candidates: readonly BalanceCandidate[]): BalanceCandidate {
    const chosen = nextInTurn(candidates, this.#cursor);
    this.#cursor = chosen.index + 1;
    return chosen;
  }
}

/** Fewest connections in use plus callers waiting; ties take turns, so an idle group still spreads load. */
class LeastActive implements BalanceStrategy {
  readonly name = 'least-active' as const;
  #cursor = 0;

  pick(candidates: readonly BalanceCandidate[]): BalanceCandidate {
    let lowest = Infinity;
    for (const candidate of candidates) if (candidate.load < lowest) lowest = candidate.load;
    const tied = candidates.filter((candidate) => candidate.load === lowest);
    const chosen = nextInTurn(tied, this.#cursor);
    this.#cursor = chosen.index + 1;
    return chosen;
  }
}

/** Uniform among the candidates (weights are not used). */
class RandomChoice implements BalanceStrategy {
  readonly name = 'random' as const;

  constructor(private readonly random: () => number) {}

  pick(candidates: readonly BalanceCandidate[]): BalanceCandidate {
    const index = Math.min(candidates.length - 1, Math.floor(this.random() * candidates.length));
    return candidates[index]!;
  }
}

/**
 * Smooth weighted round-robin (nginx): each pick adds every candidate's weight to its running score, takes
 * the highest score and subtracts the total from it. Over any window of sum(weights) picks each member gets
 * exactly its share, interleaved (weights 5,1,1 give a a b a c a a, not a a a a a b c).
 */
class SmoothWeighted implements BalanceStrategy {
  readonly name = 'weighted' as const;
  readonly #scores: number[];

  constructor(memberCount: number) {
    this.#scores = new Array<number>(memberCount).fill(0);
  }

  pick(candidates: readonly BalanceCandidate[]): BalanceCandidate {
    let total = 0;
    let best: BalanceCandidate | undefined;
    for (const candidate of candidates) {
      const score = (this.#scores[candidate.index] ?? 0) + candidate.weight;
      this.#scores[candidate.index] = score;
      total += candidate.weight;
      if (best === undefined || score > this.#scores[best.index]!) best = candidate;
    }
    this.#scores[best!.index]! -= total;
    return best!;
  }
}

function nextInTurn(candidates: readonly BalanceCandidate[], cursor: number): BalanceCandidate {
  for (const candidate of candidates) if (candidate.index >= cursor) return candidate;
  return candidates[0]!;
}
