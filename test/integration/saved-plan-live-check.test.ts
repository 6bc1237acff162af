// A saved plan cannot delete what stays: `apply --plan` derives safety again from the live registry (tags listed
// and resolved now, with their index children and referrers), whatever the plan file says. Through the CLI on
// real registries; the reproduction from issue 9 item 3 deleted the kept image on the old code.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EXIT } from '../../lambda/cli/main.ts';
import type { Plan, RepositoryPlan } from '../../lambda/core/model.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage, pushIndex, type PushedImage } from '../../lambda/demo/seed.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { cli } from '../support/cli.ts';

const POLICY = 'rules:\n  - repositories: ["**"]\n    keep: { newest: 1 }\n';

async function served(url: string, repo: string, reference: string): Promise<boolean> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${reference}`, {
    method: 'HEAD',
    headers: {
      accept:
        'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, ' +
        'application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json',
    },
  });
  return res.status === 200;
}

describeEachRegistry('a saved plan is checked against the live registry', ({ kind }) => {
  let registry: LocalRegistry;
  let dir: string;
  let policyFile: string;
  let images: Record<'old' | 'new' | 'amd64' | 'arm64', PushedImage>;
  let index: string;

  beforeAll(async () => {
    registry = await startRegistry(kind);
    dir = mkdtempSync(join(tmpdir(), 'rj-live-'));
    policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
  });
  afterAll(async () => {
    await registry?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /** app: v1 (old, deleted by the policy), v2 (newest, kept); multi: an old image and a kept multi-arch index. */
  async function seed(tag: string): Promise<void> {
    const layer = (s: string) => [{ seed: `${tag}-${s}`, size: 2_000 }];
    images = {
      old: await pushImage(registry, `app-${tag}`, 'v1', {
        created: '2025-01-01T00:00:00Z',
        layers: layer('1'),
      }),
      new: await pushImage(registry, `app-${tag}`, 'v2', {
        created: '2026-01-01T00:00:00Z',
        layers: layer('2'),
      }),
      amd64: await pushImage(registry, `multi-${tag}`, null, {
        created: '2026-01-01T00:00:00Z',
        format: 'oci',
        layers: layer('amd'),
      }),
      arm64: await pushImage(registry, `multi-${tag}`, null, {
        created: '2026-01-01T00:00:00Z',
        format: 'oci',
        architecture: 'arm64',
        layers: layer('arm'),
      }),
    };
    await pushImage(registry, `multi-${tag}`, 'old', {
      created: '2025-01-01T00:00:00Z',
      layers: layer('multi-old'),
    });
    index = (
      await pushIndex(registry, `multi-${tag}`, 'latest', [
        { ...images.amd64, platform: { architecture: 'amd64', os: 'linux' } },
        { ...images.arm64, platform: { architecture: 'arm64', os: 'linux' } },
      ])
    ).digest;
  }

  async function savedPlan(tag: string): Promise<{ file: string; plan: Plan }> {
    const file = join(dir, `plan-${tag}.json`);
    const r = await cli(['plan', '--registry', registry.url, '--policy', policyFile, '--out', file]);
    expect(r.code, r.err).toBe(EXIT.ok);
    return { file, plan: JSON.parse(readFileSync(file, 'utf8')) as Plan };
  }

  function edit(file: string, plan: Plan, name: string, change: (r: RepositoryPlan) => RepositoryPlan): void {
    const edited = { ...plan, repositories: plan.repositories.map((r) => (r.name === name ? change(r) : r)) };
    writeFileSync(file, JSON.stringify(edited, null, 2));
  }

  it("issue 9's reproduction: a kept tag's digest added to deleteManifests is not deleted; the repository is skipped and apply exits non-zero", async () => {
    await seed('a');
    const { file, plan } = await savedPlan('a');
    const app = plan.repositories.find((r) => r.name === 'app-a')!;
    expect(app.kept.map((t) => t.tag)).toEqual(['v2']);
    edit(file, plan, 'app-a', (r) => ({
      ...r,
      deleteManifests: [
        ...r.deleteManifests,
        { digest: images.new.digest, role: 'root', kind: 'image', tags: [], after: [] },
      ],
    }));

    const r = await cli([
      'apply',
      '--registry',
      registry.url,
      '--plan',
      file,
      '--yes',
      '--max-delete-fraction',
      '1',
    ]);
    expect(r.code, r.out + r.err).toBe(EXIT.failed);
    expect(r.out + r.err).toContain(
      `live re-check found the plan deleting what stays: ${images.new.digest} stays (tag v2 reaches it)`,
    );
    expect(await served(registry.url, 'app-a', 'v2')).toBe(true);
    expect(await served(registry.url, 'app-a', images.new.digest)).toBe(true);
    // The whole repository is skipped, the honest part of the plan included.
    expect(await served(registry.url, 'app-a', 'v1')).toBe(true);
  });

  it("a kept index's platform image, or a tag moved into kept, is not deleted either", async () => {
    await seed('b');
    const { file, plan } = await savedPlan('b');
    edit(file, plan, 'multi-b', (r) => ({
      ...r,
      deleteManifests: [
        ...r.deleteManifests,
        { digest: images.arm64.digest, role: 'child', kind: 'image', tags: [], after: [] },
      ],
    }));
    // app-b: the deleted tag v1 moved to kept, its digest still deleted.
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Plan;
    edit(file, saved, 'app-b', (r) => ({
      ...r,
      kept: [...r.kept, { tag: 'v1', digest: images.old.digest, reasons: ['newest:1'] }],
      deleteTags: [],
    }));

    const r = await cli([
      'apply',
      '--registry',
      registry.url,
      '--plan',
      file,
      '--yes',
      '--max-delete-fraction',
      '1',
    ]);
    expect(r.code, r.out + r.err).toBe(EXIT.failed);
    expect(r.out + r.err).toContain(`${images.arm64.digest} stays (tag latest reaches it)`);
    expect(r.out + r.err).toContain(`${images.old.digest} stays (tag v1 reaches it)`);
    for (const ref of ['latest', images.arm64.digest, images.amd64.digest, index, 'old'])
      expect([ref, await served(registry.url, 'multi-b', ref)]).toEqual([ref, true]);
    expect(await served(registry.url, 'app-b', 'v1')).toBe(true);
  });

  it('an unedited saved plan is applied, and the repositories it changes are read again first', async () => {
    await seed('c');
    const { file } = await savedPlan('c');
    const r = await cli([
      'apply',
      '--registry',
      registry.url,
      '--plan',
      file,
      '--yes',
      '--max-delete-fraction',
      '1',
    ]);
    expect(r.code, r.out + r.err).toBe(EXIT.ok);
    expect(await served(registry.url, 'app-c', 'v1')).toBe(false);
    expect(await served(registry.url, 'app-c', 'v2')).toBe(true);
    expect(await served(registry.url, 'multi-c', 'old')).toBe(false);
    expect(await served(registry.url, 'multi-c', images.arm64.digest)).toBe(true);
  });
});
