/**
 * Helpers for the redaction tests: render a value every way a user might see it (inspect, hidden fields,
 * JSON, the message/stack of an error and its cause chain) and assert no secret appears in any of it.
 */
import { expect } from '@jest/globals';
import { inspect } from 'node:util';

export function dump(value: unknown): string {
  const parts = [inspect(value, { depth: 6 }), inspect(value, { depth: 6, showHidden: true })];
  try {
    parts.push(JSON.stringify(value) ?? '');
  } catch {
    // circular (e.g. a driver client): inspect covered it
  }
  let error: unknown = value;
  for (
    let depth = 0;
    depth < 6 && typeof error === 'object' && error !== null && 'message' in error;
    depth++
  ) {
    const e = error as { message?: unknown; stack?: unknown; cause?: unknown };
    parts.push(String(e.message), String(e.stack));
    error = e.cause;
  }
  if (typeof value !== 'object' || value === null) parts.push(String(value));
  return parts.join('\n');
}

/** Fails if any output contains any of the secrets (pass the raw, URI-encoded and fragment forms). */
export function expectNoSecret(outputs: string[], secrets: readonly string[]): void {
  const all = outputs.join('\n');
  for (const secret of secrets) expect(all).not.toContain(secret);
}

/** Records every event a pool emits, rendered with dump(). */
export function recordEvents(
  pool: { on(event: string, listener: (...args: unknown[]) => void): unknown },
  outputs: string[],
): void {
  for (const event of ['acquire', 'release', 'create', 'destroy', 'error', 'leak', 'state']) {
    pool.on(event, (...args: unknown[]) => outputs.push(`${event}: ${args.map((a) => dump(a)).join(' ')}`));
  }
}
