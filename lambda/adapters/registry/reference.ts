// The reference grammar: repository names, tags and digests as distribution accepts them (reference/regexp.go),
// checked before anything goes into a URL path, and digests computed to verify what the registry served.
import { hash } from 'node:crypto';
import {
  isTagName,
  MAX_REPOSITORY_NAME,
  REPOSITORY_PATH_COMPONENT,
  TAG_PATTERN,
} from '../../core/contract.ts';
import { ConfigError, RegistryError } from '../../core/errors.ts';

// An optional domain, then path components.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const NAME_RE = new RegExp(`^(?:${DOMAIN}/)?${REPOSITORY_PATH_COMPONENT}(?:/${REPOSITORY_PATH_COMPONENT})*$`);
export const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HASHES: Record<string, string> = { sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };

/** A digest no manifest can have; DELETE of it tells whether deletes are enabled without touching anything. */
export const PROBE_DIGEST = 'sha256:' + '0'.repeat(64);

/** Throws ConfigError unless `name` is a repository name distribution can serve (it goes into URL paths raw). */
export function assertRepositoryName(name: string): void {
  if (name.length === 0 || name.length > MAX_REPOSITORY_NAME || !NAME_RE.test(name)) {
    throw new ConfigError(
      `"${name}" is not a valid repository name: use lowercase path components of [a-z0-9] joined by ".", "_", ` +
        `"__" or "-", separated by "/" (at most ${MAX_REPOSITORY_NAME} characters)`,
    );
  }
}

/** Throws ConfigError unless `reference` is a tag or a digest. */
export function assertReference(reference: string): void {
  if (!isTagName(reference) && !DIGEST_RE.test(reference)) {
    throw new ConfigError(`"${reference}" is neither a tag (${TAG_PATTERN}) nor a digest (algorithm:hex)`);
  }
}

/** Throws ConfigError unless `digest` is a digest (blobs are only ever addressed by one). */
export function assertDigest(digest: string): void {
  if (!DIGEST_RE.test(digest)) throw new ConfigError(`"${digest}" is not a digest (algorithm:hex)`);
}

/** Tags cannot contain ':', digests always do. */
export function isDigest(reference: string): boolean {
  return reference.includes(':');
}

/** sha256 (or the digest's own algorithm) of `data`, as `algo:hex`. */
export function digestOf(data: Uint8Array, algorithm = 'sha256'): string {
  const algo = HASHES[algorithm];
  if (!algo)
    throw new RegistryError(`cannot verify digests of algorithm "${algorithm}" (only sha256/384/512)`);
  // One-shot hashing: no Hash object per body (every manifest and config is hashed).
  return `${algorithm}:${hash(algo, data, 'hex')}`;
}

/** The algorithm part of a digest (`sha256` of `sha256:abc…`). */
export function algorithmOf(digest: string): string {
  const colon = digest.indexOf(':');
  return colon < 0 ? digest : digest.slice(0, colon);
}
