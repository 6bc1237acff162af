// An in-memory registry behind the RegistryClient port, for fast unit tests of the core (scan, verify, the job):
// real manifest and config bytes (built as lambda/demo/seed.ts pushes them), 2.8's delete semantics by default
// (a DELETE by digest untags every tag on it; a DELETE by tag is refused) or v3's (`tagDelete: true`), every call
// recorded, and failures injectable per call. Behaviour that touches a real registry is proven in test/integration/.
import { RegistryError } from '../../lambda/core/errors.ts';
import type { DeleteOutcome, FetchedManifest, ProbeResult, RegistryClient } from '../../lambda/core/ports.ts';
import { fakeBytes, MEDIA, sha256, type Descriptor } from '../../lambda/demo/seed.ts';

export type Operation =
  | 'listRepositories'
  | 'listTags'
  | 'getManifest'
  | 'headManifest'
  | 'getBlob'
  | 'headBlob'
  | 'deleteManifest'
  | 'putManifest'
  | 'probe';

/** One call the client received: `getManifest app v1`, `deleteManifest app sha256:…`. */
export interface Call {
  readonly op: Operation;
  readonly repository?: string;
  readonly reference?: string;
}

export interface MemoryImageSpec {
  /** The config's `created`; null leaves it out. */
  readonly created: string | null;
  readonly layers?: readonly { seed: string; size: number }[];
  readonly format?: 'docker' | 'oci';
  readonly architecture?: string;
  /** OCI manifest annotations (e.g. org.opencontainers.image.created). */
  readonly annotations?: Record<string, string>;
  /** The config's label; default `<repository>:<tag>`. The same label and spec in two repositories make the same bytes. */
  readonly label?: string;
  /** Makes the manifest an OCI referrer of this subject. */
  readonly subject?: Descriptor;
}

export interface MemoryImage extends Descriptor {
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

interface Repository {
  readonly tags: Map<string, string>;
  readonly manifests: Map<string, { mediaType: string; body: Uint8Array }>;
  readonly blobs: Map<string, Uint8Array>;
}

interface Fault {
  readonly op: Operation;
  readonly repository?: string;
  readonly reference?: string;
  readonly error: Error;
  /** How many more calls fail; Infinity for every one. */
  remaining: number;
}

const encoder = new TextEncoder();

export class MemoryRegistry implements RegistryClient {
  public readonly baseUrl = 'http://memory.test';
  public readonly calls: Call[] = [];
  private readonly repositories = new Map<string, Repository>();
  private readonly faults: Fault[] = [];

  /** `tagDelete`: DELETE by tag untags, as distribution v3 does. */
  public constructor(private readonly options: { tagDelete?: boolean; deletesEnabled?: boolean } = {}) {}

  // --- seeding (not recorded as calls) ---

  public addBlob(repository: string, data: Uint8Array, mediaType: string): Descriptor {
    const digest = sha256(data);
    this.repo(repository).blobs.set(digest, data);
    return { mediaType, digest, size: data.byteLength };
  }

  /** Store a manifest's bytes (and tag it when `tag` is given); returns its descriptor. */
  public addManifest(repository: string, tag: string | null, mediaType: string, body: string): Descriptor {
    const bytes = encoder.encode(body);
    const digest = sha256(bytes);
    const repo = this.repo(repository);
    repo.manifests.set(digest, { mediaType, body: bytes });
    if (tag !== null) repo.tags.set(tag, digest);
    return { mediaType, digest, size: bytes.byteLength };
  }

  public addImage(repository: string, tag: string | null, spec: MemoryImageSpec): MemoryImage {
    const oci = spec.format === 'oci' || spec.subject !== undefined || spec.annotations !== undefined;
    const layers = (spec.layers ?? []).map((l) =>
      this.addBlob(repository, fakeBytes(l.seed, l.size), oci ? MEDIA.ociLayer : MEDIA.dockerLayer),
    );
    const configDoc: Record<string, unknown> = {
      architecture: spec.architecture ?? 'amd64',
      os: 'linux',
      config: { Labels: { seed: spec.label ?? `${repository}:${tag ?? 'untagged'}` } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    };
    if (spec.created !== null) configDoc.created = spec.created;
    const config = this.addBlob(
      repository,
      encoder.encode(JSON.stringify(configDoc)),
      oci ? MEDIA.ociConfig : MEDIA.dockerConfig,
    );
    const mediaType = oci ? MEDIA.ociManifest : MEDIA.dockerManifest;
    const doc: Record<string, unknown> = { schemaVersion: 2, mediaType, config, layers };
    if (spec.annotations) doc.annotations = spec.annotations;
    if (spec.subject) doc.subject = spec.subject;
    const manifest = this.addManifest(repository, tag, mediaType, JSON.stringify(doc));
    return { ...manifest, config, layers };
  }

  /** An OCI index (or a Docker list) over children already added; `attestations` are marked as buildx does. */
  public addIndex(
    repository: string,
    tag: string | null,
    children: readonly (Descriptor & { platform?: Descriptor['platform'] })[],
    options: { format?: 'docker' | 'oci'; attestations?: readonly Descriptor[] } = {},
  ): Descriptor {
    const mediaType = options.format === 'docker' ? MEDIA.dockerList : MEDIA.ociIndex;
    const manifests = [
      ...children.map((c) => ({
        mediaType: c.mediaType,
        digest: c.digest,
        size: c.size,
        platform: c.platform,
      })),
      ...(options.attestations ?? []).map((a) => ({
        mediaType: a.mediaType,
        digest: a.digest,
        size: a.size,
        platform: { architecture: 'unknown', os: 'unknown' },
        annotations: {
          'vnd.docker.reference.type': 'attestation-manifest',
          'vnd.docker.reference.digest': children[0]?.digest ?? '',
        },
      })),
    ];
    return this.addManifest(
      repository,
      tag,
      mediaType,
      JSON.stringify({ schemaVersion: 2, mediaType, manifests }),
    );
  }

  /** Point a tag at a digest (a push of an existing manifest under another tag, or a tag moved). */
  public tag(repository: string, tag: string, digest: string): void {
    this.repo(repository).tags.set(tag, digest);
  }

  /** Remove a manifest's bytes but leave its tags: what a 2.8 delete that failed halfway leaves (dangling tags). */
  public dropManifest(repository: string, digest: string): void {
    this.repo(repository).manifests.delete(digest);
  }

  /** Remove a blob, as a garbage-collect that went wrong would. */
  public dropBlob(repository: string, digest: string): void {
    this.repo(repository).blobs.delete(digest);
  }

  /** Make calls of `op` (on this repository / reference, if given) fail with `error`, `times` times (default always). */
  public fail(
    op: Operation,
    error: Error,
    where: { repository?: string; reference?: string; times?: number } = {},
  ): void {
    this.faults.push({
      op,
      error,
      repository: where.repository,
      reference: where.reference,
      remaining: where.times ?? Infinity,
    });
  }

  // --- inspection ---

  public tagsOf(repository: string): Record<string, string> {
    return Object.fromEntries(
      [...(this.repositories.get(repository)?.tags ?? [])].sort(([a], [b]) => (a < b ? -1 : 1)),
    );
  }

  public repositoryNames(): string[] {
    return [...this.repositories.keys()].sort();
  }

  /** Every manifest the repository holds, tagged or not, by digest (what its storage's revision links list). */
  public manifestsOf(repository: string): string[] {
    return [...(this.repositories.get(repository)?.manifests.keys() ?? [])].sort();
  }

  public hasManifest(repository: string, digest: string): boolean {
    return this.repositories.get(repository)?.manifests.has(digest) ?? false;
  }

  public callsOf(op: Operation): Call[] {
    return this.calls.filter((c) => c.op === op);
  }

  /** Calls that change the registry. */
  public writes(): Call[] {
    return this.calls.filter((c) => c.op === 'deleteManifest' || c.op === 'putManifest');
  }

  // --- the port ---

  public listRepositories(): Promise<string[]> {
    return this.call({ op: 'listRepositories' }, () => [...this.repositories.keys()]);
  }

  public listTags(repository: string): Promise<string[]> {
    return this.call({ op: 'listTags', repository }, () =>
      [...(this.repositories.get(repository)?.tags.keys() ?? [])].sort(),
    );
  }

  public getManifest(repository: string, reference: string): Promise<FetchedManifest | null> {
    return this.call({ op: 'getManifest', repository, reference }, () => {
      const digest = this.resolve(repository, reference);
      const m = digest === undefined ? undefined : this.repositories.get(repository)?.manifests.get(digest);
      return m && digest ? { digest, mediaType: m.mediaType, body: m.body } : null;
    });
  }

  public headManifest(repository: string, reference: string): Promise<string | null> {
    return this.call({ op: 'headManifest', repository, reference }, () => {
      const digest = this.resolve(repository, reference);
      return digest !== undefined && this.hasManifest(repository, digest) ? digest : null;
    });
  }

  public getBlob(repository: string, digest: string): Promise<Uint8Array> {
    return this.call({ op: 'getBlob', repository, reference: digest }, () => {
      const blob = this.repositories.get(repository)?.blobs.get(digest);
      if (!blob)
        throw new RegistryError(`GET blob ${digest} in ${repository}: 404 BLOB_UNKNOWN`, { status: 404 });
      return blob;
    });
  }

  public headBlob(repository: string, digest: string): Promise<boolean> {
    return this.call(
      { op: 'headBlob', repository, reference: digest },
      () => this.repositories.get(repository)?.blobs.has(digest) ?? false,
    );
  }

  public deleteManifest(repository: string, reference: string): Promise<DeleteOutcome> {
    return this.call({ op: 'deleteManifest', repository, reference }, () => {
      if (this.options.deletesEnabled === false) {
        throw new RegistryError('DELETE answered 405 UNSUPPORTED', { status: 405, code: 'UNSUPPORTED' });
      }
      const repo = this.repositories.get(repository);
      if (!reference.startsWith('sha256:')) {
        if (!this.options.tagDelete) {
          throw new RegistryError('DELETE by tag answered 400 DIGEST_INVALID', {
            status: 400,
            code: 'DIGEST_INVALID',
          });
        }
        return repo?.tags.delete(reference) ? 'deleted' : 'not-found';
      }
      if (!repo?.manifests.delete(reference)) return 'not-found';
      for (const [tag, digest] of repo.tags) if (digest === reference) repo.tags.delete(tag);
      return 'deleted';
    });
  }

  public putManifest(
    repository: string,
    reference: string,
    mediaType: string,
    body: Uint8Array,
  ): Promise<string> {
    return this.call({ op: 'putManifest', repository, reference }, () => {
      const digest = sha256(body);
      const repo = this.repo(repository);
      repo.manifests.set(digest, { mediaType, body });
      if (!reference.startsWith('sha256:')) repo.tags.set(reference, digest);
      return digest;
    });
  }

  public probe(repository: string): Promise<ProbeResult> {
    return this.call({ op: 'probe', repository }, () =>
      this.options.deletesEnabled === false
        ? {
            deletesEnabled: false,
            tagDelete: false,
            problem: 'deletes are disabled (storage.delete.enabled: true)',
          }
        : { deletesEnabled: true, tagDelete: this.options.tagDelete ?? false },
    );
  }

  private repo(name: string): Repository {
    let repo = this.repositories.get(name);
    if (!repo) {
      repo = { tags: new Map(), manifests: new Map(), blobs: new Map() };
      this.repositories.set(name, repo);
    }
    return repo;
  }

  private resolve(repository: string, reference: string): string | undefined {
    return reference.startsWith('sha256:')
      ? reference
      : this.repositories.get(repository)?.tags.get(reference);
  }

  /** Record the call, answer with an injected failure if one matches, else with `answer` (asynchronously). */
  private async call<T>(call: Call, answer: () => T): Promise<T> {
    this.calls.push(call);
    await Promise.resolve();
    const fault = this.faults.find(
      (f) =>
        f.op === call.op &&
        f.remaining > 0 &&
        (f.repository === undefined || f.repository === call.repository) &&
        (f.reference === undefined || f.reference === call.reference),
    );
    if (fault) {
      fault.remaining -= 1;
      throw fault.error;
    }
    return answer();
  }
}
