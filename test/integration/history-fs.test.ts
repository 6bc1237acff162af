// The filesystem history listing against a real registry's storage: every revision, tagged or not, with the
// time it was last pushed into its repository; deleted revisions gone; bad roots refused with what was expected.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listFilesystemHistory } from '../../lambda/adapters/history-fs.ts';
import { ConfigError } from '../../lambda/core/errors.ts';
import { REPOSITORIES_PATH, REVISIONS_PATH } from '../../lambda/core/history.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { pushImage, pushIndex, pushManifest } from '../../lambda/demo/seed.ts';

const image = (label: string): Parameters<typeof pushImage>[3] => ({
  created: '2026-01-01T00:00:00Z',
  layers: [{ seed: `history-${label}`, size: 1024 }],
  label,
});

describeEachRegistry('listing untagged history from filesystem storage', ({ kind }) => {
  let registry: LocalRegistry;
  const pushed: Record<string, string> = {};

  beforeAll(async () => {
    registry = await startRegistry(kind);
    const target = { url: registry.url };
    // `main` pushed three times: two of its revisions become history.
    for (const n of [1, 2, 3])
      pushed[`main${n}`] = (await pushImage(target, 'team/app', 'main', image(`main${n}`))).digest;
    // A multi-arch index: its children are untagged revisions.
    const amd = await pushImage(target, 'team/app', null, { ...image('amd'), architecture: 'amd64' });
    const arm = await pushImage(target, 'team/app', null, { ...image('arm'), architecture: 'arm64' });
    pushed.amd = amd.digest;
    pushed.arm = arm.digest;
    pushed.index = (
      await pushIndex(target, 'team/app', 'multi', [
        {
          mediaType: amd.mediaType,
          digest: amd.digest,
          size: amd.size,
          platform: { os: 'linux', architecture: 'amd64' },
        },
        {
          mediaType: arm.mediaType,
          digest: arm.digest,
          size: arm.size,
          platform: { os: 'linux', architecture: 'arm64' },
        },
      ] as never)
    ).digest;
    // A repository nested inside another's name, and one deleted revision.
    pushed.nested = (await pushImage(target, 'team/app/cache', 'v1', image('nested'))).digest;
    pushed.gone = (await pushImage(target, 'team/app/cache', 'v2', image('gone'))).digest;
    const del = await fetch(`${registry.url}/v2/team/app/cache/manifests/${pushed.gone}`, {
      method: 'DELETE',
    });
    expect(del.status).toBe(202);
  });

  afterAll(async () => {
    await registry?.dispose();
  });

  it('lists every revision of every repository, tagged or not, and not deleted ones', async () => {
    const listing = await listFilesystemHistory(registry.storageDir);
    expect([...listing.repositories.keys()]).toEqual(['team/app', 'team/app/cache']);
    const app = listing.repositories.get('team/app')!.map((r) => r.digest);
    expect(app).toEqual(
      [pushed.main1, pushed.main2, pushed.main3, pushed.amd, pushed.arm, pushed.index].sort(),
    );
    expect(listing.repositories.get('team/app/cache')!.map((r) => r.digest)).toEqual([pushed.nested]);
    expect(listing.source).toBe(registry.storageDir);
  });

  it('gives the time the revision was last pushed into the repository, and a re-push moves it', async () => {
    const linkOf = (digest: string): string =>
      join(registry.storageDir, REPOSITORIES_PATH, 'team/app', REVISIONS_PATH, digest.slice(7), 'link');
    const longAgo = new Date('2025-03-01T10:00:00Z');
    utimesSync(linkOf(pushed.main1!), longAgo, longAgo);
    let main1 = (await listFilesystemHistory(registry.storageDir)).repositories
      .get('team/app')!
      .find((r) => r.digest === pushed.main1)!;
    expect(main1.pushedAt).toBe(longAgo.toISOString());

    // Promoting the same manifest under another tag is a push: the revision link is written again.
    const before = Date.now();
    const body = await (
      await fetch(`${registry.url}/v2/team/app/manifests/${pushed.main1}`, {
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      })
    ).text();
    await pushManifest(
      { url: registry.url },
      'team/app',
      'promoted',
      'application/vnd.docker.distribution.manifest.v2+json',
      body,
    );
    main1 = (await listFilesystemHistory(registry.storageDir)).repositories
      .get('team/app')!
      .find((r) => r.digest === pushed.main1)!;
    expect(Date.parse(main1.pushedAt)).toBeGreaterThanOrEqual(before - 2000);
  });

  it('refuses a folder that is not a registry storage root, saying what it expected', async () => {
    const notRoot = mkdtempSync(join(tmpdir(), 'not-a-registry-'));
    try {
      await expect(listFilesystemHistory(notRoot)).rejects.toThrow(ConfigError);
      await expect(listFilesystemHistory(notRoot)).rejects.toThrow(
        /expected to find docker\/registry\/v2\/repositories/,
      );
      await expect(listFilesystemHistory(join(notRoot, 'missing'))).rejects.toThrow(
        /not a registry's storage root/,
      );
    } finally {
      rmSync(notRoot, { recursive: true, force: true });
    }
  });

  it('never follows a symbolic link out of the storage', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'history-outside-'));
    try {
      // A repository-shaped folder elsewhere, linked into the storage as if it were a repository.
      mkdirSync(join(outside, REVISIONS_PATH, 'a'.repeat(64)), { recursive: true });
      symlinkSync(outside, join(registry.storageDir, REPOSITORIES_PATH, 'linked'));
      const listing = await listFilesystemHistory(registry.storageDir);
      expect([...listing.repositories.keys()]).not.toContain('linked');
    } finally {
      rmSync(join(registry.storageDir, REPOSITORIES_PATH, 'linked'), { force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
