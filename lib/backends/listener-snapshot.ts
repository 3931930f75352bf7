/**
 * Keeps a pooled client's event listeners as the pool set them up, lease after lease. A borrower's listeners
 * must not outlive its lease: a Redis 'message' listener or a pg 'notification' listener would hear the next
 * borrower's traffic, an 'error' listener its failures, and they would pile up lease after lease. Shared by
 * the backends whose clients are EventEmitters.
 *
 * The guard watches through the emitter's own 'newListener' and 'removeListener' events, so a release where
 * nobody touched the listeners (nearly all of them) costs two field reads, and a listener of the pool's that
 * a borrower removed is noticed even if it added another in its place.
 */
import type { EventEmitter } from 'node:events';

type Listener = (...args: unknown[]) => unknown;
type EventName = string | symbol;

/** What restore() returns when no listener was added during the lease. */
export const NO_EVENTS: readonly EventName[] = Object.freeze([]);

export class ListenerGuard {
  readonly #emitter: EventEmitter;
  /** Every listener once the pool finished setting the client up (the pool's, the driver's), by event. */
  readonly #own: ReadonlyMap<EventName, readonly Listener[]>;
  /** Events a listener was added to since the last restore(); null when none. */
  #added: Set<EventName> | null = null;
  #ownRemoved = false;
  readonly #onNew = (event: EventName): void => {
    (this.#added ??= new Set()).add(event);
  };
  readonly #onRemove = (event: EventName, listener: Listener): void => {
    if (this.#isOwn(event, listener)) this.#ownRemoved = true;
  };

  /** Call once the client is set up: every listener it has now is the pool's own. */
  constructor(emitter: EventEmitter) {
    this.#emitter = emitter;
    emitter.on('newListener', this.#onNew);
    emitter.on('removeListener', this.#onRemove);
    const own = new Map<EventName, readonly Listener[]>();
    for (const event of emitter.eventNames()) own.set(event, rawListeners(emitter, event));
    this.#own = own;
    this.#added = null;
  }

  /**
   * On release: takes off every listener added since the last call and returns the events listeners were
   * added to (even if the borrower removed them itself). A listener of the pool's that was removed can't be
   * put back in its place: that throws, and the pool destroys the client.
   */
  restore(): readonly EventName[] {
    // The guard's own two hooks taken off (removing the last 'removeListener' listener emits nothing): then
    // nothing since can be vouched for.
    const emitter = this.#emitter;
    if (
      emitter.listenerCount('removeListener', this.#onRemove) === 0 ||
      emitter.listenerCount('newListener', this.#onNew) === 0
    ) {
      this.#ownRemoved = true;
    }
    if (this.#ownRemoved) {
      throw new Error("the borrower removed the pool's own event listeners; the connection is discarded");
    }
    const added = this.#added;
    if (added === null) return NO_EVENTS;
    this.#added = null;
    for (const event of added) {
      const own = this.#own.get(event) ?? [];
      for (const listener of rawListeners(emitter, event)) {
        if (!own.includes(listener)) emitter.removeListener(event, listener);
      }
    }
    return [...added];
  }

  #isOwn(event: EventName, listener: Listener): boolean {
    const own = this.#own?.get(event);
    if (own === undefined) return false;
    // A `once` listener is stored wrapped; removeListener reports the function that was registered.
    return own.some((l) => l === listener || (l as { listener?: Listener }).listener === listener);
  }
}

/** `rawListeners()`, typed as what EventEmitter stores (its own typing says `Function`). */
function rawListeners(emitter: EventEmitter, event: EventName): Listener[] {
  return emitter.rawListeners(event) as Listener[];
}
