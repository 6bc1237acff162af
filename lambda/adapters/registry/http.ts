// One logical registry request: auth (lazy discovery, tokens per scope), the concurrency bound, and retries
// with backoff over the transport. Endpoint modules call `call` and judge the status themselves.
import { AuthError, JanitorError, RegistryError } from '../../core/errors.ts';
import { RegistryAuth, type SentAuth, type TokenAnswer } from './auth.ts';
import type { CredentialPolicy } from './credentials.ts';
import { bodyPreview, registryError, unexpected, unreachable } from './errors.ts';
import {
  backoff,
  errorCodes,
  parseRetryAfter,
  retryableFailure,
  retryableStatus,
  type RetryPolicy,
} from './retry.ts';
import { MAX_TOKEN_BYTES, type Answer, type ExchangeOptions, type Transport } from './transport.ts';

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

export type Kind = Exclude<keyof RegistryClientStats, 'retries'>;

export interface CallOptions extends ExchangeOptions {
  readonly scope?: string;
  /** @default 'delete' for DELETE, else 'idempotent' */
  readonly retryPolicy?: RetryPolicy;
  /** No registry auth (token-server requests). */
  readonly noAuth?: boolean;
  readonly authorization?: string;
}

export interface RegistryHttpOptions {
  readonly baseUrl: string;
  readonly transport: Transport;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly policy: CredentialPolicy;
  readonly username?: string;
  readonly password?: string;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
}

/**
 * The bound on requests in flight: a free slot is taken at once (no promise, no closure), a full house waits in
 * turn. Cheaper than p-limit's several promises per call, which showed in the client's CPU over 100,000 requests.
 */
class Slots {
  private active = 0;
  private waiting: (() => void)[] = [];
  private head = 0;

  public constructor(private readonly max: number) {}

  /** Undefined when a slot was free and is now taken; else a promise that resolves once one is handed over. */
  public acquire(): Promise<void> | undefined {
    if (this.active < this.max) {
      this.active++;
      return undefined;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot to the next waiting request, or frees it. */
  public release(): void {
    if (this.head < this.waiting.length) {
      const next = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined as unknown as () => void;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      next();
      return;
    }
    this.active--;
  }
}

export class RegistryHttp {
  public readonly baseUrl: string;
  private readonly slots: Slots;
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

  public constructor(private readonly options: RegistryHttpOptions) {
    this.baseUrl = options.baseUrl;
    this.slots = new Slots(options.concurrency);
    this.auth = new RegistryAuth({
      ...(options.username !== undefined ? { username: options.username, password: options.password } : {}),
      fetchToken: (url, authorization) => this.fetchToken(url, authorization),
      policy: options.policy,
      now: options.now,
    });
  }

  public stats(): RegistryClientStats {
    return { ...this.counts };
  }

  private async fetchToken(url: string, authorization: string | undefined): Promise<TokenAnswer> {
    const ans = await this.call('token', 'GET', url, {
      noAuth: true,
      accept: 'application/json',
      maxBytes: MAX_TOKEN_BYTES,
      ...(authorization !== undefined ? { authorization } : {}),
    });
    return { status: ans.status, body: ans.body, contentType: ans.headers['content-type'] };
  }

  /**
   * Returns every answer except those it handles (401 → auth, 403, retryable statuses until retries run out);
   * the caller judges the status.
   */
  public async call(kind: Kind, method: string, pathOrUrl: string, opts: CallOptions): Promise<Answer> {
    const url = pathOrUrl.startsWith('/') ? this.baseUrl + pathOrUrl : pathOrUrl;
    const policy = opts.retryPolicy ?? (method === 'DELETE' ? 'delete' : 'idempotent');
    const scope = opts.scope ?? '';
    const { retries, sleep, now, transport } = this.options;
    let attempt = 0;
    let authRounds = 0;
    for (;;) {
      const sent: SentAuth = opts.noAuth
        ? { header: opts.authorization, fresh: false }
        : (this.auth.authorizeNow(scope) ?? (await this.auth.authorize(scope)));
      let ans: Answer;
      const wait = this.slots.acquire();
      if (wait) await wait;
      try {
        ans = await transport.exchange(method, url, sent.header, opts, () => void this.counts[kind]++);
      } catch (err) {
        this.slots.release();
        if (err instanceof JanitorError) throw err;
        const codes = errorCodes(err);
        if (retryableFailure(codes, policy) && attempt < retries) {
          attempt++;
          this.counts.retries++;
          await sleep(backoff(attempt));
          continue;
        }
        throw unreachable(method, url, err, codes, attempt + 1, this.options.timeoutMs);
      }
      this.slots.release();
      if (ans.status === 401 && !opts.noAuth) {
        authRounds++;
        if (authRounds > 3) {
          throw new AuthError(
            `${method} ${url} is still refused (401) after authenticating: check the credentials`,
            { status: 401, url },
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
      if (retryableStatus(ans.status, policy)) {
        if (attempt < retries) {
          attempt++;
          this.counts.retries++;
          await sleep(parseRetryAfter(ans.headers['retry-after'], now()) ?? backoff(attempt));
          continue;
        }
        const err = unexpected(method, ans);
        throw new RegistryError(`${err.message} Gave up after ${attempt + 1} attempts.`, err.details);
      }
      return ans;
    }
  }
}

/** The token action a request needs: GET/HEAD pull, DELETE delete, PUT push (REGISTRY-FACTS §5). */
export type Action = 'pull' | 'push' | 'delete';

/** Bounds on one catalog or tag listing (a hostile registry can paginate forever). */
export interface ListLimits {
  readonly maxPages: number;
  readonly maxEntries: number;
}

/** What an endpoint module needs: the request loop, listing bounds, and the token scope to ask for. */
export interface Endpoints {
  readonly http: RegistryHttp;
  readonly limits: ListLimits;
  scopeFor(repository: string, action: Action): string;
}
