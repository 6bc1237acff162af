// The manifest endpoints (/v2/<name>/manifests/<reference>): GET and HEAD with the full Accept list and their
// type and digest checks (REGISTRY-FACTS §2), DELETE and its answers (§3), and PUT (2.8's tag placeholders).
import { MANIFEST_ACCEPT, SCHEMA1_MEDIA_TYPES } from '../../core/contract.ts';
import { RegistryError } from '../../core/errors.ts';
import type { DeleteOutcome, FetchedManifest } from '../../core/ports.ts';
import { deleteRefusal, isRegistry404, registryError, unexpected } from './errors.ts';
import type { Endpoints } from './http.ts';
import {
  DIGEST_RE,
  algorithmOf,
  assertReference,
  assertRepositoryName,
  digestOf,
  isDigest,
} from './reference.ts';
import { MAX_ERROR_BYTES, MAX_MANIFEST_BYTES, type Answer } from './transport.ts';

const ACCEPT_MANIFESTS = MANIFEST_ACCEPT.join(', ');
const ACCEPTED_TYPES = new Set<string>(MANIFEST_ACCEPT);
const SCHEMA1_TYPES = new Set<string>(SCHEMA1_MEDIA_TYPES);

function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function checkManifestType(ans: Answer): string {
  const mediaType = mediaTypeOf(ans.headers['content-type']);
  if (!ACCEPTED_TYPES.has(mediaType)) {
    throw new RegistryError(
      `${ans.url} answered ${mediaType || 'no Content-Type'} instead of a manifest type: is a proxy in the way, ` +
        'or is this not a Docker registry?',
      { status: ans.status, code: 'UNEXPECTED_CONTENT_TYPE', url: ans.url },
    );
  }
  return mediaType;
}

function checkRequestedDigest(reference: string, digest: string, url: string): void {
  if (isDigest(reference) && reference !== digest) {
    throw new RegistryError(`${url} answered digest ${digest} for a request by digest ${reference}`, {
      code: 'DIGEST_MISMATCH',
      url,
    });
  }
}

export async function getManifest(
  ep: Endpoints,
  repository: string,
  reference: string,
): Promise<FetchedManifest | null> {
  assertRepositoryName(repository);
  assertReference(reference);
  const ans = await ep.http.call('manifestGet', 'GET', `/v2/${repository}/manifests/${reference}`, {
    scope: ep.scopeFor(repository, 'pull'),
    accept: ACCEPT_MANIFESTS,
    maxBytes: MAX_MANIFEST_BYTES,
  });
  if (isRegistry404(ans)) return null;
  if (ans.status !== 200) throw unexpected('GET', ans);
  const mediaType = checkManifestType(ans);
  const header = ans.headers['docker-content-digest'];
  const schema1 = SCHEMA1_TYPES.has(mediaType);
  let digest: string;
  if (header === undefined || header === '') {
    if (schema1) {
      throw new RegistryError(
        `${ans.url} served a schema1 manifest without Docker-Content-Digest; its digest cannot be computed from the ` +
          'signed body, so it cannot be handled safely',
        { status: ans.status, url: ans.url },
      );
    }
    digest = digestOf(ans.body);
  } else {
    digest = header.trim();
    if (!DIGEST_RE.test(digest)) {
      throw new RegistryError(`${ans.url} answered a malformed Docker-Content-Digest "${digest}"`, {
        url: ans.url,
      });
    }
    if (!schema1) {
      const actual = digestOf(ans.body, algorithmOf(digest));
      if (actual !== digest) {
        throw new RegistryError(
          `${ans.url} served a manifest whose bytes hash to ${actual} but Docker-Content-Digest says ${digest}: ` +
            'something between us and the registry changes responses (a proxy rewriting or truncating bodies?)',
          { status: ans.status, code: 'DIGEST_MISMATCH', url: ans.url },
        );
      }
    }
  }
  checkRequestedDigest(reference, digest, ans.url);
  // The answer's own buffer (read for this response alone): no copy.
  return { digest, mediaType, body: ans.body };
}

export async function headManifest(
  ep: Endpoints,
  repository: string,
  reference: string,
): Promise<string | null> {
  assertRepositoryName(repository);
  assertReference(reference);
  const ans = await ep.http.call('manifestHead', 'HEAD', `/v2/${repository}/manifests/${reference}`, {
    scope: ep.scopeFor(repository, 'pull'),
    accept: ACCEPT_MANIFESTS,
  });
  if (ans.status === 404) return null;
  if (ans.status !== 200) throw unexpected('HEAD', ans);
  checkManifestType(ans);
  const digest = ans.headers['docker-content-digest']?.trim();
  if (!digest || !DIGEST_RE.test(digest)) {
    throw new RegistryError(
      `HEAD ${ans.url} answered without a valid Docker-Content-Digest (${JSON.stringify(digest ?? null)}): ` +
        'a proxy in front of the registry may be stripping headers',
      { status: ans.status, url: ans.url },
    );
  }
  checkRequestedDigest(reference, digest, ans.url);
  return digest;
}

/** The bare DELETE, for the probe to judge its answer itself. */
export function sendDelete(ep: Endpoints, repository: string, reference: string): Promise<Answer> {
  return ep.http.call('delete', 'DELETE', `/v2/${repository}/manifests/${reference}`, {
    scope: ep.scopeFor(repository, 'delete'),
    retryPolicy: 'delete',
    maxBytes: MAX_ERROR_BYTES,
  });
}

export async function deleteManifest(
  ep: Endpoints,
  repository: string,
  reference: string,
): Promise<DeleteOutcome> {
  assertRepositoryName(repository);
  assertReference(reference);
  const ans = await sendDelete(ep, repository, reference);
  if (ans.status === 202 || ans.status === 200 || ans.status === 204) return 'deleted';
  if (isRegistry404(ans)) return 'not-found';
  if (ans.status === 405) {
    const problem = deleteRefusal(ans);
    throw new RegistryError(`DELETE ${ans.url} was refused: ${problem.message}`, {
      status: 405,
      code: problem.code,
      url: ans.url,
    });
  }
  const err = registryError(ans);
  if (
    ans.status === 400 &&
    !isDigest(reference) &&
    (err?.code === 'DIGEST_INVALID' || err?.code === 'UNSUPPORTED')
  ) {
    throw new RegistryError(
      `DELETE ${ans.url}: this registry cannot delete by tag (distribution before v3 answers ${err.code}); ` +
        'delete by digest instead',
      { status: 400, code: 'TAG_DELETE_UNSUPPORTED', url: ans.url },
    );
  }
  // A 5xx is not retried: 2.8 can fail after deleting, so the caller must re-check what happened.
  throw unexpected('DELETE', ans);
}

export async function putManifest(
  ep: Endpoints,
  repository: string,
  reference: string,
  mediaType: string,
  body: Uint8Array,
): Promise<string> {
  assertRepositoryName(repository);
  assertReference(reference);
  const ans = await ep.http.call('put', 'PUT', `/v2/${repository}/manifests/${reference}`, {
    scope: ep.scopeFor(repository, 'push'),
    contentType: mediaType,
    body,
    maxBytes: MAX_ERROR_BYTES,
  });
  if (ans.status === 405) {
    const unsupported = registryError(ans)?.code === 'UNSUPPORTED';
    throw new RegistryError(
      `PUT ${ans.url} was refused: ` +
        (unsupported
          ? 'the registry does not accept pushes (a pull-through cache?): point the janitor at the origin registry'
          : deleteRefusal(ans).message),
      { status: 405, code: unsupported ? 'UNSUPPORTED' : 'READ_ONLY', url: ans.url },
    );
  }
  if (ans.status !== 201 && ans.status !== 200 && ans.status !== 202) throw unexpected('PUT', ans);
  const ours = digestOf(body);
  const header = ans.headers['docker-content-digest']?.trim();
  if (header && header.startsWith('sha256:') && header !== ours) {
    throw new RegistryError(
      `PUT ${ans.url} stored digest ${header}, but the manifest sent hashes to ${ours}`,
      {
        status: ans.status,
        code: 'DIGEST_MISMATCH',
        url: ans.url,
      },
    );
  }
  return header || ours;
}
