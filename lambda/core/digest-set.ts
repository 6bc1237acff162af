// A set of digests for the planner's registry-wide blob accounting (hundreds of thousands of entries). A `sha256:`
// digest is keyed by 32 bits made of 8 bytes of its hex (the first 4 and the last 4) in one flat typed array, so a
// probe reads numbers instead of chasing 71-character strings across the heap; equal short keys are compared in
// full, so two digests that share one stay two. A string of another shape goes to a plain Set.

const PREFIX = 'sha256:';
const LENGTH = PREFIX.length + 64;
const MIN_CAPACITY = 16;

/** A hex character's value, or -1. */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[97 + i] = 10 + i;
  HEX[65 + i] = 10 + i;
}

/** The 8 hex characters at `at` as an unsigned 32-bit number, or -1 if one is not hex. */
function word(s: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const c = s.charCodeAt(i);
    const h = c < 128 ? HEX[c]! : -1;
    if (h < 0) return -1;
    v = (v << 4) | h;
  }
  return v >>> 0;
}

/**
 * The short key of a digest of the usual length: its first and last 8 hex characters mixed into 32 bits, so that
 * digests which differ only at one end (test fixtures, counters padded with zeros) still spread. -1 for any other
 * string. Equal strings always get equal keys; that is all correctness needs, since equal keys are compared in full.
 */
export function shortKey(digest: string): number {
  if (digest.length !== LENGTH) return -1;
  const head = word(digest, PREFIX.length);
  const tail = word(digest, LENGTH - 8);
  if (head < 0 || tail < 0) return -1;
  let h = head ^ Math.imul(tail, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

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

  /** `expected`: how many digests it will likely hold, so that it need not grow on the way. */
  constructor(expected = 0) {
    let capacity = MIN_CAPACITY;
    while (capacity < expected * 2) capacity *= 2;
    this.capacity = capacity;
    this.slots = new Uint32Array(capacity * 2);
  }

  get size(): number {
    return this.digests.length + this.others.size;
  }

  has(digest: string): boolean {
    const key = shortKey(digest);
    if (key < 0) return this.others.has(digest);
    return this.slotOf(digest, key) >= 0;
  }

  /** Adds the digest; true if it was not there yet (one probe for what `has` then `add` would do in two). */
  add(digest: string): boolean {
    const key = shortKey(digest);
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
