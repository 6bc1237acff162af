// The images the restore tests remove and put back: in `prefix/app` an image under two tags (`v1`, `v1-alias`), a
// two-platform index (`multi`) and a kept image (`keep`); in `prefix/api` one image (`old`).
import type { RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { pushImage, pushIndex, type Descriptor } from '../../lambda/demo/seed.ts';

export interface RestoreScenario {
  readonly app: string;
  readonly api: string;
  /** The digest each tag but `keep` points at, by `repository:tag`. */
  readonly was: Readonly<Record<string, string>>;
}

const desc = (p: { digest: string; mediaType: string; size: number }, arch: string): Descriptor => ({
  mediaType: p.mediaType,
  digest: p.digest,
  size: p.size,
  platform: { os: 'linux', architecture: arch },
});

export async function seedRestoreScenario(
  client: RegistryHttpClient,
  prefix: string,
): Promise<RestoreScenario> {
  const t = { url: client.baseUrl };
  const app = `${prefix}/app`;
  const api = `${prefix}/api`;
  const created = '2026-01-01T00:00:00Z';
  const v1 = await pushImage(t, app, 'v1', { created, layers: [{ seed: `${prefix}-v1`, size: 4096 }] });
  // The same manifest under another tag, as `docker tag a b && docker push b` does.
  const bytes = (await client.getManifest(app, 'v1'))!;
  await client.putManifest(app, 'v1-alias', bytes.mediaType, bytes.body);
  const amd = await pushImage(t, app, null, {
    created,
    format: 'oci',
    layers: [{ seed: `${prefix}-amd`, size: 4096 }],
  });
  const arm = await pushImage(t, app, null, {
    created,
    format: 'oci',
    architecture: 'arm64',
    layers: [{ seed: `${prefix}-arm`, size: 4096 }],
  });
  const multi = await pushIndex(t, app, 'multi', [desc(amd, 'amd64'), desc(arm, 'arm64')]);
  await pushImage(t, app, 'keep', { created, layers: [{ seed: `${prefix}-keep`, size: 1024 }] });
  const old = await pushImage(t, api, 'old', { created, layers: [{ seed: `${prefix}-old`, size: 4096 }] });
  return {
    app,
    api,
    was: {
      [`${app}:v1`]: v1.digest,
      [`${app}:v1-alias`]: v1.digest,
      [`${app}:multi`]: multi.digest,
      [`${api}:old`]: old.digest,
    },
  };
}
