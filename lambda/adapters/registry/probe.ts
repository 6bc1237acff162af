// The pre-delete probe: DELETE of a digest no manifest can have (404 = deletes work, JSON 405 = disabled,
// text 405 = read-only; REGISTRY-FACTS §3), then DELETE of a random tag to learn whether tag deletes work.
import { randomBytes } from 'node:crypto';
import { AuthError, RegistryError } from '../../core/errors.ts';
import type { ProbeResult } from '../../core/ports.ts';
import { bodyPreview, deleteRefusal, isRegistry404, registryError } from './errors.ts';
import type { Endpoints } from './http.ts';
import { sendDelete } from './manifests.ts';
import { PROBE_DIGEST, assertRepositoryName } from './reference.ts';
import type { Answer } from './transport.ts';

export async function probe(ep: Endpoints, repository: string): Promise<ProbeResult> {
  assertRepositoryName(repository);
  let ans: Answer;
  try {
    ans = await sendDelete(ep, repository, PROBE_DIGEST);
  } catch (err) {
    if (err instanceof AuthError) return { deletesEnabled: false, problem: err.message, tagDelete: false };
    throw err;
  }
  if (ans.status === 405) {
    return { deletesEnabled: false, problem: deleteRefusal(ans).message, tagDelete: false };
  }
  // 404 for the zero digest is the healthy answer; a 202 would mean the registry accepted a delete of nothing.
  if (!isRegistry404(ans) && ans.status !== 202) {
    throw new RegistryError(
      `the delete probe (DELETE ${ans.url}) got an unexpected answer ${ans.status} ${bodyPreview(ans)}: expected 404 ` +
        'from a registry with deletes enabled, or 405 when they are disabled',
      { status: ans.status, code: registryError(ans)?.code, url: ans.url },
    );
  }
  // Can the registry untag? v3 answers 404 MANIFEST_UNKNOWN for a tag that does not exist; 2.8 parses the
  // reference as a digest and answers 400 DIGEST_INVALID.
  const tag = `registry-janitor-probe-${randomBytes(8).toString('hex')}`;
  const tagAns = await sendDelete(ep, repository, tag);
  const tagDelete = isRegistry404(tagAns) || tagAns.status === 202;
  return { deletesEnabled: true, tagDelete };
}
