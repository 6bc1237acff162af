// A set of digests for the planner's registry-wide blob accounting (hundreds of thousands of entries). A `sha256:`
// digest is keyed by a 32-bit hash of all of it (core/digest-hash.ts) in one flat typed array, so a probe reads
// numbers instead of chasing 71-character strings across the heap; equal keys are compared in full, so two
// digests that share one stay two. A string of another shape goes to a plain Set.
import { hashDigestText, randomHashSeed } from './digest-hash.ts';

const MIN_CAPACITY = 16;

export class DigestSet {
  private capacity: number;
  /**
   * Open addressing, two numbers a slot side by side (one cache line holds eight): the short key, and 1 + the
   * digest's index in `digests` (0: the slot is free). A probe reads the full digest only when the keys match.
   */
  private slots: Uint32Array;
  private readonly digests: string[] = [];
  /** Digests of another shape (another length, not hex where the key is taken). */
  private readonly others = new Set<string>();

  /**
   * `expected`: how many digests it will likely hold, so that it need not grow on the way. `seed`: the hash's
   * (tests fix it; the answers never depend on it).
   */
  constructor(
    expected = 0,
    private readonly seed = randomHashSeed(),
  ) {
    let capacity = MIN_CAPACITY;
    while (capacity < expected * 2) capacity *= 2;
    this.capacity = capacity;
    this.slots = new Uint32Array(capacity * 2);
  }

  get size(): number {
    return this.digests.length + this.others.size;
  }

  has(digest: string): boolean {
    const key = hashDigestText(digest, this.seed);
    if (key < 0) return this.others.has(digest);
    return this.slotOf(digest, key) >= 0;
  }

  /** Adds the digest; true if it was not there yet (one probe for what `has` then `add` would do in two). */
  add(digest: string): boolean {
    const key = hashDigestText(digest, this.seed);
    if (key < 0) {
      const before = this.others.size;
      this.others.add(digest);
      return this.others.size !== before;
    }
    const found = this.slotOf(digest, key);
    if (found >= 0) return false;
    this.digests.push(digest);
    this.slots[~found * 2] = key;
    this.slots[~found * 2 + 1] = this.digests.length;
    // At most half full, so that a probe for a missing digest ends after a step or two.
    if (this.digests.length * 2 > this.capacity) this.grow();
    return true;
  }

  /** The digest's slot, or the bitwise complement of the free slot where it would go. */
  private slotOf(digest: string, key: number): number {
    const mask = this.capacity - 1;
    const slots = this.slots;
    for (let slot = key & mask; ; slot = (slot + 1) & mask) {
      const ref = slots[slot * 2 + 1]!;
      if (ref === 0) return ~slot;
      if (slots[slot * 2] === key && this.digests[ref - 1] === digest) return slot;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.capacity *= 2;
    this.slots = new Uint32Array(this.capacity * 2);
    const mask = this.capacity - 1;
    for (let i = 0; i < old.length; i += 2) {
      const ref = old[i + 1]!;
      if (ref === 0) continue;
      let slot = old[i]! & mask;
      while (this.slots[slot * 2 + 1] !== 0) slot = (slot + 1) & mask;
      this.slots[slot * 2] = old[i]!;
      this.slots[slot * 2 + 1] = ref;
    }
  }
}
