// The Registry HTTP API V2 client (undici): one keep-alive pool per registry, bounded concurrency, retries
// with backoff, lazy auth discovery, pagination, manifest type/digest checks, and the pre-delete probe.
import { createHash, randomBytes } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import pLimit, { type LimitFunction } from 'p-limit';
import { Agent, type Dispatcher } from 'undici';
import { AuthError, ConfigError, JanitorError, RegistryError, errorMessage } from '../core/errors.ts';
import {
  DEFAULT_CONCURRENCY,
  type DeleteOutcome,
  type FetchedManifest,
  type ProbeResult,
  type RegistryClient,
} from '../core/ports.ts';
import { RegistryAuth, type SentAuth, type TokenAnswer } from './registry-auth.ts';

/** The four manifest types distribution serves only when asked for by exact name (REGISTRY-FACTS §2). */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
] as const;

/** Asked for too, so 2.8 serves legacy schema1 manifests as stored instead of converting them. */
export const SCHEMA1_MEDIA_TYPES = [
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v1+json',
] as const;

const ACCEPT_MANIFESTS = [...MANIFEST_MEDIA_TYPES, ...SCHEMA1_MEDIA_TYPES].join(', ');
const ACCEPTED_TYPES = new Set<string>([...MANIFEST_MEDIA_TYPES, ...SCHEMA1_MEDIA_TYPES]);
const SCHEMA1_TYPES = new Set<string>(SCHEMA1_MEDIA_TYPES);

/** A digest no manifest can have; DELETE of it tells whether deletes are enabled without touching anything. */
export const PROBE_DIGEST = 'sha256:' + '0'.repeat(64);

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_BLOB_BYTES = 4 * 1024 * 1024;
const MAX_LIST_BYTES = 32 * 1024 * 1024;
const MAX_ERROR_BYTES = 64 * 1024;
const CATALOG_PAGE = 1000;
const MAX_REDIRECTS = 5;
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 10_000;
/** Longest Retry-After we honour; a Lambda cannot wait an hour. */
const RETRY_AFTER_CAP_MS = 60_000;

export interface RegistryClientOptions {
  /** Registry base URL: http(s)://host[:port], no path. */
  url: string;
  username?: string;
  password?: string;
  /** PEM bundle of extra CAs to trust (added to Node's built-in roots). */
  caPem?: string;
  /** Skip TLS verification: only for self-signed test setups. */
  insecure?: boolean;
  /** Max connections AND max requests in flight. @default DEFAULT_CONCURRENCY */
  concurrency?: number;
  /** Per-request timeout (connect, headers, body, and the whole exchange). @default 30000 */
  timeoutMs?: number;
  /** Retries after the first attempt, for connection errors, 429 and 5xx. @default 4 */
  retries?: number;
  /** Transport to use instead of our own Agent (tests pass a MockAgent). Not closed by close(). */
  dispatcher?: Dispatcher;
  /** Actions asked of the token server for repositories. @default 'pull,delete' */
  actions?: 'pull' | 'pull,delete';
  userAgent?: string;
  /** Wait between retries (injectable so tests do not really wait). */
  sleep?: (ms: number) => Promise<void>;
  /** Clock in ms for token expiry and Retry-After dates. @default Date.now */
  now?: () => number;
}

/** Requests sent, by kind (retries and auth round trips included), plus how many were retries. */
export interface RegistryClientStats {
  catalog: number;
  tags: number;
  manifestGet: number;
  manifestHead: number;
  blobGet: number;
  blobHead: number;
  delete: number;
  put: number;
  token: number;
  retries: number;
}

type Kind = Exclude<keyof RegistryClientStats, 'retries'>;

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly url: string;
}

interface CallOptions {
  readonly scope?: string;
  readonly accept?: string;
  readonly contentType?: string;
  readonly body?: Uint8Array;
  readonly maxBytes?: number;
  readonly followRedirects?: boolean;
  /** DELETE is retried only when the request cannot have reached the registry, or on 429. */
  readonly retryPolicy?: 'idempotent' | 'delete';
  /** No registry auth (token-server requests). */
  readonly noAuth?: boolean;
  readonly authorization?: string;
}

// distribution's reference grammar (reference/regexp.go): an optional domain, then path components.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HASHES: Record<string, string> = { sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };

/** Throws ConfigError unless `name` is a repository name distribution can serve (it goes into URL paths raw). */
export function assertRepositoryName(name: string): void {
  if (name.length === 0 || name.length > 255 || !NAME_RE.test(name)) {
    throw new ConfigError(
      `"${name}" is not a valid repository name: use lowercase path components of [a-z0-9] joined by ".", "_", ` +
        '"__" or "-", separated by "/" (at most 255 characters)',
    );
  }
}

/** Throws ConfigError unless `reference` is a tag or a digest. */
export function assertReference(reference: string): void {
  if (!TAG_RE.test(reference) && !DIGEST_RE.test(reference)) {
    throw new ConfigError(
      `"${reference}" is neither a tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}) nor a digest (algorithm:hex)`,
    );
  }
}

function isDigest(reference: string): boolean {
  return reference.includes(':');
}

/** sha256 (or the digest's own algorithm) of `data`, as `algo:hex`. */
function digestOf(data: Uint8Array, algorithm = 'sha256'): string {
  const algo = HASHES[algorithm];
  if (!algo)
    throw new RegistryError(`cannot verify digests of algorithm "${algorithm}" (only sha256/384/512)`);
  return `${algorithm}:${createHash(algo).update(data).digest('hex')}`;
}

function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The first registry error of an error body (`{"errors":[{code,message}]}`), when there is one. */
function registryError(ans: Answer): { code: string; message: string } | undefined {
  const text = ans.body.toString('utf8').trim();
  if (!text.startsWith('{')) return undefined;
  try {
    const doc = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = Array.isArray(doc.errors) ? doc.errors[0] : undefined;
    if (first && typeof first.code === 'string') {
      return { code: first.code, message: typeof first.message === 'string' ? first.message : '' };
    }
  } catch {
    // not a registry error body
  }
  return undefined;
}

function bodyPreview(ans: Answer): string {
  const text = ans.body.toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > 160 ? text.slice(0, 160) + '…' : text;
}

/** A 404 from distribution always carries its JSON error; an HTML or text 404 comes from something else. */
function isRegistry404(ans: Answer): boolean {
  return ans.status === 404 && (ans.body.length === 0 || registryError(ans) !== undefined);
}

/** `Link: <url>; rel="next"` → the URL, or undefined. */
export function nextLink(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const re = /<([^>]*)>((?:\s*;\s*[^;,]+)*)/g;
  for (let m = re.exec(header); m; m = re.exec(header)) {
    const params = m[2] ?? '';
    if (/;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?/i.test(params)) return m[1];
  }
  return undefined;
}

/** Retry-After as milliseconds (seconds or an HTTP date), or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, RETRY_AFTER_CAP_MS);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - now), RETRY_AFTER_CAP_MS);
}

const CONNECTION_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_ABORTED',
  'UND_ERR_CLOSED',
]);
/** Failures before the request could have reached the registry: safe to retry even a DELETE. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL|EPROTO/;

function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const rec = e as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown };
    if (typeof rec.code === 'string') codes.push(rec.code);
    if (rec.name === 'TimeoutError' || rec.name === 'AbortError') codes.push('UND_ERR_ABORTED');
    if (Array.isArray(rec.errors)) for (const inner of rec.errors) codes.push(...errorCodes(inner));
    e = rec.cause;
  }
  return codes;
}

function describeCause(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    const inner = (e as { errors?: unknown }).errors;
    // Happy-eyeballs connects fail with an AggregateError whose own message is empty.
    const msg =
      Array.isArray(inner) && inner.length > 0 ? inner.map(errorMessage).join('; ') : errorMessage(e);
    if (msg && !parts.includes(msg)) parts.push(msg);
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join(': ') || String(err);
}

function normaliseHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Build the client. One per registry per process: it owns the connection pool. */
export function createRegistryClient(options: RegistryClientOptions): RegistryHttpClient {
  return new RegistryHttpClient(options);
}

export class RegistryHttpClient implements RegistryClient {
  public readonly baseUrl: string;
  private readonly origin: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownAgent: Agent | undefined;
  private readonly limit: LimitFunction;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly actions: string;
  private readonly userAgent: string;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly auth: RegistryAuth;
  private readonly counts: RegistryClientStats = {
    catalog: 0,
    tags: 0,
    manifestGet: 0,
    manifestHead: 0,
    blobGet: 0,
    blobHead: 0,
    delete: 0,
    put: 0,
    token: 0,
    retries: 0,
  };

  public constructor(options: RegistryClientOptions) {
    this.baseUrl = validateBaseUrl(options.url);
    this.origin = new URL(this.baseUrl).origin;
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1024) {
      throw new ConfigError(`concurrency must be a whole number from 1 to 1024 (got ${concurrency})`);
    }
    this.timeoutMs = options.timeoutMs ?? 30_000;
    if (!(this.timeoutMs > 0)) throw new ConfigError(`timeoutMs must be above 0 (got ${this.timeoutMs})`);
    this.retries = options.retries ?? 4;
    if (!Number.isInteger(this.retries) || this.retries < 0) {
      throw new ConfigError(`retries must be a whole number ≥ 0 (got ${this.retries})`);
    }
    if ((options.username === undefined) !== (options.password === undefined)) {
      throw new ConfigError('give both a username and a password for the registry, or neither');
    }
    this.actions = options.actions ?? 'pull,delete';
    this.userAgent = options.userAgent ?? 'registry-janitor';
    this.sleep = options.sleep ?? defaultSleep;
    this.now = options.now ?? Date.now;
    this.limit = pLimit(concurrency);
    if (options.dispatcher) {
      this.dispatcher = options.dispatcher;
    } else {
      this.ownAgent = new Agent({
        connections: concurrency,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 600_000,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        connect: {
          // Extra CAs are added to the public roots: the token realm may be on a publicly signed host.
          ...(options.caPem !== undefined ? { ca: [...rootCertificates, options.caPem] } : {}),
          rejectUnauthorized: options.insecure !== true,
          timeout: this.timeoutMs,
        },
      });
      this.dispatcher = this.ownAgent;
    }
    this.auth = new RegistryAuth({
      ...(options.username !== undefined ? { username: options.username, password: options.password } : {}),
      fetchToken: (url, authorization) => this.fetchToken(url, authorization),
      now: this.now,
    });
  }

  /** Close our connection pool (a dispatcher passed in is left to its owner). */
  public async close(): Promise<void> {
    await this.ownAgent?.close();
  }

  /** Request counts so far, by kind. */
  public stats(): RegistryClientStats {
    return { ...this.counts };
  }

  private repoScope(repository: string, extra?: string): string {
    const actions = extra ? [...this.actions.split(','), extra] : this.actions.split(',');
    // Keep the order distribution uses in its own challenges: pull, push, delete.
    const order = ['pull', 'push', 'delete'];
    const sorted = [...new Set(actions)].sort((a, b) => order.indexOf(a) - order.indexOf(b));
    return `repository:${repository}:${sorted.join(',')}`;
  }

  public async listRepositories(): Promise<string[]> {
    const out: string[] = [];
    let path: string | undefined = `/v2/_catalog?n=${CATALOG_PAGE}`;
    let first = true;
    const seen = new Set<string>();
    while (path !== undefined) {
      if (seen.has(path)) throw this.loopError(path);
      seen.add(path);
      const ans = await this.call('catalog', 'GET', path, {
        scope: 'registry:catalog:*',
        accept: 'application/json',
        maxBytes: MAX_LIST_BYTES,
      });
      if (first && ans.status === 400 && registryError(ans)?.code === 'PAGINATION_NUMBER_INVALID') {
        // catalog.maxentries is below our page size: let the registry pick its own page size.
        first = false;
        path = '/v2/_catalog';
        continue;
      }
      first = false;
      if (ans.status === 404) {
        throw new RegistryError(
          `${ans.url} answered 404: the registry does not serve the catalog API. Point the janitor at the ` +
            'registry itself (not a proxy or mirror that hides /v2/_catalog)',
          { status: 404, code: registryError(ans)?.code, url: ans.url },
        );
      }
      if (ans.status !== 200) throw this.unexpected('GET', ans);
      const doc = this.json(ans) as { repositories?: unknown };
      const repos = doc.repositories ?? null;
      if (repos !== null && !(Array.isArray(repos) && repos.every((r) => typeof r === 'string'))) {
        throw new RegistryError(`${ans.url} answered a catalog whose "repositories" is not a list of names`, {
          status: ans.status,
          url: ans.url,
        });
      }
      for (const name of repos ?? []) {
        assertRepositoryName(name);
        out.push(name);
      }
      path = this.nextPath(ans);
    }
    return out;
  }

  public async listTags(repository: string): Promise<string[]> {
    assertRepositoryName(repository);
    // No `n`: v3.1.0 answers 400 above tags.maxtags, and without it every version sends all tags.
    let path: string | undefined = `/v2/${repository}/tags/list`;
    const tags = new Set<string>();
    const seen = new Set<string>();
    while (path !== undefined) {
      if (seen.has(path)) throw this.loopError(path);
      seen.add(path);
      const ans = await this.call('tags', 'GET', path, {
        scope: this.repoScope(repository),
        accept: 'application/json',
        maxBytes: MAX_LIST_BYTES,
      });
      if (ans.status === 404 && registryError(ans)?.code === 'NAME_UNKNOWN') break;
      if (ans.status !== 200) throw this.unexpected('GET', ans);
      const doc = this.json(ans) as { tags?: unknown };
      const list = doc.tags ?? null;
      if (list !== null && !(Array.isArray(list) && list.every((t) => typeof t === 'string'))) {
        throw new RegistryError(`${ans.url} answered a tag list whose "tags" is not a list of names`, {
          status: ans.status,
          url: ans.url,
        });
      }
      for (const tag of list ?? []) tags.add(tag);
      path = this.nextPath(ans);
    }
    // 2.8 serves tags unsorted; tags are ASCII, so the default (UTF-16) order is code-point order.
    return [...tags].sort();
  }

  public async getManifest(repository: string, reference: string): Promise<FetchedManifest | null> {
    assertRepositoryName(repository);
    assertReference(reference);
    const ans = await this.call('manifestGet', 'GET', `/v2/${repository}/manifests/${reference}`, {
      scope: this.repoScope(repository),
      accept: ACCEPT_MANIFESTS,
      maxBytes: MAX_MANIFEST_BYTES,
    });
    if (isRegistry404(ans)) return null;
    if (ans.status !== 200) throw this.unexpected('GET', ans);
    const mediaType = this.checkManifestType(ans);
    const header = ans.headers['docker-content-digest'];
    const schema1 = SCHEMA1_TYPES.has(mediaType);
    let digest: string;
    if (header === undefined || header === '') {
      if (schema1) {
        throw new RegistryError(
          `${ans.url} served a schema1 manifest without Docker-Content-Digest; its digest cannot be computed from the ` +
            'signed body, so it cannot be handled safely',
          { status: ans.status, url: ans.url },
        );
      }
      digest = digestOf(ans.body);
    } else {
      digest = header.trim();
      if (!DIGEST_RE.test(digest)) {
        throw new RegistryError(`${ans.url} answered a malformed Docker-Content-Digest "${digest}"`, {
          url: ans.url,
        });
      }
      if (!schema1) {
        const actual = digestOf(ans.body, digest.split(':')[0]);
        if (actual !== digest) {
          throw new RegistryError(
            `${ans.url} served a manifest whose bytes hash to ${actual} but Docker-Content-Digest says ${digest}: ` +
              'something between us and the registry changes responses (a proxy rewriting or truncating bodies?)',
            { status: ans.status, code: 'DIGEST_MISMATCH', url: ans.url },
          );
        }
      }
    }
    this.checkRequestedDigest(reference, digest, ans.url);
    return { digest, mediaType, body: new Uint8Array(ans.body) };
  }

  public async headManifest(repository: string, reference: string): Promise<string | null> {
    assertRepositoryName(repository);
    assertReference(reference);
    const ans = await this.call('manifestHead', 'HEAD', `/v2/${repository}/manifests/${reference}`, {
      scope: this.repoScope(repository),
      accept: ACCEPT_MANIFESTS,
    });
    if (ans.status === 404) return null;
    if (ans.status !== 200) throw this.unexpected('HEAD', ans);
    this.checkManifestType(ans);
    const digest = ans.headers['docker-content-digest']?.trim();
    if (!digest || !DIGEST_RE.test(digest)) {
      throw new RegistryError(
        `HEAD ${ans.url} answered without a valid Docker-Content-Digest (${JSON.stringify(digest ?? null)}): ` +
          'a proxy in front of the registry may be stripping headers',
        { status: ans.status, url: ans.url },
      );
    }
    this.checkRequestedDigest(reference, digest, ans.url);
    return digest;
  }

  public async getBlob(repository: string, digest: string): Promise<Uint8Array> {
    assertRepositoryName(repository);
    if (!DIGEST_RE.test(digest)) throw new ConfigError(`"${digest}" is not a digest (algorithm:hex)`);
    const ans = await this.call('blobGet', 'GET', `/v2/${repository}/blobs/${digest}`, {
      scope: this.repoScope(repository),
      maxBytes: MAX_BLOB_BYTES,
      followRedirects: true,
    });
    if (ans.status === 404) {
      throw new RegistryError(`blob ${digest} is missing from ${repository} (404 on ${ans.url})`, {
        status: 404,
        code: registryError(ans)?.code ?? 'BLOB_UNKNOWN',
        url: ans.url,
      });
    }
    if (ans.status !== 200) throw this.unexpected('GET', ans);
    const actual = digestOf(ans.body, digest.split(':')[0]);
    if (actual !== digest) {
      throw new RegistryError(
        `blob ${digest} from ${ans.url} hashes to ${actual}: the download was altered or cut`,
        {
          status: ans.status,
          code: 'DIGEST_MISMATCH',
          url: ans.url,
        },
      );
    }
    return new Uint8Array(ans.body);
  }

  /** HEAD a blob (following storage redirects). Note 2.8's in-memory blob cache answers 200 until a restart. */
  public async headBlob(repository: string, digest: string): Promise<boolean> {
    assertRepositoryName(repository);
    if (!DIGEST_RE.test(digest)) throw new ConfigError(`"${digest}" is not a digest (algorithm:hex)`);
    const ans = await this.call('blobHead', 'HEAD', `/v2/${repository}/blobs/${digest}`, {
      scope: this.repoScope(repository),
      followRedirects: true,
    });
    if (ans.status === 200) return true;
    if (ans.status === 404) return false;
    throw this.unexpected('HEAD', ans);
  }

  public async deleteManifest(repository: string, reference: string): Promise<DeleteOutcome> {
    assertRepositoryName(repository);
    assertReference(reference);
    const ans = await this.call('delete', 'DELETE', `/v2/${repository}/manifests/${reference}`, {
      scope: this.repoScope(repository),
      retryPolicy: 'delete',
      maxBytes: MAX_ERROR_BYTES,
    });
    if (ans.status === 202 || ans.status === 200 || ans.status === 204) return 'deleted';
    if (isRegistry404(ans)) return 'not-found';
    if (ans.status === 405) {
      const problem = this.deleteRefusal(ans);
      throw new RegistryError(`DELETE ${ans.url} was refused: ${problem.message}`, {
        status: 405,
        code: problem.code,
        url: ans.url,
      });
    }
    const err = registryError(ans);
    if (
      ans.status === 400 &&
      !isDigest(reference) &&
      (err?.code === 'DIGEST_INVALID' || err?.code === 'UNSUPPORTED')
    ) {
      throw new RegistryError(
        `DELETE ${ans.url}: this registry cannot delete by tag (distribution before v3 answers ${err.code}); ` +
          'delete by digest instead',
        { status: 400, code: 'TAG_DELETE_UNSUPPORTED', url: ans.url },
      );
    }
    // A 5xx is not retried: 2.8 can fail after deleting, so the caller must re-check what happened.
    throw this.unexpected('DELETE', ans);
  }

  public async putManifest(
    repository: string,
    reference: string,
    mediaType: string,
    body: Uint8Array,
  ): Promise<string> {
    assertRepositoryName(repository);
    assertReference(reference);
    const ans = await this.call('put', 'PUT', `/v2/${repository}/manifests/${reference}`, {
      scope: this.repoScope(repository, 'push'),
      contentType: mediaType,
      body,
      maxBytes: MAX_ERROR_BYTES,
    });
    if (ans.status === 405) {
      const unsupported = registryError(ans)?.code === 'UNSUPPORTED';
      throw new RegistryError(
        `PUT ${ans.url} was refused: ` +
          (unsupported
            ? 'the registry does not accept pushes (a pull-through cache?): point the janitor at the origin registry'
            : this.deleteRefusal(ans).message),
        { status: 405, code: unsupported ? 'UNSUPPORTED' : 'READ_ONLY', url: ans.url },
      );
    }
    if (ans.status !== 201 && ans.status !== 200 && ans.status !== 202) throw this.unexpected('PUT', ans);
    const ours = digestOf(body);
    const header = ans.headers['docker-content-digest']?.trim();
    if (header && header.startsWith('sha256:') && header !== ours) {
      throw new RegistryError(
        `PUT ${ans.url} stored digest ${header}, but the manifest sent hashes to ${ours}`,
        {
          status: ans.status,
          code: 'DIGEST_MISMATCH',
          url: ans.url,
        },
      );
    }
    return header || ours;
  }

  public async probe(repository: string): Promise<ProbeResult> {
    assertRepositoryName(repository);
    let ans: Answer;
    try {
      ans = await this.call('delete', 'DELETE', `/v2/${repository}/manifests/${PROBE_DIGEST}`, {
        scope: this.repoScope(repository),
        retryPolicy: 'delete',
        maxBytes: MAX_ERROR_BYTES,
      });
    } catch (err) {
      if (err instanceof AuthError) return { deletesEnabled: false, problem: err.message, tagDelete: false };
      throw err;
    }
    if (ans.status === 405) {
      return { deletesEnabled: false, problem: this.deleteRefusal(ans).message, tagDelete: false };
    }
    // 404 for the zero digest is the healthy answer; a 202 would mean the registry accepted a delete of nothing.
    if (!isRegistry404(ans) && ans.status !== 202) {
      throw new RegistryError(
        `the delete probe (DELETE ${ans.url}) got an unexpected answer ${ans.status} ${bodyPreview(ans)}: expected 404 ` +
          'from a registry with deletes enabled, or 405 when they are disabled',
        { status: ans.status, code: registryError(ans)?.code, url: ans.url },
      );
    }
    // Can the registry untag? v3 answers 404 MANIFEST_UNKNOWN for a tag that does not exist; 2.8 parses the
    // reference as a digest and answers 400 DIGEST_INVALID.
    const tag = `registry-janitor-probe-${randomBytes(8).toString('hex')}`;
    const tagAns = await this.call('delete', 'DELETE', `/v2/${repository}/manifests/${tag}`, {
      scope: this.repoScope(repository),
      retryPolicy: 'delete',
      maxBytes: MAX_ERROR_BYTES,
    });
    const tagDelete = isRegistry404(tagAns) || tagAns.status === 202;
    return { deletesEnabled: true, tagDelete };
  }

  /** 405 on DELETE/PUT: JSON UNSUPPORTED means deletes are off; a plain 405 means the routes are gone (read-only). */
  private deleteRefusal(ans: Answer): { code: string; message: string } {
    if (registryError(ans)?.code === 'UNSUPPORTED') {
      return {
        code: 'UNSUPPORTED',
        message:
          'deletes are disabled on the registry: set storage.delete.enabled: true in its config.yml (or ' +
          "REGISTRY_STORAGE_DELETE_ENABLED=true in the container's environment) and restart it. (A pull-through " +
          'cache never deletes: point the janitor at the origin registry.)',
      };
    }
    return {
      code: 'READ_ONLY',
      message:
        'the registry is in read-only maintenance mode (storage.maintenance.readonly.enabled, ' +
        'REGISTRY_STORAGE_MAINTENANCE_READONLY): wait for it to end or turn it off and restart the registry',
    };
  }

  private checkManifestType(ans: Answer): string {
    const mediaType = mediaTypeOf(ans.headers['content-type']);
    if (!ACCEPTED_TYPES.has(mediaType)) {
      throw new RegistryError(
        `${ans.url} answered ${mediaType || 'no Content-Type'} instead of a manifest type: is a proxy in the way, ` +
          'or is this not a Docker registry?',
        { status: ans.status, code: 'UNEXPECTED_CONTENT_TYPE', url: ans.url },
      );
    }
    return mediaType;
  }

  private checkRequestedDigest(reference: string, digest: string, url: string): void {
    if (isDigest(reference) && reference !== digest) {
      throw new RegistryError(`${url} answered digest ${digest} for a request by digest ${reference}`, {
        code: 'DIGEST_MISMATCH',
        url,
      });
    }
  }

  private json(ans: Answer): unknown {
    try {
      return JSON.parse(ans.body.toString('utf8'));
    } catch (err) {
      throw new RegistryError(
        `${ans.url} answered ${ans.status} with a body that is not JSON ` +
          `(${ans.headers['content-type'] ?? 'no Content-Type'}): ${bodyPreview(ans)}. Is a proxy in the way?`,
        { status: ans.status, url: ans.url },
        { cause: err },
      );
    }
  }

  /** Next page from Link, as a path on our own origin (a proxy may put an internal host in absolute links). */
  private nextPath(ans: Answer): string | undefined {
    const link = nextLink(ans.headers.link);
    if (link === undefined) return undefined;
    const url = new URL(link, this.baseUrl + '/');
    if (!url.pathname.startsWith('/v2/')) {
      throw new RegistryError(`${ans.url} sent a next-page Link outside /v2/: ${link}`, { url: ans.url });
    }
    return url.pathname + url.search;
  }

  private loopError(path: string): RegistryError {
    return new RegistryError(`the registry's pagination loops: it sent the next-page link ${path} twice`, {
      url: this.baseUrl + path,
    });
  }

  private unexpected(method: string, ans: Answer): RegistryError {
    const err = registryError(ans);
    const what = err ? `${err.code}: ${err.message}` : bodyPreview(ans) || '(empty body)';
    const hint =
      ans.status >= 500
        ? ' The registry (or a proxy in front of it) is failing: check its logs.'
        : ans.status >= 300 && ans.status < 400
          ? ` It redirects to ${ans.headers.location ?? '?'}: use that address as the registry URL.`
          : '';
    return new RegistryError(`${method} ${ans.url} answered ${ans.status} ${what}.${hint}`, {
      status: ans.status,
      code: err?.code,
      url: ans.url,
    });
  }

  private async fetchToken(url: string, authorization: string | undefined): Promise<TokenAnswer> {
    const ans = await this.call('token', 'GET', url, {
      noAuth: true,
      accept: 'application/json',
      maxBytes: 1024 * 1024,
      ...(authorization !== undefined ? { authorization } : {}),
    });
    return { status: ans.status, body: ans.body, contentType: ans.headers['content-type'] };
  }

  /**
   * One logical request: auth, the concurrency bound, retries with backoff. Returns every answer except those
   * it handles (401 → auth, 403, retryable statuses until retries run out); the caller judges the status.
   */
  private async call(kind: Kind, method: string, pathOrUrl: string, opts: CallOptions): Promise<Answer> {
    const url = pathOrUrl.startsWith('/') ? this.baseUrl + pathOrUrl : pathOrUrl;
    const policy = opts.retryPolicy ?? (method === 'DELETE' ? 'delete' : 'idempotent');
    const scope = opts.scope ?? '';
    let attempt = 0;
    let authRounds = 0;
    for (;;) {
      const sent: SentAuth = opts.noAuth
        ? { header: opts.authorization, fresh: false }
        : await this.auth.authorize(scope);
      let ans: Answer;
      try {
        ans = await this.limit(() => this.exchange(kind, method, url, sent.header, opts));
      } catch (err) {
        if (err instanceof JanitorError) throw err;
        const codes = errorCodes(err);
        const retryable = codes.some((c) =>
          (policy === 'idempotent' ? CONNECTION_CODES : NOT_SENT_CODES).has(c),
        );
        if (retryable && attempt < this.retries) {
          attempt++;
          this.counts.retries++;
          await this.sleep(this.backoff(attempt));
          continue;
        }
        throw this.unreachable(method, url, err, codes, attempt + 1);
      }
      if (ans.status === 401 && !opts.noAuth) {
        authRounds++;
        if (authRounds > 3) {
          throw new AuthError(
            `${method} ${url} is still refused (401) after authenticating: check the credentials`,
            {
              status: 401,
              url,
            },
          );
        }
        this.auth.onUnauthorized(ans.headers['www-authenticate'], scope, sent, url);
        continue;
      }
      if (ans.status === 403 && !opts.noAuth) {
        throw new AuthError(
          `${method} ${url} answered 403 Forbidden: distribution itself never sends 403, so a proxy or gateway in ` +
            `front of the registry refused the request (${bodyPreview(ans) || 'empty body'}); check its access rules`,
          { status: 403, code: registryError(ans)?.code ?? 'FORBIDDEN', url },
        );
      }
      const retryableStatus =
        ans.status === 429 || (policy === 'idempotent' && [500, 502, 503, 504].includes(ans.status));
      if (retryableStatus) {
        if (attempt < this.retries) {
          attempt++;
          this.counts.retries++;
          await this.sleep(parseRetryAfter(ans.headers['retry-after'], this.now()) ?? this.backoff(attempt));
          continue;
        }
        const err = this.unexpected(method, ans);
        throw new RegistryError(`${err.message} Gave up after ${attempt + 1} attempts.`, err.details);
      }
      return ans;
    }
  }

  /** Full jitter: a random wait up to an exponentially growing cap. */
  private backoff(attempt: number): number {
    return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  }

  private unreachable(
    method: string,
    url: string,
    err: unknown,
    codes: string[],
    attempts: number,
  ): RegistryError {
    const cause = describeCause(err);
    const tries = attempts > 1 ? ` (gave up after ${attempts} attempts)` : '';
    let hint = 'is the registry running and the URL right?';
    if (codes.some((c) => TLS_CODE.test(c)) || /certificate|ssl|tls/i.test(cause)) {
      hint = /wrong version number|packet length too long/i.test(cause)
        ? 'the server does not speak TLS there: use an http:// URL'
        : "TLS verification failed: trust the registry's CA (give its CA bundle) or, for a self-signed test " +
          'registry only, use the insecure option';
    } else if (codes.includes('ENOTFOUND')) {
      hint = 'the host name does not resolve: check the URL';
    } else if (codes.includes('UND_ERR_ABORTED') || codes.some((c) => c.includes('TIMEOUT'))) {
      hint = `no answer within ${this.timeoutMs} ms: is the registry overloaded or a firewall dropping packets?`;
    }
    const target = new URL(url).origin;
    return new RegistryError(
      `cannot reach ${target}: ${method} ${url} failed: ${cause} — ${hint}${tries}`,
      { code: codes[0], url },
      { cause: err },
    );
  }

  /** One HTTP exchange (plus redirects when asked), reading the whole body within the size limit. */
  private async exchange(
    kind: Kind,
    method: string,
    startUrl: string,
    authorization: string | undefined,
    opts: CallOptions,
  ): Promise<Answer> {
    let url = startUrl;
    const firstOrigin = new URL(startUrl).origin;
    for (let hop = 0; ; hop++) {
      const target = new URL(url);
      const headers: Record<string, string> = { 'user-agent': this.userAgent };
      // Never hand credentials to another host (a blob redirect to S3 carries its own signature).
      if (authorization !== undefined && target.origin === firstOrigin) headers.authorization = authorization;
      if (opts.accept) headers.accept = opts.accept;
      if (opts.contentType) headers['content-type'] = opts.contentType;
      this.counts[kind]++;
      const res = await this.dispatcher.request({
        origin: target.origin,
        path: target.pathname + target.search,
        method: method,
        headers,
        body: opts.body ? Buffer.from(opts.body) : null,
        signal: AbortSignal.timeout(this.timeoutMs),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        // undici closes the connection after a HEAD unless told otherwise (in case a server sends a body);
        // distribution never does, and a new connection per re-check HEAD cost apply 10-20% in `npm run bench`.
        ...(method === 'HEAD' && target.origin === firstOrigin ? { reset: false } : {}),
      });
      const resHeaders = normaliseHeaders(res.headers);
      if (opts.followRedirects && [301, 302, 303, 307, 308].includes(res.statusCode) && resHeaders.location) {
        await res.body.dump();
        if (hop >= MAX_REDIRECTS) {
          throw new RegistryError(`${startUrl} redirected more than ${MAX_REDIRECTS} times`, {
            url: startUrl,
          });
        }
        url = new URL(resHeaders.location, url).toString();
        continue;
      }
      const max = method === 'HEAD' ? 0 : (opts.maxBytes ?? MAX_ERROR_BYTES);
      const declared = Number(resHeaders['content-length']);
      if (method === 'HEAD') {
        await res.body.dump();
        return { status: res.statusCode, headers: resHeaders, body: Buffer.alloc(0), url };
      }
      if (Number.isFinite(declared) && declared > max) {
        res.body.destroy();
        throw this.tooLarge(method, url, res.statusCode, max);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > max) {
          res.body.destroy();
          throw this.tooLarge(method, url, res.statusCode, max);
        }
        chunks.push(buf);
      }
      return { status: res.statusCode, headers: resHeaders, body: Buffer.concat(chunks), url };
    }
  }

  private tooLarge(method: string, url: string, status: number, max: number): RegistryError {
    return new RegistryError(
      `${method} ${url} answered ${status} with a body over ${max} bytes: that is not a registry API answer`,
      { status, code: 'TOO_LARGE', url },
    );
  }
}

function validateBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new ConfigError(
      `registry URL "${raw}" is not a valid URL: give it as https://host[:port], e.g. https://registry.internal:5000`,
      { cause: err },
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(`registry URL "${raw}" must start with https:// or http://`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(
      `registry URL "${raw}" must not carry credentials: pass --username/--password-stdin or REGISTRY_USERNAME/REGISTRY_PASSWORD`,
    );
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new ConfigError(
      `registry URL "${raw}" must have no path or query (the API lives at /v2/ on the host): use ${url.origin}`,
    );
  }
  return url.origin;
}
