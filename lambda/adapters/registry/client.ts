// The Registry HTTP API V2 client: wires the transport, the request loop (auth, retries) and one module per
// endpoint family behind the core's RegistryClient port. One per registry per process: it owns the pool.
import { ConfigError } from '../../core/errors.ts';
import {
  DEFAULT_CONCURRENCY,
  type DeleteOutcome,
  type FetchedManifest,
  type ProbeResult,
  type RegistryClient,
} from '../../core/ports.ts';
import { getBlob, headBlob } from './blobs.ts';
import { DEFAULT_MAX_LIST_ENTRIES, DEFAULT_MAX_LIST_PAGES, listRepositories, listTags } from './catalog.ts';
import { assertCredentialsTransport, normaliseRealmHosts, type CredentialPolicy } from './credentials.ts';
import {
  RegistryHttp,
  type Action,
  type Endpoints,
  type ListLimits,
  type RegistryClientStats,
} from './http.ts';
import { deleteManifest, getManifest, headManifest, putManifest } from './manifests.ts';
import { probe } from './probe.ts';
import { Transport, validateBaseUrl } from './transport.ts';
import type { Dispatcher } from 'undici';

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
  /**
   * The most the client may do. 'pull' makes it read-only: a DELETE or PUT is refused before anything is sent.
   * Either way a repository's token scope is `pull` until the client sends a DELETE (then `pull,delete`) or a
   * PUT (then `pull,push`) in that repository, so no token grants more than the run has used.
   * @default 'pull,delete'
   */
  actions?: 'pull' | 'pull,delete';
  /** Send credentials over a plain-http registry URL (only on a network you trust). @default false */
  allowInsecureHttp?: boolean;
  /** Hosts besides the registry's own whose token realm may receive the credentials (`host` or `host:port`). */
  tokenRealmHosts?: readonly string[];
  /** Most pages one catalog or tag listing may take. @default DEFAULT_MAX_LIST_PAGES */
  maxListPages?: number;
  /** Most entries one catalog or tag listing may hold. @default DEFAULT_MAX_LIST_ENTRIES */
  maxListEntries?: number;
  userAgent?: string;
  /** Wait between retries (injectable so tests do not really wait). */
  sleep?: (ms: number) => Promise<void>;
  /** Clock in ms for token expiry and Retry-After dates. @default Date.now */
  now?: () => number;
}

function wholeAtLeastOne(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(`${name} must be a whole number of at least 1 (got ${value})`);
  }
  return value;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// Keep the order distribution uses in its own challenges: pull, push, delete.
const ACTION_ORDER: readonly Action[] = ['pull', 'push', 'delete'];

export class RegistryHttpClient implements RegistryClient {
  public readonly baseUrl: string;
  private readonly transport: Transport;
  private readonly http: RegistryHttp;
  private readonly readOnly: boolean;
  /** Actions beyond pull that a repository's requests have needed so far. */
  private readonly used = new Map<string, ReadonlySet<Action>>();
  /** The scope string of each repository, for its actions so far. */
  private readonly scopes = new Map<string, string>();
  private readonly endpoints: Endpoints;

  public constructor(options: RegistryClientOptions) {
    this.baseUrl = validateBaseUrl(options.url);
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1024) {
      throw new ConfigError(`concurrency must be a whole number from 1 to 1024 (got ${concurrency})`);
    }
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (!(timeoutMs > 0)) throw new ConfigError(`timeoutMs must be above 0 (got ${timeoutMs})`);
    const retries = options.retries ?? 4;
    if (!Number.isInteger(retries) || retries < 0) {
      throw new ConfigError(`retries must be a whole number ≥ 0 (got ${retries})`);
    }
    if ((options.username === undefined) !== (options.password === undefined)) {
      throw new ConfigError('give both a username and a password for the registry, or neither');
    }
    const actions = options.actions ?? 'pull,delete';
    if (actions !== 'pull' && actions !== 'pull,delete') {
      throw new ConfigError(`actions must be 'pull' or 'pull,delete' (got ${JSON.stringify(actions)})`);
    }
    this.readOnly = actions === 'pull';
    const policy: CredentialPolicy = {
      registryOrigin: this.baseUrl,
      tokenRealmHosts: normaliseRealmHosts(options.tokenRealmHosts),
      allowInsecureHttp: options.allowInsecureHttp === true,
    };
    assertCredentialsTransport(policy, options.username !== undefined);
    const limits: ListLimits = {
      maxPages: wholeAtLeastOne(options.maxListPages ?? DEFAULT_MAX_LIST_PAGES, 'maxListPages'),
      maxEntries: wholeAtLeastOne(options.maxListEntries ?? DEFAULT_MAX_LIST_ENTRIES, 'maxListEntries'),
    };
    this.transport = new Transport({
      concurrency,
      timeoutMs,
      userAgent: options.userAgent ?? 'registry-janitor',
      ...(options.caPem !== undefined ? { caPem: options.caPem } : {}),
      ...(options.insecure !== undefined ? { insecure: options.insecure } : {}),
      ...(options.dispatcher !== undefined ? { dispatcher: options.dispatcher } : {}),
    });
    this.http = new RegistryHttp({
      baseUrl: this.baseUrl,
      transport: this.transport,
      concurrency,
      timeoutMs,
      retries,
      policy,
      ...(options.username !== undefined ? { username: options.username, password: options.password } : {}),
      sleep: options.sleep ?? defaultSleep,
      now: options.now ?? Date.now,
    });
    this.endpoints = {
      http: this.http,
      limits,
      scopeFor: (repository, action) => this.scopeFor(repository, action),
    };
  }

  /** Close our connection pool (a dispatcher passed in is left to its owner). */
  public async close(): Promise<void> {
    await this.transport.close();
  }

  /** Request counts so far, by kind. */
  public stats(): RegistryClientStats {
    return this.http.stats();
  }

  /** Escalates a repository's scope on its first DELETE or PUT, and keeps it (one token per repository). */
  private scopeFor(repository: string, action: Action): string {
    if (action !== 'pull' && this.readOnly) {
      throw new ConfigError(
        `refusing to ${action === 'delete' ? 'DELETE' : 'PUT'} in ${repository}: this registry client is read-only ` +
          '(a plan or dry run sends no DELETE or PUT)',
      );
    }
    let used = this.used.get(repository);
    if (action !== 'pull' && !used?.has(action)) {
      used = new Set([...(used ?? []), action]);
      this.used.set(repository, used);
      this.scopes.delete(repository);
    }
    let scope = this.scopes.get(repository);
    if (scope === undefined) {
      const actions = ACTION_ORDER.filter((a) => a === 'pull' || used?.has(a));
      scope = `repository:${repository}:${actions.join(',')}`;
      // Asked for on every request: built once per repository and escalation, not per request.
      if (this.scopes.size >= 65_536) this.scopes.clear();
      this.scopes.set(repository, scope);
    }
    return scope;
  }

  public listRepositories(): Promise<string[]> {
    return listRepositories(this.endpoints);
  }

  public listTags(repository: string): Promise<string[]> {
    return listTags(this.endpoints, repository);
  }

  public getManifest(repository: string, reference: string): Promise<FetchedManifest | null> {
    return getManifest(this.endpoints, repository, reference);
  }

  public headManifest(repository: string, reference: string): Promise<string | null> {
    return headManifest(this.endpoints, repository, reference);
  }

  public getBlob(repository: string, digest: string): Promise<Uint8Array> {
    return getBlob(this.endpoints, repository, digest);
  }

  public headBlob(repository: string, digest: string): Promise<boolean> {
    return headBlob(this.endpoints, repository, digest);
  }

  public deleteManifest(repository: string, reference: string): Promise<DeleteOutcome> {
    return deleteManifest(this.endpoints, repository, reference);
  }

  public putManifest(
    repository: string,
    reference: string,
    mediaType: string,
    body: Uint8Array,
  ): Promise<string> {
    return putManifest(this.endpoints, repository, reference, mediaType, body);
  }

  public probe(repository: string): Promise<ProbeResult> {
    return probe(this.endpoints, repository);
  }
}
