// Untagged history listed from S3 storage: a real registry's layout copied into a local S3 server (s3rver), then
// plan and apply through the CLI with --storage s3://bucket/prefix against that real registry. The listing is
// paginated and capped; a partial listing deletes no untagged manifest and says why; a malformed URL, a missing
// bucket, wrong credentials or a prefix holding no registry are refused before anything is deleted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { s3ClientFromEnv, s3History } from '../../lambda/adapters/history-s3.ts';
import { createRegistryClient } from '../../lambda/adapters/registry-client.ts';
import { EXIT } from '../../lambda/cli/main.ts';
import { REPOSITORIES_PATH, REVISIONS_PATH } from '../../lambda/core/history.ts';
import { runJob } from '../../lambda/core/job.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage, type PushedImage } from '../../lambda/demo/seed.ts';
import { startLocalS3, type LocalS3 } from '../support/local-s3.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { cli } from '../support/cli.ts';

const POLICY =
  'rules:\n  - repositories: ["**"]\n    keep: { tags: ["main"] }\n    untagged: { deleteAfterDays: 14 }\n';
const PREFIX = 'registry';

describeEachRegistry('untagged history listed from S3', ({ kind }) => {
  let registry: LocalRegistry;
  let s3: LocalS3;
  let dir: string;
  let policy: string;
  let storage: string;
  const app: PushedImage[] = [];
  let other: PushedImage;
  let repositoryKeys = 0;
  const status = async (repo: string, ref: string): Promise<number> =>
    (
      await fetch(`${registry.url}/v2/${repo}/manifests/${ref}`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      })
    ).status;
  const revisionKey = (repo: string, digest: string): string =>
    `${PREFIX}/${REPOSITORIES_PATH}/${repo}/${REVISIONS_PATH}/${digest.slice(7)}/link`;
  const allServed = async (): Promise<void> => {
    for (const image of app) expect(await status('ci/app', image.digest)).toBe(200);
    expect(await status('team/svc/api', other.digest)).toBe(200);
  };

  beforeAll(async () => {
    registry = await startRegistry(kind);
    s3 = await startLocalS3();
    dir = mkdtempSync(join(tmpdir(), 'rj-s3-history-'));
    policy = join(dir, 'policy.yaml');
    writeFileSync(policy, POLICY);
    // `main` pushed three times: the last push is tagged, the two before are history.
    for (const n of [1, 2, 3]) {
      app.push(
        await pushImage({ url: registry.url }, 'ci/app', 'main', {
          created: '2026-01-01T00:00:00Z',
          layers: [{ seed: `s3-history-${n}`, size: 2048 }],
          label: `s3-history-${n}`,
        }),
      );
    }
    // A nested repository name, with one tag.
    other = await pushImage({ url: registry.url }, 'team/svc/api', 'main', {
      created: '2026-01-01T00:00:00Z',
      layers: [{ seed: 's3-history-other', size: 1024 }],
    });
    const keys = await s3.copyTree(registry.storageDir, PREFIX);
    // Layers, tags, blobs and uploads are copied too: the listing has to pick the revisions out of them.
    expect(keys.some((k) => k.includes('/_layers/'))).toBe(true);
    repositoryKeys = keys.filter((k) => k.startsWith(`${PREFIX}/${REPOSITORIES_PATH}/`)).length;
    // The first push is 30 days old and goes; the second is 2 days old and stays.
    s3.setLastModified(revisionKey('ci/app', app[0]!.digest), new Date(Date.now() - 30 * 86_400_000));
    s3.setLastModified(revisionKey('ci/app', app[1]!.digest), new Date(Date.now() - 2 * 86_400_000));
    storage = `s3://${s3.bucket}/${PREFIX}`;
  });

  afterAll(async () => {
    await registry?.dispose();
    await s3?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists every revision of every repository, page by page, with LastModified as the push time', async () => {
    const requests = s3.listRequests;
    const listing = await s3History(
      s3ClientFromEnv(s3.env),
      { bucket: s3.bucket, prefix: PREFIX },
      // Two keys a page: many pages, each ending anywhere in the layout.
      { pageSize: 2 },
    ).list();
    expect(listing.source).toBe(storage);
    // Every key under repositories/ two at a time (layer, tag and revision links alike).
    expect(s3.listRequests - requests).toBe(Math.ceil(repositoryKeys / 2));
    expect([...listing.repositories.keys()]).toEqual(['ci/app', 'team/svc/api']);
    const revisions = listing.repositories.get('ci/app')!;
    expect(revisions.map((r) => r.digest)).toEqual(app.map((i) => i.digest).sort());
    const age = (digest: string) =>
      (Date.now() - Date.parse(revisions.find((r) => r.digest === digest)!.pushedAt)) / 86_400_000;
    expect(age(app[0]!.digest)).toBeCloseTo(30, 1);
    expect(age(app[1]!.digest)).toBeCloseTo(2, 1);
    expect(age(app[2]!.digest)).toBeLessThan(1);
    expect(listing.repositories.get('team/svc/api')!.map((r) => r.digest)).toEqual([other.digest]);
  });

  it('refuses malformed URLs, a missing bucket, wrong credentials, an unreachable endpoint and a prefix without a registry, deleting nothing', async () => {
    const cases: [string, Record<string, string>, RegExp][] = [
      ['s3://', s3.env, /the bucket name is missing/],
      ['s3:/registry-data/registry', s3.env, /not an s3:\/\/ URL/],
      ['s3://Registry_Data/registry', s3.env, /"Registry_Data" is not a valid bucket name/],
      ['s3://registry-data//registry', s3.env, /empty segment/],
      ['gs://registry-data/registry', s3.env, /or its S3 storage as s3:\/\/bucket\/rootdirectory/],
      [
        's3://no-such-bucket/registry',
        s3.env,
        /cannot list the bucket: the bucket no-such-bucket does not exist/,
      ],
      [
        storage,
        { ...s3.env, AWS_ACCESS_KEY_ID: 'WRONG' },
        /cannot list the bucket: .*(InvalidAccessKeyId|access denied)/,
      ],
      [storage, { ...s3.env, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' }, /cannot list the bucket: /],
      [
        `s3://${s3.bucket}/elsewhere`,
        s3.env,
        /not a registry's storage root: expected to find keys under elsewhere\/docker\/registry\/v2\/repositories\//,
      ],
    ];
    for (const [url, env, message] of cases) {
      const r = await cli(
        ['apply', '--registry', registry.url, '--policy', policy, '--storage', url, '--yes'],
        { env },
      );
      expect(r.code, `${url}: ${r.out}${r.err}`).toBe(EXIT.badInput);
      expect(r.err, url).toMatch(message);
      expect(r.out, url).not.toMatch(/Deleted/);
    }
    await allServed();
  });

  it('a partial listing deletes no untagged manifest and the plan says why; tags are planned as without one', async () => {
    const client = createRegistryClient({ url: registry.url, actions: 'pull,delete' });
    try {
      const result = await runJob({
        client,
        now: new Date(),
        dryRun: false,
        maxDeleteFraction: 1,
        policy: parsePolicy(POLICY, 'test'),
        // One page of two keys: the cap stops the listing long before the revisions.
        history: s3History(
          s3ClientFromEnv(s3.env),
          { bucket: s3.bucket, prefix: PREFIX },
          { pageSize: 2, maxPages: 1 },
        ),
      });
      expect(result.plan.history).toMatchObject({ source: storage, complete: false });
      expect(result.plan.history?.problem).toMatch(/more than 1 pages of keys .*the listing is partial/);
      expect(result.plan.warnings.map((w) => w.message).join('\n')).toMatch(
        /untagged history was not listed \(.*partial\), so no untagged manifest is deleted in this run/,
      );
      expect(result.plan.summary.manifestsDeleted).toBe(0);
      expect(result.report?.manifestsDeleted).toBe(0);
    } finally {
      await client.close();
    }
    await allServed();
  });

  it('the delete guard counts the untagged manifests: a plan deleting only history above it is refused', async () => {
    // 1 of 4 manifests (25%) is history to delete, no tag is.
    const r = await cli(
      [
        'apply',
        '--registry',
        registry.url,
        '--policy',
        policy,
        '--storage',
        storage,
        '--yes',
        '--max-delete-fraction',
        '0.2',
      ],
      { env: s3.env },
    );
    expect(r.code, r.out + r.err).toBe(EXIT.refused);
    expect(r.err).toMatch(/the plan deletes 1 of 4 manifests \(25\.0%\)/);
    await allServed();
  });

  it('plan shows the untagged history it would delete; apply deletes exactly that', async () => {
    const planned = await cli(
      ['plan', '--registry', registry.url, '--policy', policy, '--storage', storage],
      { env: s3.env },
    );
    expect(planned.code, planned.err).toBe(EXIT.ok);
    expect(planned.out).toContain(`DELETE  (untagged image)`);
    expect(planned.out).toContain(app[0]!.digest.slice(0, 19));
    expect(planned.out).toContain('pushed 30 days ago; nothing that stays references it');
    expect(planned.out).toContain('untagged: delete 1, keep 1');
    expect(planned.out).toContain(`Untagged history listed from ${storage}.`);
    await allServed();

    const applied = await cli(
      ['apply', '--registry', registry.url, '--policy', policy, '--storage', storage, '--yes'],
      { env: s3.env },
    );
    expect(applied.code, applied.out + applied.err).toBe(EXIT.ok);
    expect(applied.out).toContain('Deleted 0 tags and 1 manifest on');
    expect(await status('ci/app', app[0]!.digest)).toBe(404);
    expect(await status('ci/app', app[1]!.digest)).toBe(200);
    expect(await status('ci/app', 'main')).toBe(200);
    expect(await status('team/svc/api', 'main')).toBe(200);
  });
});
