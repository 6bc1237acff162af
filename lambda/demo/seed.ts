// Pushes real images to a registry over the HTTP API (monolithic blob uploads, manifest PUTs), for tests,
// the demo and the benchmark. Content is generated, so every run makes the same bytes for the same inputs.
import { createHash } from 'node:crypto';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

export function sha256(data: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export interface SeedTarget {
  readonly url: string;
  /** Sent on every request, e.g. `Basic …`. */
  readonly authorization?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
  artifactType?: string;
}

function headers(target: SeedTarget, extra: Record<string, string> = {}): Record<string, string> {
  return target.authorization ? { authorization: target.authorization, ...extra } : extra;
}

async function check(res: Response, what: string): Promise<void> {
  if (!res.ok) throw new Error(`${what}: ${res.status} ${await res.text()}`);
}

/** Upload a blob (skipped when the registry already has it in this repository). */
export async function pushBlob(
  target: SeedTarget,
  repo: string,
  data: Uint8Array,
  mediaType: string,
): Promise<Descriptor> {
  const digest = sha256(data);
  const head = await fetch(`${target.url}/v2/${repo}/blobs/${digest}`, {
    method: 'HEAD',
    headers: headers(target),
  });
  if (head.status !== 200) {
    const start = await fetch(`${target.url}/v2/${repo}/blobs/uploads/`, {
      method: 'POST',
      headers: headers(target),
    });
    await check(start, `start upload to ${repo}`);
    await start.arrayBuffer();
    const location = start.headers.get('location');
    if (!location) throw new Error('upload without Location');
    const put = new URL(location, target.url);
    put.searchParams.set('digest', digest);
    const res = await fetch(put, {
      method: 'PUT',
      body: data,
      headers: headers(target, { 'content-type': 'application/octet-stream' }),
    });
    await check(res, `upload ${digest} to ${repo}`);
    await res.arrayBuffer();
  }
  return { mediaType, digest, size: data.byteLength };
}

/** PUT a manifest under a tag or its digest; returns its digest. */
export async function pushManifest(
  target: SeedTarget,
  repo: string,
  reference: string | null,
  mediaType: string,
  body: Uint8Array | string,
): Promise<string> {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const digest = sha256(bytes);
  const res = await fetch(`${target.url}/v2/${repo}/manifests/${reference ?? digest}`, {
    method: 'PUT',
    body: bytes,
    headers: headers(target, { 'content-type': mediaType }),
  });
  await check(res, `put manifest ${repo}:${reference ?? digest}`);
  await res.arrayBuffer();
  return digest;
}

/** Deterministic pseudo-random bytes (so layers differ but runs repeat). */
export function fakeBytes(seed: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    out.set(block.subarray(0, Math.min(block.length, size - off)), off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export interface ImageSpec {
  /** Sets config `created`; `null` leaves it out. */
  created: string | null;
  /** Seeds of layers (each makes a distinct layer); shared seeds make shared layers. */
  layers: { seed: string; size: number }[];
  format?: 'docker' | 'oci';
  architecture?: string;
  /** Manifest annotations (OCI only). */
  annotations?: Record<string, string>;
  /** Anything to make the config unique. */
  label?: string;
}

export interface PushedImage {
  digest: string;
  mediaType: string;
  size: number;
  config: Descriptor;
  layers: Descriptor[];
}

/** Push an image (config + layers + manifest). With `tag: null` it is pushed by digest only. */
export async function pushImage(
  target: SeedTarget,
  repo: string,
  tag: string | null,
  spec: ImageSpec,
): Promise<PushedImage> {
  const oci = spec.format === 'oci';
  const layers = await Promise.all(
    spec.layers.map((l) =>
      pushBlob(target, repo, fakeBytes(l.seed, l.size), oci ? MEDIA.ociLayer : MEDIA.dockerLayer),
    ),
  );
  const configDoc: Record<string, unknown> = {
    architecture: spec.architecture ?? 'amd64',
    os: 'linux',
    config: { Labels: { seed: spec.label ?? `${repo}:${tag ?? 'untagged'}` } },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  };
  if (spec.created !== null) configDoc.created = spec.created;
  const config = await pushBlob(
    target,
    repo,
    new TextEncoder().encode(JSON.stringify(configDoc)),
    oci ? MEDIA.ociConfig : MEDIA.dockerConfig,
  );
  const mediaType = oci ? MEDIA.ociManifest : MEDIA.dockerManifest;
  const manifest: Record<string, unknown> = { schemaVersion: 2, mediaType, config, layers };
  if (spec.annotations && oci) manifest.annotations = spec.annotations;
  const body = JSON.stringify(manifest);
  const digest = await pushManifest(target, repo, tag, mediaType, body);
  return { digest, mediaType, size: Buffer.byteLength(body), config, layers };
}

/** Push an index over already-pushed children. */
export async function pushIndex(
  target: SeedTarget,
  repo: string,
  tag: string | null,
  children: Descriptor[],
  options: { format?: 'docker' | 'oci'; annotations?: Record<string, string>; subject?: Descriptor } = {},
): Promise<{ digest: string; mediaType: string; size: number }> {
  const mediaType = options.format === 'docker' ? MEDIA.dockerList : MEDIA.ociIndex;
  const doc: Record<string, unknown> = { schemaVersion: 2, mediaType, manifests: children };
  if (options.annotations) doc.annotations = options.annotations;
  if (options.subject) doc.subject = options.subject;
  const body = JSON.stringify(doc);
  const digest = await pushManifest(target, repo, tag, mediaType, body);
  return { digest, mediaType, size: Buffer.byteLength(body) };
}

/** Push an OCI artifact that refers to `subject` (a signature, an SBOM). */
export async function pushReferrer(
  target: SeedTarget,
  repo: string,
  tag: string | null,
  subject: Descriptor,
  artifactType: string,
  payloadSeed: string,
): Promise<{ digest: string; mediaType: string; size: number }> {
  const empty = await pushBlob(target, repo, new TextEncoder().encode('{}'), MEDIA.ociEmpty);
  const layer = await pushBlob(target, repo, fakeBytes(payloadSeed, 300), 'application/octet-stream');
  const doc = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    artifactType,
    config: empty,
    layers: [layer],
    subject,
  };
  const body = JSON.stringify(doc);
  const digest = await pushManifest(target, repo, tag, MEDIA.ociManifest, body);
  return { digest, mediaType: MEDIA.ociManifest, size: Buffer.byteLength(body) };
}
