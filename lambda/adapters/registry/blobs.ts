// The blob endpoints (/v2/<name>/blobs/<digest>): GET of image configs, verified against their digest, and
// HEAD to verify kept images after garbage-collect; both follow storage redirects.
import { RegistryError } from '../../core/errors.ts';
import { registryError, unexpected } from './errors.ts';
import type { Endpoints } from './http.ts';
import { algorithmOf, assertDigest, assertRepositoryName, digestOf } from './reference.ts';
import { MAX_BLOB_BYTES } from './transport.ts';

export async function getBlob(ep: Endpoints, repository: string, digest: string): Promise<Uint8Array> {
  assertRepositoryName(repository);
  assertDigest(digest);
  const ans = await ep.http.call('blobGet', 'GET', `/v2/${repository}/blobs/${digest}`, {
    scope: ep.scopeFor(repository, 'pull'),
    maxBytes: MAX_BLOB_BYTES,
    followRedirects: true,
  });
  if (ans.status === 404) {
    throw new RegistryError(`blob ${digest} is missing from ${repository} (404 on ${ans.url})`, {
      status: 404,
      code: registryError(ans)?.code ?? 'BLOB_UNKNOWN',
      url: ans.url,
    });
  }
  if (ans.status !== 200) throw unexpected('GET', ans);
  const actual = digestOf(ans.body, algorithmOf(digest));
  if (actual !== digest) {
    throw new RegistryError(
      `blob ${digest} from ${ans.url} hashes to ${actual}: the download was altered or cut`,
      {
        status: ans.status,
        code: 'DIGEST_MISMATCH',
        url: ans.url,
      },
    );
  }
  return ans.body;
}

/** Note 2.8's in-memory blob cache answers 200 until a restart (REGISTRY-FACTS §4). */
export async function headBlob(ep: Endpoints, repository: string, digest: string): Promise<boolean> {
  assertRepositoryName(repository);
  assertDigest(digest);
  const ans = await ep.http.call('blobHead', 'HEAD', `/v2/${repository}/blobs/${digest}`, {
    scope: ep.scopeFor(repository, 'pull'),
    followRedirects: true,
  });
  if (ans.status === 200) return true;
  if (ans.status === 404) return false;
  throw unexpected('HEAD', ans);
}
