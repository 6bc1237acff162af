// The 32-bit hash by which the open-addressing digest tables (core/digest-set.ts, the cache's store in
// adapters/manifest-cache-store.ts) place a sha256 digest: all 256 bits mixed (MurmurHash3 over its eight 32-bit
// words), with a seed drawn per table. Digests that differ in only a few characters (counters, the bench's
// synthetic registry, whose digests spell out kind, repository and tag and are zeros after) spread as real ones
// do: keying on a few characters put them in one run of slots, and every insert walked the whole run. The seed
// keeps anyone who can push blobs (and so grind digests by trying contents) from choosing digests that pile up in
// one place of a table whose seed they never see.

const PREFIX = 'sha256:';
/** `sha256:` and 64 hex characters. */
export const SHA256_DIGEST_LENGTH = PREFIX.length + 64;

/** A seed for one table; the tables' answers never depend on it, only where entries sit. */
export const randomHashSeed = (): number => (Math.random() * 0x1_0000_0000) >>> 0;

/** A hex character's value, or -1. */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[97 + i] = 10 + i;
  HEX[65 + i] = 10 + i;
}

/** The 8 hex characters at `at` as an unsigned 32-bit number (big-endian, as the bytes read), or -1 if one is not hex. */
function hexWord(s: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const c = s.charCodeAt(i);
    const h = c < 128 ? HEX[c]! : -1;
    if (h < 0) return -1;
    v = (v << 4) | h;
  }
  return v >>> 0;
}

/** One MurmurHash3 (x86, 32-bit) block step. */
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3's finalizer for 32 bytes of input. */
function finish(h: number): number {
  h ^= 32;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The hash of a `sha256:` digest given as text (hex of either case: upper and lower get the same hash, and the
 * tables compare in full), or -1 for any other string.
 */
export function hashDigestText(digest: string, seed: number): number {
  if (digest.length !== SHA256_DIGEST_LENGTH || !digest.startsWith(PREFIX)) return -1;
  let h = seed | 0;
  for (let at = PREFIX.length; at < SHA256_DIGEST_LENGTH; at += 8) {
    const w = hexWord(digest, at);
    if (w < 0) return -1;
    h = mix(h, w);
  }
  return finish(h);
}

/** The same hash of a sha256 digest held as its 32 bytes at `offset`: equal to hashDigestText of its hex. */
export function hashDigestBytes(bytes: Uint8Array, offset: number, seed: number): number {
  let h = seed | 0;
  for (let at = offset; at < offset + 32; at += 4) {
    h = mix(h, ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0);
  }
  return finish(h);
}
