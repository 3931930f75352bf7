/**
 * Which shard a key belongs to, by rendezvous (highest random weight) hashing: every shard scores the key
 * and the highest score wins. Adding a shard moves exactly the keys the new shard now wins (about 1/n of
 * them, all to it), removing one moves only its own keys, and the order the shards are listed in does not
 * matter. No ring or virtual nodes to tune; a lookup costs one small hash per shard, which for the handful
 * of shards a database deployment has is cheaper than a ring's binary search plus its memory.
 */

/** 32-bit FNV-1a over the UTF-16 code units of `text`. Stable across processes and versions. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** murmur3's finalizer: spreads every input bit over the output (FNV-1a alone clusters similar inputs). */
function mix32(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class RendezvousHash {
  readonly #names: readonly string[];
  readonly #seeds: readonly number[];

  constructor(names: readonly string[]) {
    this.#names = [...names];
    this.#seeds = names.map((name) => fnv1a32(name));
  }

  /** The shard `key` belongs to. Ties (1 in 2^32) go to the first name in sorted order, so listing order never matters. */
  pick(key: string): string {
    const keyHash = mix32(fnv1a32(key));
    let best = -1;
    let bestName = '';
    for (let i = 0; i < this.#names.length; i++) {
      const score = mix32(Math.imul(keyHash ^ this.#seeds[i]!, 0x9e3779b1) ^ keyHash);
      const name = this.#names[i]!;
      if (score > best || (score === best && name < bestName)) {
        best = score;
        bestName = name;
      }
    }
    return bestName;
  }
}
