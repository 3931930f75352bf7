/**
 * The pool's events and a small emitter that can never hurt the code that emits.
 *
 * Node's EventEmitter throws when `'error'` is emitted with no listener, and a throwing listener unwinds
 * into the emitter. A pool emits from inside acquire/release and from timers, so neither is acceptable:
 * here an unheard `'error'` is dropped, and a listener's throw is reported as an `'error'` event (or, if
 * the `'error'` listener itself throws, swallowed).
 */
import type { PoolCircuitState, PoolState } from './pool-metrics.js';

/** Why a connection was destroyed; the keys of `metrics().destroyed`. */
export type DestroyReason = 'idle' | 'lifetime' | 'validation' | 'error' | 'maxUses' | 'close';

/** Where an `'error'` event came from. */
export type PoolErrorPhase = 'create' | 'destroy' | 'validate' | 'reset' | 'connection' | 'listener';

export interface PoolErrorContext {
  phase: PoolErrorPhase;
}

export interface PoolLeakInfo {
  poolName: string;
  /** How long the lease had been held when it was reported. */
  heldMs: number;
  /** Stack of the `acquire()` call that took the lease. */
  stack: string;
}

export interface PoolStateChange {
  state: PoolState;
  circuit: PoolCircuitState;
  previousState: PoolState;
  previousCircuit: PoolCircuitState;
}

/** Event name → listener arguments. */
export interface PoolEvents<T> {
  acquire: [connection: T];
  release: [connection: T];
  create: [connection: T];
  destroy: [connection: T, reason: DestroyReason];
  error: [error: Error, context: PoolErrorContext];
  leak: [info: PoolLeakInfo];
  state: [change: PoolStateChange];
}

export type PoolEventName = keyof PoolEvents<unknown>;
export type PoolEventListener<T, K extends PoolEventName> = (...args: PoolEvents<T>[K]) => void;

type AnyListener = (...args: unknown[]) => void;

export class PoolEventEmitter<T> {
  /** Listener arrays are replaced (never mutated) on subscribe/unsubscribe, so emit can iterate safely. */
  private listeners: { [K in PoolEventName]?: AnyListener[] } = {};
  /** Whether anyone listens to 'acquire' / 'release': read on every lease, so plain fields. */
  protected listeningAcquire = false;
  protected listeningRelease = false;

  on<K extends PoolEventName>(event: K, listener: PoolEventListener<T, K>): this {
    this.listeners[event] = [...(this.listeners[event] ?? []), listener as unknown as AnyListener];
    this.listenersChanged();
    return this;
  }

  addListener<K extends PoolEventName>(event: K, listener: PoolEventListener<T, K>): this {
    return this.on(event, listener);
  }

  once<K extends PoolEventName>(event: K, listener: PoolEventListener<T, K>): this {
    const wrapper = ((...args: PoolEvents<T>[K]) => {
      this.off(event, wrapper);
      listener(...args);
    }) as PoolEventListener<T, K>;
    (wrapper as { listener?: unknown }).listener = listener;
    return this.on(event, wrapper);
  }

  off<K extends PoolEventName>(event: K, listener: PoolEventListener<T, K>): this {
    const list = this.listeners[event];
    if (list === undefined) return this;
    const target: unknown = listener;
    const index = list.findIndex((l) => l === target || (l as { listener?: unknown }).listener === target);
    if (index === -1) return this;
    const next = list.filter((_, i) => i !== index);
    if (next.length === 0) delete this.listeners[event];
    else this.listeners[event] = next;
    this.listenersChanged();
    return this;
  }

  removeListener<K extends PoolEventName>(event: K, listener: PoolEventListener<T, K>): this {
    return this.off(event, listener);
  }

  removeAllListeners(event?: PoolEventName): this {
    if (event === undefined) this.listeners = {};
    else delete this.listeners[event];
    this.listenersChanged();
    return this;
  }

  /** Keeps the listening flags current; Pool also recomputes its hot-path flags from them. */
  protected listenersChanged(): void {
    this.listeningAcquire = this.listeners.acquire !== undefined;
    this.listeningRelease = this.listeners.release !== undefined;
  }

  /** Cheap check the pool makes before building an event's arguments on the hot path. */
  listening(event: PoolEventName): boolean {
    return this.listeners[event] !== undefined;
  }

  listenerCount(event: PoolEventName): number {
    return this.listeners[event]?.length ?? 0;
  }

  /** Calls each listener; never throws. Returns whether anyone listened. */
  emit<K extends PoolEventName>(event: K, ...args: PoolEvents<T>[K]): boolean {
    const list = this.listeners[event];
    if (list === undefined) return false;
    for (const listener of list) {
      try {
        (listener as unknown as (...a: PoolEvents<T>[K]) => void)(...args);
      } catch (error) {
        if (event !== 'error') {
          this.emit('error', toError(error), { phase: 'listener' });
        }
        // A throwing 'error' listener is swallowed: there is no one left to tell.
      }
    }
    return true;
  }
}

/**
 * Normalises a thrown value. Errors from another realm (vm contexts, Jest's sandbox) fail `instanceof
 * Error` but are still errors: keep them as they are, `code` and `cause` included.
 */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { message?: unknown }).message === 'string'
  ) {
    return value as Error;
  }
  return new Error(String(value));
}
