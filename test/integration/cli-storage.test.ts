// `--storage PATH` through the CLI on a real registry: the plan shows the untagged history it will delete,
// apply deletes exactly that, and a folder that is not a storage root (or a URL that is neither a path nor
// s3://bucket/prefix) is refused before anything is read or deleted. S3 storage: history-s3.test.ts.
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EXIT } from '../../lambda/cli/main.ts';
import { REPOSITORIES_PATH, REVISIONS_PATH } from '../../lambda/core/history.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage, type PushedImage } from '../../lambda/demo/seed.ts';
import { cli } from '../support/cli.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';

describeEachRegistry('registry-janitor --storage', ({ kind }) => {
  let registry: LocalRegistry;
  let dir: string;
  let policy: string;
  const pushed: PushedImage[] = [];
  const status = async (ref: string): Promise<number> =>
    (
      await fetch(`${registry.url}/v2/ci/app/manifests/${ref}`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      })
    ).status;

  beforeAll(async () => {
    registry = await startRegistry(kind);
    dir = mkdtempSync(join(tmpdir(), 'rj-storage-'));
    policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      'rules:\n  - repositories: ["**"]\n    keep: { tags: ["main"] }\n    untagged: { deleteAfterDays: 14 }\n',
    );
    for (const n of [1, 2, 3]) {
      pushed.push(
        await pushImage({ url: registry.url }, 'ci/app', 'main', {
          created: '2026-01-01T00:00:00Z',
          layers: [{ seed: `cli-storage-${n}`, size: 2048 }],
          label: `cli-storage-${n}`,
        }),
      );
    }
    // The first push is 30 days old; the second is 2 days old and stays.
    for (const [image, days] of [
      [pushed[0]!, 30],
      [pushed[1]!, 2],
    ] as const) {
      const t = new Date(Date.now() - days * 86_400_000);
      const link = join(
        registry.storageDir,
        REPOSITORIES_PATH,
        'ci/app',
        REVISIONS_PATH,
        image.digest.slice(7),
        'link',
      );
      utimesSync(link, t, t);
    }
  });

  afterAll(async () => {
    await registry?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a folder that is not a storage root, and a URL of another kind, deleting nothing', async () => {
    for (const storage of [dir, 'gs://bucket/prefix']) {
      const r = await cli([
        'apply',
        '--registry',
        registry.url,
        '--policy',
        policy,
        '--storage',
        storage,
        '--yes',
      ]);
      expect(r.code).toBe(EXIT.badInput);
      expect(r.err).toMatch(
        storage === dir
          ? /expected to find docker\/registry\/v2\/repositories/
          : /give the registry's filesystem storage root .* or its S3 storage as s3:\/\/bucket\/rootdirectory/,
      );
    }
    for (const image of pushed) expect(await status(image.digest)).toBe(200);
  });

  it('plan shows the untagged history it would delete; apply deletes exactly that', async () => {
    const storage = ['--storage', registry.storageDir];
    const planned = await cli(['plan', '--registry', registry.url, '--policy', policy, ...storage]);
    expect(planned.code).toBe(EXIT.ok);
    expect(planned.out).toContain(`DELETE  (untagged image)`);
    expect(planned.out).toContain(pushed[0]!.digest.slice(0, 19));
    expect(planned.out).toContain('pushed 30 days ago; nothing that stays references it');
    expect(planned.out).toContain('untagged: delete 1, keep 1');
    expect(await status(pushed[0]!.digest)).toBe(200);

    const applied = await cli(['apply', '--registry', registry.url, '--policy', policy, ...storage, '--yes']);
    expect(applied.code, applied.out + applied.err).toBe(EXIT.ok);
    expect(applied.out).toContain('Deleted 0 tags and 1 manifest on');
    expect(await status(pushed[0]!.digest)).toBe(404);
    expect(await status(pushed[1]!.digest)).toBe(200);
    expect(await status('main')).toBe(200);
  });
});
