// An in-process RegistryClient that makes up a registry of the benchmark's shape on demand (no HTTP, nothing
// stored per tag), so the memory of scanning and planning 100,000 tags can be measured without seeding them.
import type { DeleteOutcome, FetchedManifest, ProbeResult, RegistryClient } from '../../lambda/core/ports.ts';
import { createdAt, isMultiArch, repoName, tagName, type SeedShape } from './seed-bench.ts';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

const ARCHES = ['amd64', 'arm64'] as const;

// Manifests and configs are asked for by digest too. Their digests spell out what they are (kind, repository,
// tag, platform), so nothing per tag is remembered here and the memory measured is the scanner's and the
// planner's alone. (Nothing in the core hashes what it is given; the HTTP client does, and is not used here.)
type Kind = 'a' | 'b' | 'c' | 'd' | 'e' | 'f'; // image, index, config, index child, layer, base layer
function positional(kind: Kind, r: number, i: number, arch: string): string {
  const hex = `${kind}${r.toString(16).padStart(8, '0')}${i.toString(16).padStart(8, '0')}${ARCHES.indexOf(arch as 'amd64')}`;
  return flat('sha256:' + hex.padEnd(64, '0'));
}

/**
 * A string in one piece, as JSON.parse and HTTP headers hand them out: concatenation makes a rope that keeps
 * its parts alive, which would charge the scanner for memory a real registry's answers never cost.
 */
function flat(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

function unpositional(kind: Kind, digest: string): { r: number; i: number; arch: string } | undefined {
  const m = new RegExp(`^sha256:${kind}([0-9a-f]{8})([0-9a-f]{8})([01])0{46}$`).exec(digest);
  if (!m) return undefined;
  return { r: parseInt(m[1]!, 16), i: parseInt(m[2]!, 16), arch: ARCHES[Number(m[3])]! };
}

interface Made {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Uint8Array;
}

/**
 * `deletable`: manifest DELETEs succeed and what they deleted is gone for the rest of the process (its tags too),
 * so a real run's apply, verify and report steps can be measured; each process starts from the whole registry
 * again, as nothing is stored.
 */
export interface SyntheticOptions {
  readonly deletable?: boolean;
}

export class SyntheticRegistry implements RegistryClient {
  public readonly baseUrl = 'http://synthetic.invalid';
  public readonly counts = { catalog: 0, tags: 0, manifestGet: 0, manifestHead: 0, blobGet: 0 };
  private readonly repoIndex = new Map<string, number>();
  /** `<repository>@<digest>` of what was deleted (deletable only). */
  private readonly deleted = new Set<string>();

  public constructor(
    private readonly shape: SeedShape,
    private readonly options: SyntheticOptions = {},
  ) {
    for (let r = 0; r < shape.repos; r++) this.repoIndex.set(repoName(r), r);
  }

  private configOf(r: number, i: number, arch: string): string {
    return JSON.stringify({
      architecture: arch,
      os: 'linux',
      created: createdAt(i),
      config: { Labels: { seed: `${repoName(r)}:${tagName(i)}/${arch}` } },
    });
  }

  private image(r: number, i: number, arch: string): Made {
    const config = this.configOf(r, i, arch);
    const configDigest = positional('c', r, i, arch);
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, digest: configDigest, size: config.length },
      layers: [
        { mediaType: DOCKER_LAYER, digest: positional('f', r, 0, 'amd64'), size: 256 },
        { mediaType: DOCKER_LAYER, digest: positional('e', r, i, arch), size: 96 },
      ],
    });
    const digest = positional(isMultiArch(r) ? 'd' : 'a', r, i, arch);
    return { digest, mediaType: DOCKER_MANIFEST, body: Buffer.from(body) };
  }

  private tagged(r: number, i: number): Made {
    if (!isMultiArch(r)) return this.image(r, i, 'amd64');
    const manifests = ARCHES.map((arch) => {
      const child = this.image(r, i, arch);
      return {
        mediaType: DOCKER_MANIFEST,
        digest: child.digest,
        size: child.body.byteLength,
        platform: { architecture: arch, os: 'linux' },
      };
    });
    const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
    return { digest: positional('b', r, i, 'amd64'), mediaType: OCI_INDEX, body: Buffer.from(body) };
  }

  private lookup(repository: string, reference: string): Made | null {
    const made = this.made(repository, reference);
    return made && !this.deleted.has(`${repository}@${made.digest}`) ? made : null;
  }

  private made(repository: string, reference: string): Made | null {
    const r = this.repoIndex.get(repository);
    if (r === undefined) return null;
    if (reference === 'latest') return this.shape.tags > 0 ? this.tagged(r, this.shape.tags - 1) : null;
    const m = /^v1\.(\d{4})$/.exec(reference);
    if (m) {
      const i = Number(m[1]);
      return i < this.shape.tags ? this.tagged(r, i) : null;
    }
    const image = unpositional('a', reference) ?? unpositional('d', reference);
    if (image && image.r === r && image.i < this.shape.tags) return this.image(r, image.i, image.arch);
    const index = unpositional('b', reference);
    if (index && index.r === r && index.i < this.shape.tags && isMultiArch(r)) return this.tagged(r, index.i);
    return null;
  }

  public listRepositories(): Promise<string[]> {
    this.counts.catalog++;
    return Promise.resolve([...this.repoIndex.keys()]);
  }

  public listTags(repository: string): Promise<string[]> {
    this.counts.tags++;
    const tags = Array.from({ length: this.shape.tags }, (_, i) => flat(tagName(i)));
    if (this.shape.tags > 0) tags.push('latest');
    if (!this.repoIndex.has(repository)) return Promise.resolve([]);
    const live = this.deleted.size === 0 ? tags : tags.filter((t) => this.lookup(repository, t) !== null);
    return Promise.resolve(live.sort());
  }

  public getManifest(repository: string, reference: string): Promise<FetchedManifest | null> {
    this.counts.manifestGet++;
    return Promise.resolve(this.lookup(repository, reference));
  }

  public headManifest(repository: string, reference: string): Promise<string | null> {
    this.counts.manifestHead++;
    return Promise.resolve(this.lookup(repository, reference)?.digest ?? null);
  }

  public getBlob(_repository: string, digest: string): Promise<Uint8Array> {
    this.counts.blobGet++;
    const c = unpositional('c', digest);
    if (!c) return Promise.reject(new Error(`synthetic registry has no blob ${digest}`));
    return Promise.resolve(Buffer.from(this.configOf(c.r, c.i, c.arch)));
  }

  public headBlob(): Promise<boolean> {
    return Promise.resolve(true);
  }

  public deleteManifest(repository: string, reference: string): Promise<DeleteOutcome> {
    if (!this.options.deletable) return Promise.reject(new Error('the synthetic registry is read-only'));
    const made = this.lookup(repository, reference);
    if (!made) return Promise.resolve('not-found');
    this.deleted.add(`${repository}@${made.digest}`);
    return Promise.resolve('deleted');
  }

  public putManifest(): Promise<string> {
    return Promise.reject(new Error('the synthetic registry is read-only'));
  }

  public probe(): Promise<ProbeResult> {
    if (this.options.deletable) return Promise.resolve({ deletesEnabled: true, tagDelete: false });
    return Promise.resolve({ deletesEnabled: false, problem: 'synthetic', tagDelete: false });
  }
}
