/**
 * The delay before the next connection attempt after `failures` consecutive failures: exponential,
 * capped, with jitter taken off so pools that failed together don't retry together.
 */
import type { ResolvedCreateRetry } from './pool-options.js';

export function createBackoffDelay(
  retry: ResolvedCreateRetry,
  failures: number,
  random: () => number = Math.random,
): number {
  if (failures <= 0) return 0;
  const exponential = retry.initialDelayMs * retry.factor ** (failures - 1);
  const capped = Math.min(retry.maxDelayMs, exponential);
  return capped * (1 - retry.jitter * random());
}
