// A CI job promoting images while `apply` runs: it PUTs the exact manifest bytes of an image the plan deletes under
// a NEW tag (what `docker tag old-build release && docker push` does), straight to the registry, at chosen points
// of the janitor's own traffic (which goes through a fault proxy that holds the request meanwhile), and records
// each promotion's tag, digest and time. Afterwards it says which promotions the registry no longer serves.
import { createHash } from 'node:crypto';
import type { FaultProxy } from './fault-proxy.ts';

/** An image the plan deletes: what a promotion pushes again, and what it needs to be served. */
export interface Candidate {
  readonly repository: string;
  readonly digest: string;
  readonly mediaType: string;
  /** The manifest's exact bytes: the promotion pushes these, so the digest is the same. */
  readonly bytes: Uint8Array;
  /** The tags the plan deletes from it. */
  readonly tags: readonly string[];
  /** Everything a pull of it needs besides the manifest: child manifests (an index's) and blobs. */
  readonly needs: readonly { readonly kind: 'manifest' | 'blob'; readonly digest: string }[];
  /** Blobs only this image uses: gone after garbage-collect once it is reclaimed. */
  readonly ownBlobs: readonly string[];
}

/**
 * When a candidate is promoted, relative to the janitor's requests in its repository (through the proxy, which
 * holds that request until the promotion is answered):
 * - `never`: not promoted; it must be reclaimed.
 * - `before-apply`: after planning, before apply starts.
 * - `tags-list`: before the n-th tag listing of its repository goes on (the saved plan's re-read, the re-check
 *   before deleting, whatever the apply reads again).
 * - `first-write`: before the first DELETE or PUT in its repository (after its re-check).
 * - `own-write`: before the first DELETE or PUT that names its digest or one of its planned tags.
 * - `after-own-write`: right after that request was answered, before the janitor hears.
 * - `during-writes`: before the n-th request in its repository after that first write (n = 1 is the one after
 *   it), while the repository's deletes run: a CI job pushing at some moment of them.
 * - `after-apply`: after apply returned.
 * A hook that is never reached (its repository was skipped, say) promotes after apply, and says so.
 */
export type Offset =
  | { readonly kind: 'never' }
  | { readonly kind: 'before-apply' }
  | { readonly kind: 'tags-list'; readonly n: number }
  | { readonly kind: 'first-write' }
  | { readonly kind: 'own-write' }
  | { readonly kind: 'after-own-write' }
  | { readonly kind: 'during-writes'; readonly n: number }
  | { readonly kind: 'after-apply' };

export function offsetLabel(o: Offset): string {
  return o.kind === 'tags-list' || o.kind === 'during-writes' ? `${o.kind} ${o.n}` : o.kind;
}

export interface Promotion {
  readonly candidate: Candidate;
  readonly offset: string;
  /** The new tag. */
  readonly tag: string;
  readonly digest: string;
  /** When the PUT was sent and answered (ms since the epoch). */
  readonly sentAt: number;
  readonly answeredAt: number;
  /** The registry's answer: 201 = pushed. */
  readonly status: number;
  /** What the janitor was about to send (or had just been answered) when this was pushed. */
  readonly at: string;
}

export interface Planned {
  readonly candidate: Candidate;
  readonly offset: Offset;
  /** The tag to promote it to. */
  readonly tag: string;
}

export const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

/** "METHOD /v2/<repo>/<manifests|tags|blobs>/<ref>" as its parts. */
function parseKey(
  key: string,
): { method: string; repository: string; kind: string; ref: string } | undefined {
  const m = /^(\S+) \/v2\/(.+?)\/(manifests|tags|blobs)\/([^?]*)/.exec(key);
  if (!m) return undefined;
  return { method: m[1]!, repository: m[2]!, kind: m[3]!, ref: decodeURIComponent(m[4]!) };
}

/** The promotions of one apply: arm() before it, finish() after. */
export class Promoter {
  readonly promotions: Promotion[] = [];
  private readonly pending = new Set<Planned>();
  private readonly inFlight: Promise<void>[] = [];
  private readonly tagLists = new Map<string, number>();
  /** Per repository, requests since its first write. */
  private readonly sinceWrite = new Map<string, number>();

  constructor(
    private readonly registryUrl: string,
    private readonly proxy: FaultProxy,
    private readonly plan: readonly Planned[],
  ) {}

  /** Promote the `before-apply` ones now and watch the janitor's requests for the others. */
  async arm(): Promise<void> {
    for (const p of this.plan) if (p.offset.kind !== 'never') this.pending.add(p);
    await Promise.all(
      this.take((p) => p.offset.kind === 'before-apply').map((p) => this.promote(p, 'before apply')),
    );
    this.proxy.observe({
      request: (key) => this.onRequest(key),
      response: (key) => this.onResponse(key),
    });
  }

  /** After apply: stop watching, promote the `after-apply` ones and every one whose point never came. */
  async finish(): Promise<Promotion[]> {
    this.proxy.observe(undefined);
    await Promise.all(this.inFlight);
    const left = this.take(() => true);
    await Promise.all(
      left.map((p) =>
        this.promote(
          p,
          p.offset.kind === 'after-apply' ? 'after apply' : 'after apply (its point never came)',
        ),
      ),
    );
    return this.promotions;
  }

  private take(match: (p: Planned) => boolean): Planned[] {
    const out = [...this.pending].filter(match);
    for (const p of out) this.pending.delete(p);
    return out;
  }

  private async onRequest(key: string): Promise<void> {
    const k = parseKey(key);
    if (!k) return;
    const due: Planned[] = [];
    const mine = (p: Planned): boolean => p.candidate.repository === k.repository;
    if (k.kind === 'tags') {
      const count = (this.tagLists.get(k.repository) ?? 0) + 1;
      this.tagLists.set(k.repository, count);
      due.push(...this.take((p) => mine(p) && p.offset.kind === 'tags-list' && p.offset.n === count));
    }
    const sinceWrite = this.sinceWrite.get(k.repository);
    if (sinceWrite !== undefined) {
      this.sinceWrite.set(k.repository, sinceWrite + 1);
      due.push(
        ...this.take((p) => mine(p) && p.offset.kind === 'during-writes' && p.offset.n === sinceWrite + 1),
      );
    }
    if (k.kind === 'manifests' && (k.method === 'DELETE' || k.method === 'PUT')) {
      if (sinceWrite === undefined) {
        this.sinceWrite.set(k.repository, 0);
        due.push(...this.take((p) => mine(p) && p.offset.kind === 'first-write'));
      }
      due.push(...this.take((p) => mine(p) && p.offset.kind === 'own-write' && names(p.candidate, k.ref)));
    }
    if (due.length > 0) await this.promoteAll(due, `before ${key}`);
  }

  private async onResponse(key: string): Promise<void> {
    const k = parseKey(key);
    if (!k || k.kind !== 'manifests' || (k.method !== 'DELETE' && k.method !== 'PUT')) return;
    const due = this.take(
      (p) =>
        p.candidate.repository === k.repository &&
        p.offset.kind === 'after-own-write' &&
        names(p.candidate, k.ref),
    );
    if (due.length > 0) await this.promoteAll(due, `after ${key} was answered`);
  }

  private promoteAll(due: readonly Planned[], at: string): Promise<void> {
    const done = Promise.all(due.map((p) => this.promote(p, at))).then(() => undefined);
    this.inFlight.push(done);
    return done;
  }

  private async promote(p: Planned, at: string): Promise<void> {
    const sentAt = Date.now();
    let status: number;
    try {
      const res = await fetch(`${this.registryUrl}/v2/${p.candidate.repository}/manifests/${p.tag}`, {
        method: 'PUT',
        body: p.candidate.bytes,
        headers: { 'content-type': p.candidate.mediaType },
      });
      await res.arrayBuffer();
      status = res.status;
    } catch {
      status = 0;
    }
    this.promotions.push({
      candidate: p.candidate,
      offset: offsetLabel(p.offset),
      tag: p.tag,
      digest: p.candidate.digest,
      sentAt,
      answeredAt: Date.now(),
      status,
      at,
    });
  }
}

function names(c: Candidate, ref: string): boolean {
  return ref === c.digest || c.tags.includes(ref);
}

/**
 * Offsets for one round. A promotion before a repository's re-check makes apply skip that whole repository (a new
 * tag since planning), which would hide every later point there; so one repository per round (`shift` picks it)
 * is promoted early (before apply, or at its first or second tag listing), and every other repository gets the
 * points after its re-check in turn: at its first write, at each candidate's own write and right after it, at the
 * n-th request after its first write (unless `during` is false), after apply, and never.
 */
export function spreadOffsets(
  candidates: readonly Candidate[],
  options: { shift: number; tagPrefix: string; during?: boolean },
): Planned[] {
  const repositories = [...new Set(candidates.map((c) => c.repository))];
  const early = repositories[options.shift % repositories.length];
  const earlyKinds: Offset[] = [
    { kind: 'before-apply' },
    { kind: 'tags-list', n: 1 },
    { kind: 'tags-list', n: 2 },
  ];
  const later: Offset['kind'][] = [
    'own-write',
    'during-writes',
    'after-own-write',
    'never',
    'first-write',
    'own-write',
    'during-writes',
    'after-apply',
  ];
  let turn = options.shift;
  let during = 0;
  return candidates.map((candidate, i) => {
    let offset: Offset;
    if (candidate.repository === early) {
      const first = candidates.findIndex((c) => c.repository === early) === i;
      offset = first
        ? earlyKinds[options.shift % earlyKinds.length]!
        : { kind: i % 2 ? 'never' : 'after-apply' };
    } else {
      let kind = later[turn++ % later.length]!;
      if (kind === 'during-writes' && options.during === false) kind = 'own-write';
      offset =
        kind === 'during-writes'
          ? { kind, n: 1 + ((during++ * 3 + options.shift) % 12) }
          : ({ kind } as Offset);
    }
    return { candidate, offset, tag: `${options.tagPrefix}${i}` };
  });
}

async function sha256Of(res: Response): Promise<string> {
  const body = Buffer.from(await res.arrayBuffer());
  return 'sha256:' + createHash('sha256').update(body).digest('hex');
}

/**
 * Why a pull of `repository:reference` would fail now (manifest by that reference with the right digest and bytes,
 * every child manifest and blob it needs with the right content), or undefined when it is served whole.
 */
export async function whyNotServed(
  registryUrl: string,
  c: Candidate,
  reference: string,
): Promise<string | undefined> {
  const res = await fetch(`${registryUrl}/v2/${c.repository}/manifests/${reference}`, {
    headers: { accept: MANIFEST_ACCEPT },
  });
  if (res.status !== 200) {
    await res.arrayBuffer();
    return `${c.repository}:${reference} answers ${res.status}`;
  }
  const got = await sha256Of(res);
  if (got !== c.digest) return `${c.repository}:${reference} is ${got}, not ${c.digest}`;
  for (const need of c.needs) {
    const r = await fetch(
      `${registryUrl}/v2/${c.repository}/${need.kind === 'blob' ? 'blobs' : 'manifests'}/${need.digest}`,
      { headers: { accept: MANIFEST_ACCEPT } },
    );
    if (r.status !== 200) {
      await r.arrayBuffer();
      return `${c.repository}:${reference} needs ${need.kind} ${need.digest}, which answers ${r.status}`;
    }
    const d = await sha256Of(r);
    if (d !== need.digest) return `${c.repository} ${need.kind} ${need.digest} is served as ${d}`;
  }
  return undefined;
}

/** The accepted promotions the registry no longer serves whole, with why. */
export async function lostPromotions(
  registryUrl: string,
  promotions: readonly Promotion[],
): Promise<{ promotion: Promotion; why: string }[]> {
  const lost: { promotion: Promotion; why: string }[] = [];
  for (const p of promotions) {
    if (p.status !== 201) continue;
    const why = await whyNotServed(registryUrl, p.candidate, p.tag);
    if (why !== undefined) lost.push({ promotion: p, why });
  }
  return lost;
}

/** Candidates (never promoted) that the registry still has: the manifest by digest, or a blob of its own. */
export async function notReclaimed(registryUrl: string, candidates: readonly Candidate[]): Promise<string[]> {
  const left: string[] = [];
  for (const c of candidates) {
    const m = await fetch(`${registryUrl}/v2/${c.repository}/manifests/${c.digest}`, {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (m.status !== 404) left.push(`${c.repository}@${c.digest}: manifest answers ${m.status}`);
    for (const b of c.ownBlobs) {
      const r = await fetch(`${registryUrl}/v2/${c.repository}/blobs/${b}`, { method: 'HEAD' });
      if (r.status !== 404) left.push(`${c.repository}@${c.digest}: its blob ${b} answers ${r.status}`);
    }
  }
  return left;
}

/**
 * Read an image as the registry serves it: its exact bytes and media type, and everything a pull needs (for an
 * index, its children and theirs). `ownBlobs` is left empty: `withOwnBlobs` fills it from all images read.
 */
export async function readCandidate(
  registryUrl: string,
  repository: string,
  digest: string,
  tags: readonly string[],
): Promise<Candidate> {
  const needs: { kind: 'manifest' | 'blob'; digest: string }[] = [];
  const read = async (ref: string): Promise<{ bytes: Uint8Array; mediaType: string }> => {
    const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${ref}`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`reading ${repository}@${ref}: ${res.status}`);
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
      config?: { digest: string };
      layers?: { digest: string }[];
      manifests?: { digest: string }[];
    };
    for (const b of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])])
      needs.push({ kind: 'blob', digest: b.digest });
    for (const child of doc.manifests ?? []) {
      needs.push({ kind: 'manifest', digest: child.digest });
      await read(child.digest);
    }
    return { bytes, mediaType: res.headers.get('content-type') ?? '' };
  };
  const { bytes, mediaType } = await read(digest);
  return { repository, digest, mediaType, bytes, tags, needs, ownBlobs: [] };
}

/** Each candidate's blobs that no other image read (candidate or kept) uses. */
export function withOwnBlobs(candidates: readonly Candidate[], others: readonly Candidate[]): Candidate[] {
  const users = new Map<string, number>();
  for (const c of [...candidates, ...others])
    for (const b of new Set(
      c.needs.filter((n) => n.kind === 'blob').map((n) => `${c.repository} ${n.digest}`),
    ))
      users.set(b, (users.get(b) ?? 0) + 1);
  return candidates.map((c) => ({
    ...c,
    ownBlobs: [
      ...new Set(
        c.needs
          .filter((n) => n.kind === 'blob' && users.get(`${c.repository} ${n.digest}`) === 1)
          .map((n) => n.digest),
      ),
    ],
  }));
}
