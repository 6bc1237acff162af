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
import { listRepositories, listTags } from './catalog.ts';
import { RegistryHttp, type Action, type Endpoints, type RegistryClientStats } from './http.ts';
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
  /** Actions asked of the token server for repositories. @default 'pull,delete' */
  actions?: 'pull' | 'pull,delete';
  userAgent?: string;
  /** Wait between retries (injectable so tests do not really wait). */
  sleep?: (ms: number) => Promise<void>;
  /** Clock in ms for token expiry and Retry-After dates. @default Date.now */
  now?: () => number;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// Keep the order distribution uses in its own challenges: pull, push, delete.
const ACTION_ORDER: readonly Action[] = ['pull', 'push', 'delete'];

export class RegistryHttpClient implements RegistryClient {
  public readonly baseUrl: string;
  private readonly transport: Transport;
  private readonly http: RegistryHttp;
  private readonly actions: readonly string[];
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
    this.actions = (options.actions ?? 'pull,delete').split(',');
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
      ...(options.username !== undefined ? { username: options.username, password: options.password } : {}),
      sleep: options.sleep ?? defaultSleep,
      now: options.now ?? Date.now,
    });
    this.endpoints = { http: this.http, scopeFor: (repository, action) => this.scopeFor(repository, action) };
  }

  /** Close our connection pool (a dispatcher passed in is left to its owner). */
  public async close(): Promise<void> {
    await this.transport.close();
  }

  /** Request counts so far, by kind. */
  public stats(): RegistryClientStats {
    return this.http.stats();
  }

  private scopeFor(repository: string, action: Action): string {
    const actions = action === 'push' ? [...this.actions, 'push'] : this.actions;
    const sorted = ACTION_ORDER.filter((a) => actions.includes(a));
    return `repository:${repository}:${sorted.join(',')}`;
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
