// Manifest facts in their compact form: one object of a fixed layout per manifest, with repeated strings
// (media types, platforms) and repeated layers (a base layer under many images) shared. The scanner builds its
// inventory with it, so 100,000 tags fit a small Lambda.
import type { BlobRef, ChildRef, ManifestInfo } from './model.ts';

/** Bounds on the sharing tables (they only save memory, so forgetting is harmless). */
const MAX_SHARED_NAMES = 4096;
const MAX_SHARED_BLOBS = 65_536;

export const EMPTY: readonly never[] = Object.freeze([]);

export class ManifestCompactor {
  private readonly names = new Map<string, string>();
  private readonly blobs = new Map<string, BlobRef>();

  /** A repeated short string (media type, platform, artifact type) as one shared instance. */
  private name(s: string): string {
    const found = this.names.get(s);
    if (found !== undefined) return found;
    if (this.names.size >= MAX_SHARED_NAMES) this.names.clear();
    this.names.set(s, s);
    return s;
  }

  /** A layer as one shared object per digest and size: a base layer under many images is stored once. */
  private layer(digest: string, size: number): BlobRef {
    const found = this.blobs.get(digest);
    if (found !== undefined && found.size === size) return found;
    if (this.blobs.size >= MAX_SHARED_BLOBS) this.blobs.clear();
    const ref = { digest, size };
    this.blobs.set(digest, ref);
    return ref;
  }

  /**
   * The same facts in one fresh object of a fixed layout, with repeated strings (media types, platforms, a
   * base layer shared by a repository's images) shared: a third less memory per manifest than the parser's
   * output with its conditional spreads.
   */
  public compact(
    info: ManifestInfo,
    created: string | undefined,
    createdSource: ManifestInfo['createdSource'],
  ): ManifestInfo {
    const layers = info.layers.length === 0 ? EMPTY : info.layers.map((l) => this.layer(l.digest, l.size));
    const config = info.config && {
      digest: info.config.digest,
      size: info.config.size,
      mediaType: this.name(info.config.mediaType),
    };
    const children =
      info.children.length === 0
        ? EMPTY
        : info.children.map((c): ChildRef => {
            const mediaType = this.name(c.mediaType);
            const platform = c.platform === undefined ? undefined : this.name(c.platform);
            // One literal per shape: properties added later would cost a second allocation each.
            if (c.attestation) {
              return platform === undefined
                ? { digest: c.digest, mediaType, attestation: true }
                : { digest: c.digest, mediaType, platform, attestation: true };
            }
            return platform === undefined
              ? { digest: c.digest, mediaType }
              : { digest: c.digest, mediaType, platform };
          });
    const artifactType = info.artifactType === undefined ? undefined : this.name(info.artifactType);
    const shared = { mediaType: this.name(info.mediaType), artifactType, layers, children, config };
    return assemble(info, shared, created, createdSource);
  }

  /**
   * A manifest this compactor made, with its age now known (its config read, or its children's ages): one new
   * object, the layers, children and config it holds reused, since the scanner dates most manifests after
   * storing them.
   */
  public withAge(
    info: ManifestInfo,
    created: string,
    createdSource: NonNullable<ManifestInfo['createdSource']>,
  ): ManifestInfo {
    return assemble(info, info, created, createdSource);
  }
}

/** The parts of a compact manifest that are shared or already built. */
type Shared = Pick<ManifestInfo, 'mediaType' | 'artifactType' | 'layers' | 'children' | 'config'>;

function assemble(
  info: ManifestInfo,
  { mediaType, artifactType, layers, children, config }: Shared,
  created: string | undefined,
  createdSource: ManifestInfo['createdSource'],
): ManifestInfo {
  if (
    config &&
    children.length === 0 &&
    info.subject === undefined &&
    artifactType === undefined &&
    created !== undefined &&
    createdSource !== undefined
  ) {
    // The common case (an image whose age is known) in one literal: all properties in the object itself.
    return {
      digest: info.digest,
      mediaType,
      kind: info.kind,
      size: info.size,
      layers,
      children: EMPTY,
      config,
      created,
      createdSource,
    };
  }
  const out: {
    -readonly [K in keyof ManifestInfo]: ManifestInfo[K];
  } = {
    digest: info.digest,
    mediaType,
    kind: info.kind,
    size: info.size,
    layers,
    children,
  };
  if (config) out.config = config;
  if (info.subject !== undefined) out.subject = info.subject;
  if (artifactType !== undefined) out.artifactType = artifactType;
  if (created !== undefined) {
    out.created = created;
    out.createdSource = createdSource;
  }
  // The planner removes a tag still on a 2.8 placeholder; without the mark it is an index of unknown age.
  if (info.placeholder === true) out.placeholder = true;
  return out;
}
