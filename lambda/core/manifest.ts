// Parses manifest documents (Docker v2, Docker list, OCI manifest and index, OCI artifacts, legacy schema1)
// and image configs into the few facts the planner needs: children, blobs, subject, creation time.
import { MANIFEST_ACCEPT, MEDIA_TYPES } from './contract.ts';
import { JanitorError } from './errors.ts';
import type { BlobRef, ChildRef, ManifestInfo, ManifestKind } from './model.ts';

export { MANIFEST_ACCEPT, MEDIA_TYPES };

const INDEX_TYPES = new Set<string>([MEDIA_TYPES.dockerList, MEDIA_TYPES.ociIndex]);
const IMAGE_TYPES = new Set<string>([MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociManifest]);
const SCHEMA1_TYPES = new Set<string>([MEDIA_TYPES.schema1Signed, MEDIA_TYPES.schema1]);

/** Config media types that hold an image config with a `created` field worth reading. */
export const IMAGE_CONFIG_TYPES = new Set<string>([
  'application/vnd.docker.container.image.v1+json',
  'application/vnd.oci.image.config.v1+json',
  'application/octet-stream',
]);

export const CREATED_ANNOTATION = 'org.opencontainers.image.created';

/** Marks the empty index the executor points a tag at to remove it on distribution 2.8. */
export const PLACEHOLDER_ANNOTATION = 'io.github.registry-janitor.placeholder';

/** Images created before this are treated as having no usable creation time (reproducible builds stamp 1970). */
export const EARLIEST_PLAUSIBLE = Date.UTC(2000, 0, 1);

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Creation time in ms, or undefined when missing, unparseable or implausibly old (unknown age). */
export function createdMillis(created: string | undefined): number | undefined {
  if (created === undefined || !RFC3339.test(created)) return undefined;
  const ms = Date.parse(created.replace(' ', 'T'));
  if (!Number.isFinite(ms) || ms < EARLIEST_PLAUSIBLE) return undefined;
  return ms;
}

/** One decoder for every body (decode() without `stream` keeps no state between calls); it drops a BOM. */
const UTF8 = new TextDecoder();

export class ManifestParseError extends JanitorError {
  public override readonly name: string = 'ManifestParseError';
}

type Json = Record<string, unknown>;

/** A JSON object (not null, not an array). */
export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

function descriptor(
  v: unknown,
  where: string,
): BlobRef & { mediaType: string; urls: boolean; annotations: Json } {
  if (!isObject(v)) throw new ManifestParseError(`${where} is not a descriptor`);
  const digest = str(v.digest);
  if (!digest || !DIGEST.test(digest)) throw new ManifestParseError(`${where} has no valid digest`);
  return {
    digest,
    size: num(v.size),
    mediaType: str(v.mediaType) ?? '',
    urls: Array.isArray(v.urls) && v.urls.length > 0,
    annotations: isObject(v.annotations) ? v.annotations : {},
  };
}

/** Layers that are not stored in the registry (Windows base layers and other non-distributable content). */
function isForeign(layer: { mediaType: string; urls: boolean }): boolean {
  return layer.mediaType.includes('foreign') || layer.mediaType.includes('nondistributable');
}

/**
 * Parse a manifest. `mediaType` is the Content-Type the registry served (authoritative); the document's own
 * `mediaType` field is used only when the header is generic.
 */
export function parseManifest(digest: string, mediaType: string, body: Uint8Array): ManifestInfo {
  let doc: unknown;
  try {
    doc = JSON.parse(UTF8.decode(body));
  } catch (err) {
    throw new ManifestParseError(`manifest ${digest} is not valid JSON`, { cause: err });
  }
  if (!isObject(doc)) throw new ManifestParseError(`manifest ${digest} is not a JSON object`);
  const type = mediaType || str(doc.mediaType) || '';
  const size = body.byteLength;

  if (SCHEMA1_TYPES.has(type) || doc.schemaVersion === 1) return parseSchema1(digest, type, size, doc);

  const annotations = isObject(doc.annotations) ? doc.annotations : {};
  const annotated = str(annotations[CREATED_ANNOTATION]);
  const subject =
    doc.subject === undefined ? undefined : descriptor(doc.subject, `manifest ${digest} subject`).digest;

  if (INDEX_TYPES.has(type)) {
    if (!Array.isArray(doc.manifests))
      throw new ManifestParseError(`index ${digest} has no "manifests" list`);
    const children: ChildRef[] = doc.manifests.map((m, i) => {
      const d = descriptor(m, `index ${digest} manifests[${i}]`);
      const raw = m as Json;
      const platform = isObject(raw.platform)
        ? [str(raw.platform.os), str(raw.platform.architecture), str(raw.platform.variant)]
            .filter(Boolean)
            .join('/')
        : undefined;
      const attestation = d.annotations['vnd.docker.reference.type'] === 'attestation-manifest';
      return {
        digest: d.digest,
        mediaType: d.mediaType,
        ...(platform ? { platform } : {}),
        ...(attestation ? { attestation: true } : {}),
      };
    });
    return {
      digest,
      mediaType: type,
      kind: 'index',
      size,
      layers: [],
      children,
      ...(subject ? { subject } : {}),
      ...(str(doc.artifactType) ? { artifactType: str(doc.artifactType) } : {}),
      ...(annotated ? { created: annotated, createdSource: 'annotation' as const } : {}),
      ...(children.length === 0 && typeof annotations[PLACEHOLDER_ANNOTATION] === 'string'
        ? { placeholder: true }
        : {}),
    };
  }

  if (IMAGE_TYPES.has(type)) {
    const config = descriptor(doc.config, `manifest ${digest} config`);
    const rawLayers: unknown[] = Array.isArray(doc.layers) ? doc.layers : [];
    const layers = rawLayers
      .map((l, i) => descriptor(l, `manifest ${digest} layers[${i}]`))
      .filter((l) => !isForeign(l))
      .map(({ digest: d, size: s }) => ({ digest: d, size: s }));
    const artifactType = str(doc.artifactType);
    const kind: ManifestKind =
      artifactType || !IMAGE_CONFIG_TYPES.has(config.mediaType) ? 'artifact' : 'image';
    return {
      digest,
      mediaType: type,
      kind,
      size,
      config: { digest: config.digest, size: config.size, mediaType: config.mediaType },
      layers,
      children: [],
      ...(subject ? { subject } : {}),
      ...(kind === 'artifact' ? { artifactType: artifactType ?? config.mediaType } : {}),
      ...(annotated ? { created: annotated, createdSource: 'annotation' as const } : {}),
    };
  }

  throw new ManifestParseError(`manifest ${digest} has an unsupported media type "${type}"`);
}

function parseSchema1(digest: string, mediaType: string, size: number, doc: Json): ManifestInfo {
  const fsLayers: unknown[] = Array.isArray(doc.fsLayers) ? doc.fsLayers : [];
  const seen = new Set<string>();
  const layers: BlobRef[] = [];
  for (const l of fsLayers) {
    const d = isObject(l) ? str(l.blobSum) : undefined;
    if (d && !seen.has(d)) {
      seen.add(d);
      layers.push({ digest: d, size: 0 });
    }
  }
  let created: string | undefined;
  const history: unknown[] = Array.isArray(doc.history) ? doc.history : [];
  const top = history[0];
  if (isObject(top) && typeof top.v1Compatibility === 'string') {
    try {
      const v1 = JSON.parse(top.v1Compatibility) as unknown;
      if (isObject(v1)) created = str(v1.created);
    } catch {
      // an unreadable history entry only means the age is unknown
    }
  }
  return {
    digest,
    mediaType: mediaType || MEDIA_TYPES.schema1Signed,
    kind: 'schema1',
    size,
    layers,
    children: [],
    ...(created ? { created, createdSource: 'history' as const } : {}),
  };
}

/** The `created` field of an image config blob, if any. */
export function parseConfigCreated(body: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(UTF8.decode(body)) as unknown;
    return isObject(doc) ? str(doc.created) : undefined;
  } catch {
    return undefined;
  }
}

/** A tag that names another manifest's referrers: OCI fallback `sha256-<hex>` or cosign `.sig`/`.att`/`.sbom`. */
const REFERRER_TAG = /^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(?:\.(sig|att|sbom))?$/;

/** The subject digest a referrer tag points at, or undefined for an ordinary tag. */
export function referrerSubject(tag: string): string | undefined {
  const m = REFERRER_TAG.exec(tag);
  if (!m) return undefined;
  const [, algo, hex] = m;
  const expected = algo === 'sha256' ? 64 : 128;
  return hex?.length === expected ? `${algo}:${hex}` : undefined;
}

/** Whether the image config should be read to learn the creation time. */
export function needsConfig(info: ManifestInfo): boolean {
  return (
    info.kind === 'image' &&
    info.config !== undefined &&
    IMAGE_CONFIG_TYPES.has(info.config.mediaType) &&
    createdMillis(info.created) === undefined
  );
}
