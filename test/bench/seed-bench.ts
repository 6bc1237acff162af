// Seeds the benchmark registry over the HTTP API, concurrently: N repositories × M tags, each repository with
// one shared base layer, each tag a unique layer and a unique config with its own created time, a `latest`
// alias of the newest tag, and every tenth repository multi-arch (each tag an OCI index of two images).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { Pool } from 'undici';
import { fakeBytes as bytes, MEDIA, sha256 } from '../../lambda/demo/seed.ts';

/** Bump when the seeded content changes, so old storage folders are seeded again. */
export const SEED_VERSION = 1;

export interface SeedShape {
  readonly repos: number;
  readonly tags: number;
}

/** What the seeded registry holds, derived from the shape alone (the benchmark prints it with its results). */
export interface SeedFacts {
  readonly repositories: number;
  /** Tags including the `latest` aliases. */
  readonly tags: number;
  readonly multiArchRepositories: number;
  /** Index children (one manifest read each per repository). */
  readonly childManifests: number;
  /** Distinct image configs. */
  readonly configs: number;
}

export function repoName(r: number): string {
  return `bench/app-${String(r).padStart(4, '0')}`;
}

export function tagName(i: number): string {
  return `v1.${String(i).padStart(4, '0')}`;
}

export function isMultiArch(r: number): boolean {
  return r % 10 === 9;
}

/** Tag i of every repository was built i hours after this moment; `latest` is the newest. */
const EPOCH = Date.UTC(2024, 0, 1);

export function createdAt(i: number): string {
  return new Date(EPOCH + i * 3_600_000).toISOString();
}

export function seedFacts(shape: SeedShape): SeedFacts {
  let multi = 0;
  for (let r = 0; r < shape.repos; r++) if (isMultiArch(r)) multi++;
  const single = shape.repos - multi;
  return {
    repositories: shape.repos,
    tags: shape.repos * (shape.tags + (shape.tags > 0 ? 1 : 0)),
    multiArchRepositories: multi,
    childManifests: multi * shape.tags * 2,
    configs: single * shape.tags + multi * shape.tags * 2,
  };
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
}

/** Where seeded content goes: the registry's HTTP API, or its filesystem storage written directly. */
interface SeedWriter {
  readonly requests: number;
  blob(repo: string, data: Uint8Array, mediaType: string): Promise<Descriptor>;
  manifest(repo: string, reference: string, mediaType: string, body: string): Promise<void>;
}

class Seeder implements SeedWriter {
  public requests = 0;

  public constructor(private readonly pool: Pool) {}

  private async send(
    method: string,
    path: string,
    body: Uint8Array | undefined,
    contentType: string | undefined,
    expect: number[],
  ): Promise<Record<string, string | string[] | undefined>> {
    this.requests++;
    const res = await this.pool.request({
      method,
      path,
      ...(body ? { body: Buffer.from(body) } : {}),
      headers: contentType ? { 'content-type': contentType } : {},
    });
    const text = await res.body.text();
    if (!expect.includes(res.statusCode)) {
      throw new Error(`${method} ${path} answered ${res.statusCode}: ${text.slice(0, 300)}`);
    }
    return res.headers;
  }

  /** POST + PUT (monolithic); the registry already having the blob is fine. */
  public async blob(repo: string, data: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = sha256(data);
    const headers = await this.send('POST', `/v2/${repo}/blobs/uploads/`, undefined, undefined, [202]);
    const location = headers.location;
    if (typeof location !== 'string') throw new Error(`upload to ${repo} answered without a Location`);
    const url = new URL(location, 'http://registry.invalid');
    url.searchParams.set('digest', digest);
    await this.send('PUT', url.pathname + url.search, data, 'application/octet-stream', [201]);
    return { mediaType, digest, size: data.byteLength };
  }

  public async manifest(repo: string, reference: string, mediaType: string, body: string): Promise<void> {
    await this.send('PUT', `/v2/${repo}/manifests/${reference}`, Buffer.from(body), mediaType, [201]);
  }
}

async function image(
  seeder: SeedWriter,
  repo: string,
  base: Descriptor,
  seed: string,
  created: string,
  architecture: string,
): Promise<{ body: string; descriptor: Descriptor }> {
  const layer = await seeder.blob(repo, bytes(`layer:${seed}`, 96), MEDIA.dockerLayer);
  const configDoc = {
    architecture,
    os: 'linux',
    created,
    config: { Labels: { seed } },
    rootfs: { type: 'layers', diff_ids: [base.digest, layer.digest] },
  };
  const config = await seeder.blob(repo, Buffer.from(JSON.stringify(configDoc)), MEDIA.dockerConfig);
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.dockerManifest,
    config,
    layers: [base, layer],
  });
  return {
    body,
    descriptor: {
      mediaType: MEDIA.dockerManifest,
      digest: sha256(body),
      size: Buffer.byteLength(body),
      platform: { architecture, os: 'linux' },
    },
  };
}

/**
 * Writes distribution's filesystem layout (registry/storage/paths.go) as the API seeding leaves it: every blob
 * under blobs/, a `_layers` link per blob a repository was sent, a revision link per manifest, and per tag its
 * `current` and `index` links. The same files, byte for byte (`--seed-via api` makes the other; compared
 * with sha256sum of every file for 10 × 3), in minutes instead of the half hour the API takes for 100,000 tags.
 */
export class StorageSeeder implements SeedWriter {
  public readonly requests = 0;
  private readonly v2: string;

  public constructor(root: string) {
    this.v2 = join(root, 'docker/registry/v2');
  }

  private write(path: string, data: Uint8Array | string): void {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, data);
  }

  private link(repo: string, rel: string, digest: string): void {
    this.write(join(this.v2, 'repositories', repo, rel), digest);
  }

  private data(digest: string, data: Uint8Array | string): void {
    const hex = digest.slice('sha256:'.length);
    this.write(join(this.v2, 'blobs/sha256', hex.slice(0, 2), hex, 'data'), data);
  }

  public blob(repo: string, data: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = sha256(data);
    this.data(digest, data);
    mkdirSync(join(this.v2, 'repositories', repo, '_uploads'), { recursive: true });
    this.link(repo, `_layers/sha256/${digest.slice(7)}/link`, digest);
    return Promise.resolve({ mediaType, digest, size: data.byteLength });
  }

  public manifest(repo: string, reference: string, _mediaType: string, body: string): Promise<void> {
    const digest = sha256(body);
    const hex = digest.slice(7);
    this.data(digest, body);
    this.link(repo, `_manifests/revisions/sha256/${hex}/link`, digest);
    if (!reference.includes(':')) {
      this.link(repo, `_manifests/tags/${reference}/index/sha256/${hex}/link`, digest);
      this.link(repo, `_manifests/tags/${reference}/current/link`, digest);
    }
    return Promise.resolve();
  }
}

/**
 * Push everything. Repositories go 16 at a time and their tags concurrently, so the registry is kept busy;
 * `onProgress` hears about each finished repository.
 */
export async function seedRegistry(
  url: string,
  shape: SeedShape,
  options: { connections?: number; onProgress?: (done: number) => void } = {},
): Promise<{ requests: number }> {
  const pool = new Pool(url, { connections: options.connections ?? 32, keepAliveTimeout: 30_000 });
  const seeder = new Seeder(pool);
  try {
    await seedWith(seeder, shape, options.onProgress);
  } finally {
    await pool.close();
  }
  return { requests: seeder.requests };
}

/** The same content written straight into a filesystem storage root (no registry running). */
export async function seedStorage(
  root: string,
  shape: SeedShape,
  options: { onProgress?: (done: number) => void } = {},
): Promise<void> {
  await seedWith(new StorageSeeder(root), shape, options.onProgress);
}

async function seedWith(
  seeder: SeedWriter,
  shape: SeedShape,
  onProgress: ((done: number) => void) | undefined,
): Promise<void> {
  const repoLimit = pLimit(16);
  const tagLimit = pLimit(96);
  let done = 0;
  await Promise.all(
    Array.from({ length: shape.repos }, (_, r) =>
      repoLimit(async () => {
        const repo = repoName(r);
        const base = await seeder.blob(repo, bytes(`base:${repo}`, 256), MEDIA.dockerLayer);
        const bodies: { mediaType: string; body: string }[] = await Promise.all(
          Array.from({ length: shape.tags }, (_, i) =>
            tagLimit(async () => {
              const created = createdAt(i);
              const seed = `${repo}:${tagName(i)}`;
              if (!isMultiArch(r)) {
                const img = await image(seeder, repo, base, seed, created, 'amd64');
                await seeder.manifest(repo, tagName(i), MEDIA.dockerManifest, img.body);
                return { mediaType: MEDIA.dockerManifest, body: img.body };
              }
              const children = await Promise.all(
                ['amd64', 'arm64'].map(async (arch) => {
                  const img = await image(seeder, repo, base, `${seed}/${arch}`, created, arch);
                  await seeder.manifest(repo, img.descriptor.digest, MEDIA.dockerManifest, img.body);
                  return img.descriptor;
                }),
              );
              const body = JSON.stringify({
                schemaVersion: 2,
                mediaType: MEDIA.ociIndex,
                manifests: children,
              });
              await seeder.manifest(repo, tagName(i), MEDIA.ociIndex, body);
              return { mediaType: MEDIA.ociIndex, body };
            }),
          ),
        );
        const newest = bodies[bodies.length - 1];
        if (newest) await seeder.manifest(repo, 'latest', newest.mediaType, newest.body);
        done++;
        onProgress?.(done);
      }),
    ),
  );
}
