/**
 * Tells a ReplicaSet or a ShardedPool by a brand under a global symbol, not `instanceof`: an app that loads
 * both builds of this package (ESM and CommonJS) has two copies of each class, and the health, metrics and
 * admin code of one must still recognise the other's.
 */
const ROUTING_KIND = Symbol.for('nestjs-pool.routing-kind');

export type RoutingKind = 'replica-set' | 'sharded-pool';

/** Marks a class's instances as `kind` (on its prototype). */
export function brandRoutingKind(routingClass: { prototype: object }, kind: RoutingKind): void {
  Object.defineProperty(routingClass.prototype, ROUTING_KIND, { value: kind });
}

export function isRoutingKind(value: unknown, kind: RoutingKind): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { [ROUTING_KIND]?: unknown })[ROUTING_KIND] === kind
  );
}
