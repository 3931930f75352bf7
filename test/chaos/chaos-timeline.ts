/**
 * The scripted fault timeline every backend goes through, in order. Each fault is followed by a heal
 * phase in which recovery is measured; the 10 s outage is the one whose connection attempts are checked
 * against the backoff schedule.
 */
import type { FaultProxy } from '../../lib/testing/fault-proxy.js';

export interface ChaosPhase {
  readonly name: string;
  /** What the proxy does, for the report. */
  readonly fault: string;
  readonly ms: number;
  /** Switches the proxy into this phase's mode. */
  apply(proxy: FaultProxy): Promise<void>;
  /** Recovery (first success, throughput) is measured from this phase's start. */
  readonly heal?: boolean;
  /** The long outage: connection attempts are counted against the backoff bound. */
  readonly outage?: boolean;
}

const HEAL_MS = 2500;

function heal(after: string, ms = HEAL_MS): ChaosPhase {
  return { name: `heal after ${after}`, fault: 'pass', ms, heal: true, apply: (proxy) => proxy.pass() };
}

export const CHAOS_TIMELINE: readonly ChaosPhase[] = [
  { name: 'baseline', fault: 'pass', ms: 2000, apply: (proxy) => proxy.pass() },
  {
    name: 'latency spikes',
    fault: 'latency 20 ms + jitter up to 180 ms per chunk, each direction',
    ms: 2000,
    apply: (proxy) => proxy.latency({ ms: 20, jitterMs: 180 }),
  },
  heal('latency'),
  {
    name: 'blackhole',
    fault: 'accept, never answer (traffic dropped)',
    ms: 2000,
    // Dropped rather than held: held bytes would reach the server at the heal and show it connections the
    // pool already gave up on, which is the proxy's doing, not the pool's.
    apply: (proxy) => proxy.blackhole({ discard: true }),
  },
  heal('blackhole'),
  { name: 'reset', fault: 'RST open and new connections', ms: 1500, apply: (proxy) => proxy.reset() },
  heal('reset'),
  { name: 'refuse', fault: 'stop listening (ECONNREFUSED)', ms: 1500, apply: (proxy) => proxy.refuse() },
  heal('refuse'),
  {
    name: '10 s outage',
    fault: 'RST every open connection, then refuse for 10 s',
    ms: 10_000,
    outage: true,
    apply: async (proxy) => {
      proxy.resetAll();
      await proxy.refuse();
    },
  },
  heal('outage', 3000),
];
