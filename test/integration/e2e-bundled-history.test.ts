// The bundled Lambda reclaiming untagged history end to end: synthesize the stack with the default storage setting
// (`container`), invoke the bundled handler in a child process against a registry container (podman: registry:2,
// and registry:3 when REGISTRY_V3_BIN is set), with the SSM stand-in running the synthesized document (the listing,
// then garbage-collect) and the local S3 stand-in as the construct's bucket. History older than the grace goes;
// young history, the platform images of a kept index and every tag stay, and after garbage-collect every kept
// manifest and blob is served while the deleted history's own layers are gone.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LambdaRunReport } from '../../lambda/lambda-job.ts';
import { REPOSITORIES_PATH, REVISIONS_PATH } from '../../lambda/core/history.ts';
import { MEDIA, pushImage, pushIndex, type PushedImage } from '../../lambda/demo/seed.ts';
import {
  createRegistryContainer,
  dockerOk,
  removeRegistryContainer,
  startEngine,
  type Engine,
  type RegistryContainer,
} from '../support/container-engine.ts';
import {
  findBundledFunction,
  invokeBundled,
  removeGcLogs,
  standInEnvironment,
  synthApp,
} from '../support/bundled-lambda.ts';
import { startLocalS3, type LocalS3 } from '../support/local-s3.ts';
import { describeEachRegistry } from '../support/registry-kind.ts';
import { startSsmStandIn, type SsmStandIn } from '../support/ssm-stand-in.ts';

const INSTANCE = 'i-0123456789abcdef0';
const BUCKET = 'janitor-bucket';
const DAY = 86_400_000;
const ACCEPT = [MEDIA.dockerManifest, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.ociIndex].join(', ');

const POLICY_YAML = `rules:
  - repositories: ['team1/**']
    keep:
      tags: ['*']
    untagged:
      deleteAfterDays: 14
`;

const status = async (url: string, method = 'HEAD'): Promise<number> => {
  const res = await fetch(url, { method, headers: { accept: ACCEPT } });
  await res.arrayBuffer();
  return res.status;
};

describeEachRegistry('the bundled handler with the container listing', ({ kind }) => {
  describe('untagged history, end to end', () => {
    let engine: Engine | undefined;
    let registry: RegistryContainer | undefined;
    let ssm: SsmStandIn | undefined;
    let s3: LocalS3 | undefined;
    const work = mkdtempSync(join(tmpdir(), 'rj-e2e-history-'));

    beforeAll(async () => {
      engine = await startEngine();
      registry = await createRegistryContainer(engine, { kind });
      s3 = await startLocalS3(BUCKET);
    });

    afterAll(async () => {
      await ssm?.close();
      await s3?.close();
      if (engine && registry) {
        await removeRegistryContainer(engine, registry);
        removeGcLogs(registry.name);
      }
      await engine?.release();
      rmSync(work, { recursive: true, force: true });
    });

    it('deletes history older than the grace, keeps young and referenced history, and GC frees its layers', async () => {
      const reg = registry!;
      const eng = engine!;
      const target = { url: reg.url };
      const image = (label: string, extra: Record<string, unknown> = {}) => ({
        created: '2026-01-01T00:00:00Z',
        layers: [
          { seed: 'e2e-history-base', size: 50_000 },
          { seed: `e2e-history-${label}`, size: 200_000 },
        ],
        label,
        ...extra,
      });
      // `main` pushed three times: main1 and main2 become history, pushed "30 days ago" below.
      const main: PushedImage[] = [];
      for (const n of [1, 2, 3]) main.push(await pushImage(target, 'team1/app', 'main', image(`main${n}`)));
      // A multi-arch image whose platform images are untagged revisions, as old as the history: they stay.
      const amd = await pushImage(target, 'team1/app', null, image('amd', { architecture: 'amd64' }));
      const arm = await pushImage(target, 'team1/app', null, image('arm', { architecture: 'arm64' }));
      const index = await pushIndex(target, 'team1/app', 'multi', [
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
      ] as never);
      // Young history: pushed by digest just now.
      const young = await pushImage(target, 'team1/app', null, image('young'));

      // Backdate the old revisions' links on the host side of the volume (the push time is the link's mtime).
      const mountpoint = await dockerOk(eng, 'volume', 'inspect', '-f', '{{.Mountpoint}}', reg.volume);
      const old = new Date(Date.now() - 30 * DAY);
      for (const d of [main[0]!.digest, main[1]!.digest, amd.digest, arm.digest]) {
        const link = join(mountpoint, REPOSITORIES_PATH, 'team1/app', REVISIONS_PATH, d.slice(7), 'link');
        utimesSync(link, old, old);
      }

      const policyFile = join(work, 'retention-policy.yaml');
      writeFileSync(policyFile, POLICY_YAML);
      const outdir = join(work, 'cdk.out');
      await synthApp(outdir, {
        registryUrl: reg.url,
        instanceId: INSTANCE,
        dryRun: 'false',
        containerName: reg.name,
        policyFile,
      });
      const fn = findBundledFunction(outdir);
      // The default storage setting: the registry's filesystem, listed in its container.
      expect(fn.environment.HISTORY_STORAGE).toBe('container');

      ssm = await startSsmStandIn({
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', DOCKER_HOST: eng.dockerHost },
        instances: [{ instanceId: INSTANCE }],
        documents: fn.documents,
      });
      const outcome = await invokeBundled<LambdaRunReport>(
        fn,
        {},
        // The bucket's name is a Ref until deploy: here it is the local S3 stand-in's.
        standInEnvironment(fn, { ssm: ssm.endpoint, s3: s3!.endpoint }, { listing: BUCKET }),
        work,
        'e2e-history-1',
      );
      expect(outcome, `the invoke failed:\n${outcome.stderr}\n${outcome.stdout.slice(-6000)}`).toMatchObject({
        ok: true,
      });
      const report = (outcome as { result: LambdaRunReport }).result;
      expect(report).toMatchObject({
        dryRun: false,
        plan: { complete: true, tagsDeleted: 0, manifestsDeleted: 2 },
        deletions: { tagsDeleted: 0, manifestsDeleted: 2, failures: [], skippedRepositories: [] },
        gc: { status: 'Success' },
        verify: { status: 'ok', problems: [] },
      });

      // The listing went first, through the same document, and came back through the bucket; then garbage-collect.
      const sent = ssm.requestsFor('SendCommand').map((r) => r.input.Parameters as Record<string, string[]>);
      expect(sent.map((p) => p.action?.[0] ?? 'gc')).toEqual(['list', 'gc']);
      expect(sent[0]!.uploadUrl![0]).toMatch(new RegExp(`^${s3!.endpoint}/${BUCKET}/history-listing/`));
      expect(s3!.puts).toEqual([expect.objectContaining({ presigned: true })]);

      // The old history is gone, with its own layers; everything else is served, every blob with its content.
      for (const gone of [main[0]!, main[1]!]) {
        expect(await status(`${reg.url}/v2/team1/app/manifests/${gone.digest}`)).toBe(404);
        expect(await status(`${reg.url}/v2/team1/app/blobs/${gone.layers[1]!.digest}`)).toBe(404);
      }
      expect(await status(`${reg.url}/v2/team1/app/manifests/main`)).toBe(200);
      expect(await status(`${reg.url}/v2/team1/app/manifests/multi`)).toBe(200);
      for (const kept of [main[2]!, amd, arm, young]) {
        expect(await status(`${reg.url}/v2/team1/app/manifests/${kept.digest}`), kept.digest).toBe(200);
        for (const blob of [kept.config, ...kept.layers]) {
          const res = await fetch(`${reg.url}/v2/team1/app/blobs/${blob.digest}`);
          const body = Buffer.from(await res.arrayBuffer());
          expect(res.status, blob.digest).toBe(200);
          expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(blob.digest);
        }
      }
      expect(await status(`${reg.url}/v2/team1/app/manifests/${index.digest}`)).toBe(200);
      expect(await dockerOk(eng, 'inspect', '-f', '{{.State.Running}}', reg.name)).toBe('true');
    }, 600_000);
  });
});
