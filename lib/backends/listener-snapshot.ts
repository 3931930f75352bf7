/**
 * The event listeners a pooled client had when the pool finished setting it up, and their restoration on
 * release. A borrower's listeners must not outlive its lease: a Redis 'message' listener or a pg
 * 'notification' listener would hear the next borrower's traffic, an 'error' listener its failures, and
 * they would pile up lease after lease. Shared by the backends whose clients are EventEmitters.
 */
import type { EventEmitter } from 'node:events';

/** Listeners by event name, as `rawListeners()` gives them (`once` wrappers included). */
export type ListenerSnapshot = ReadonlyMap<string | symbol, readonly Listener[]>;

type Listener = (...args: unknown[]) => unknown;

/** What restoreListeners() returns when it took nothing off. */
export const NO_EVENTS: readonly (string | symbol)[] = Object.freeze([]);

/** Every listener on `emitter` now: the pool's own and the driver's. */
export function snapshotListeners(emitter: EventEmitter): ListenerSnapshot {
  const snapshot = new Map<string | symbol, readonly Listener[]>();
  for (const event of emitter.eventNames()) snapshot.set(event, rawListeners(emitter, event));
  return snapshot;
}

/**
 * Takes off every listener added since `snapshot` and returns the events they were on (empty, without
 * allocating a list, in the common case: one count per event when nothing changed). A listener of the
 * snapshot that was removed can't be put back in its place: that throws, and the pool destroys the client.
 */
export function restoreListeners(
  emitter: EventEmitter,
  snapshot: ListenerSnapshot,
): readonly (string | symbol)[] {
  if (!listenersChanged(emitter, snapshot)) return NO_EVENTS;
  const cleaned: (string | symbol)[] = [];
  for (const event of emitter.eventNames()) {
    const own = snapshot.get(event) ?? [];
    for (const listener of rawListeners(emitter, event)) {
      if (own.includes(listener)) continue;
      emitter.removeListener(event, listener);
      if (!cleaned.includes(event)) cleaned.push(event);
    }
  }
  if (listenersChanged(emitter, snapshot)) {
    throw new Error("the borrower removed the pool's own event listeners; the connection is discarded");
  }
  return cleaned;
}

/** `rawListeners()`, typed as what EventEmitter stores (its own typing says `Function`). */
function rawListeners(emitter: EventEmitter, event: string | symbol): Listener[] {
  return emitter.rawListeners(event) as Listener[];
}

function listenersChanged(emitter: EventEmitter, snapshot: ListenerSnapshot): boolean {
  const events = emitter.eventNames();
  if (events.length !== snapshot.size) return true;
  for (const event of events) {
    if (emitter.listenerCount(event) !== snapshot.get(event)?.length) return true;
  }
  return false;
}
