// Whether an image a tag points at is served whole: its manifest by the tag (at the expected digest), each child
// by digest, and every blob by GET, hashed against its digest (the client checks). For the restore tests.
import { expect } from 'vitest';
import type { RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { parseManifest } from '../../lambda/core/manifest.ts';

/** Asserts it, and returns how many blobs were read. */
export async function servedWhole(
  client: RegistryHttpClient,
  repo: string,
  tag: string,
  digest: string,
): Promise<number> {
  const root = await client.getManifest(repo, tag);
  expect(root?.digest, `${repo}:${tag}`).toBe(digest);
  let blobs = 0;
  const walk = async (m: NonNullable<typeof root>): Promise<void> => {
    const info = parseManifest(m.digest, m.mediaType, m.body);
    for (const child of info.children) {
      const c = await client.getManifest(repo, child.digest);
      expect(c?.digest, `child ${child.digest} of ${repo}:${tag}`).toBe(child.digest);
      await walk(c!);
    }
    for (const b of [...(info.config ? [info.config] : []), ...info.layers]) {
      expect(await client.headBlob(repo, b.digest)).toBe(true);
      await client.getBlob(repo, b.digest); // throws unless served and hashing to its digest
      blobs += 1;
    }
  };
  await walk(root!);
  return blobs;
}
