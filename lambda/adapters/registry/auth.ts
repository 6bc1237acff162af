// Registry authentication: parses WWW-Authenticate challenges, and keeps the auth mode (none, HTTP basic, or
// bearer tokens from the registry's token server) plus a per-scope token cache shared by concurrent requests.
import { AuthError, RegistryError } from '../../core/errors.ts';
import { assertRealmAllowed, type CredentialPolicy } from './credentials.ts';

/** One challenge of a WWW-Authenticate header; scheme and parameter names are lower-cased. */
export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
  /** A token68 value (`Negotiate abc==`), when the challenge carries one instead of parameters. */
  readonly token68?: string;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

/**
 * Parse a WWW-Authenticate value (RFC 9110 §11.6.1): several challenges may share one header, separated by
 * commas, and quoted parameter values may themselves contain commas, `=` and escaped quotes.
 */
export function parseWwwAuthenticate(value: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = value.length;
  const skipWs = (): void => {
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN_CHAR.test(value[i]!)) i++;
    return value.slice(start, i);
  };
  const readBare = (): string => {
    const start = i;
    while (i < n && value[i] !== ',' && value[i] !== ' ' && value[i] !== '\t') i++;
    return value.slice(start, i);
  };
  const readQuoted = (): string => {
    // Caller saw the opening quote.
    i++;
    let s = '';
    while (i < n && value[i] !== '"') {
      if (value[i] === '\\' && i + 1 < n) i++;
      s += value[i];
      i++;
    }
    i++; // closing quote (or end of input for an unterminated string)
    return s;
  };
  // Looks ahead for `token BWS "="` (an auth-param) without consuming anything.
  const atParam = (): boolean => {
    const save = i;
    const name = readToken();
    skipWs();
    const isParam = name !== '' && value[i] === '=' && value[i + 1] !== '=';
    i = save;
    return isParam;
  };

  while (i < n) {
    while (i < n && (value[i] === ',' || value[i] === ' ' || value[i] === '\t')) i++;
    if (i >= n) break;
    const scheme = readToken();
    if (scheme === '') {
      i++; // stray character: skip it rather than loop forever
      continue;
    }
    const params: Record<string, string> = {};
    let token68: string | undefined;
    skipWs();
    if (!atParam()) {
      const m = TOKEN68.exec(value.slice(i));
      const after = m ? value.slice(i + m[0].length).trimStart() : '';
      if (m && (after === '' || after.startsWith(','))) {
        token68 = m[0];
        i += m[0].length;
      }
    }
    while (token68 === undefined && i < n) {
      skipWs();
      if (!atParam()) break;
      const name = readToken().toLowerCase();
      skipWs();
      i++; // '='
      skipWs();
      // Unquoted values should be tokens, but servers send bare URLs too: read up to the next comma or space.
      const v = value[i] === '"' ? readQuoted() : readBare();
      params[name] = v;
      skipWs();
      if (value[i] !== ',') break;
      i++;
      skipWs();
      // After a comma comes either another parameter or the next challenge's scheme.
      if (!atParam()) break;
    }
    out.push(
      token68 === undefined
        ? { scheme: scheme.toLowerCase(), params }
        : { scheme: scheme.toLowerCase(), params, token68 },
    );
  }
  return out;
}

/** What a request was sent with, so a 401 can be judged (a token fetched for this very request is "fresh"). */
export interface SentAuth {
  readonly header?: string;
  readonly fresh: boolean;
}

/** The answer of a token-server GET, as the client's transport returns it. */
export interface TokenAnswer {
  readonly status: number;
  readonly body: Uint8Array;
  readonly contentType?: string;
}

export type TokenFetcher = (url: string, authorization: string | undefined) => Promise<TokenAnswer>;

export interface RegistryAuthOptions {
  readonly username?: string;
  readonly password?: string;
  readonly fetchToken: TokenFetcher;
  /** Which token realms may receive the credentials. */
  readonly policy: CredentialPolicy;
  /** Clock in ms (injectable so tests can expire tokens). */
  readonly now?: () => number;
}

type Mode =
  | { readonly kind: 'unknown' }
  | { readonly kind: 'basic' }
  | { readonly kind: 'bearer'; readonly realm: string; readonly service: string | undefined };

interface CachedToken {
  readonly header: string;
  readonly expiresAt: number;
  /** What a request sent with this token (not fetched for it) carries: one object, reused. */
  readonly sent: SentAuth;
}

const NOT_AUTHENTICATED: SentAuth = Object.freeze({ fresh: false });

/** Token lifetime when the server leaves out expires_in (distribution's token spec says 60 s). */
const DEFAULT_TOKEN_SECONDS = 60;

/**
 * Auth is discovered lazily: the first request goes out bare, and its 401 challenge tells us the scheme.
 * After that every request carries credentials up front (no second 401 round trip per repository).
 */
export class RegistryAuth {
  private mode: Mode = { kind: 'unknown' };
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  private readonly basicHeader: string | undefined;
  private readonly basicSent: SentAuth;
  private readonly now: () => number;

  public constructor(private readonly options: RegistryAuthOptions) {
    this.basicHeader =
      options.username !== undefined
        ? 'Basic ' + Buffer.from(`${options.username}:${options.password ?? ''}`, 'utf8').toString('base64')
        : undefined;
    this.basicSent = Object.freeze({ header: this.basicHeader, fresh: false });
    this.now = options.now ?? Date.now;
  }

  /** The auth scheme learnt so far: 'unknown' until a 401 was seen (a registry without auth stays there). */
  public get scheme(): 'unknown' | 'basic' | 'bearer' {
    return this.mode.kind;
  }

  private get who(): string {
    return this.options.username !== undefined ? `user "${this.options.username}"` : 'anonymous access';
  }

  /**
   * What a request needing `scope` is sent with, when that is known without waiting (no auth, basic, or a token
   * held): the common case, without a promise per request. Undefined when a token must be fetched first.
   */
  public authorizeNow(scope: string): SentAuth | undefined {
    const mode = this.mode;
    if (mode.kind === 'basic') return this.basicSent;
    if (mode.kind !== 'bearer') return NOT_AUTHENTICATED;
    const cached = this.tokens.get(scope);
    if (cached && cached.expiresAt > this.now()) return cached.sent;
    return undefined;
  }

  /** Headers for a request that needs `scope`; fetches (once, shared) a token when the registry wants one. */
  public async authorize(scope: string): Promise<SentAuth> {
    const mode = this.mode;
    if (mode.kind === 'basic') return this.basicSent;
    if (mode.kind !== 'bearer') return NOT_AUTHENTICATED;
    const cached = this.tokens.get(scope);
    if (cached && cached.expiresAt > this.now()) return cached.sent;
    let pending = this.inflight.get(scope);
    if (!pending) {
      pending = this.fetchToken(mode, scope).finally(() => this.inflight.delete(scope));
      this.inflight.set(scope, pending);
    }
    const token = await pending;
    return { header: token.header, fresh: true };
  }

  /**
   * Called on a 401. Returns when the request should be sent again (auth discovered, stale token dropped);
   * throws AuthError when retrying cannot help.
   */
  public onUnauthorized(
    challengeHeader: string | undefined,
    scope: string,
    sent: SentAuth,
    url: string,
  ): void {
    const challenges = parseWwwAuthenticate(challengeHeader ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');

    if (sent.header === undefined) {
      if (bearer) {
        this.useBearer(bearer, url);
        return;
      }
      if (basic) {
        if (this.basicHeader === undefined) {
          throw new AuthError(
            `the registry requires credentials (HTTP basic auth, realm "${basic.params.realm ?? ''}"): ` +
              'pass --username/--password-stdin or REGISTRY_USERNAME/REGISTRY_PASSWORD',
            { status: 401, code: 'UNAUTHORIZED', url },
          );
        }
        this.mode = { kind: 'basic' };
        return;
      }
      throw new AuthError(
        `the registry answered 401 to ${url} without a challenge we can answer ` +
          `(WWW-Authenticate: ${JSON.stringify(challengeHeader ?? '')}); only Basic and Bearer token auth are supported`,
        { status: 401, code: 'UNAUTHORIZED', url },
      );
    }

    if (sent.header.startsWith('Basic ')) {
      if (bearer) {
        // The registry was switched to token auth while we ran: start over with tokens.
        this.useBearer(bearer, url);
        return;
      }
      throw new AuthError(
        `the registry rejected the username and password of ${this.who} (401 on ${url}): check the credentials ` +
          "and that the user is in the registry's htpasswd file",
        { status: 401, code: 'UNAUTHORIZED', url },
      );
    }

    // A bearer token was refused.
    if (bearer && this.mode.kind === 'bearer') {
      const realm = bearer.params.realm;
      if (realm !== undefined && (realm !== this.mode.realm || bearer.params.service !== this.mode.service)) {
        this.useBearer(bearer, url);
        return;
      }
    }
    if (!sent.fresh) {
      // A cached token the registry no longer accepts (expired early, clock skew): fetch a new one once.
      const cached = this.tokens.get(scope);
      if (cached?.header === sent.header) this.tokens.delete(scope);
      return;
    }
    const error = bearer?.params.error;
    if (error === 'invalid_token') {
      throw new AuthError(
        `the registry rejected the token issued by ${this.realmText} for ${this.who} (invalid_token on ${url}): ` +
          "the token server's signing certificate must be in the registry's auth.token.rootcertbundle and its " +
          'issuer and service must match auth.token.issuer and auth.token.service',
        { status: 401, code: 'UNAUTHORIZED', url },
      );
    }
    // The challenge names what this request needed (e.g. repository:x:delete); our scope is what we asked for.
    const needed = bearer?.params.scope ?? scope;
    const m = /^(repository|registry):(.+):([^:]+)$/.exec(needed.split(' ')[0] ?? '');
    const what =
      m?.[1] === 'registry' && m[2] === 'catalog'
        ? 'access to the catalog'
        : m
          ? `${m[3]} permission on ${m[1]} ${m[2]}`
          : `permission for ${needed}`;
    throw new AuthError(
      `the credentials of ${this.who} lack ${what} (the token server ${this.realmText} did not grant ` +
        `${needed}; asked for ${scope}, on ${url}). Grant it to ${this.who} in the token server` +
        (m?.[3]?.includes('delete') ? ', or run without deleting.' : '.'),
      { status: 401, code: 'UNAUTHORIZED', url },
    );
  }

  private get realmText(): string {
    return this.mode.kind === 'bearer' ? this.mode.realm : 'the token server';
  }

  private useBearer(challenge: Challenge, url: string): void {
    const realm = challenge.params.realm;
    if (!realm) {
      throw new AuthError(
        `the registry's Bearer challenge on ${url} has no realm, so no token server to ask`,
        {
          status: 401,
          url,
        },
      );
    }
    let parsed: URL;
    try {
      parsed = new URL(realm);
    } catch (err) {
      throw new AuthError(
        `the registry's token realm "${realm}" is not a URL`,
        { status: 401, url },
        { cause: err },
      );
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new AuthError(`the registry's token realm "${realm}" is not http(s)`, { status: 401, url });
    }
    assertRealmAllowed(this.options.policy, parsed, url);
    const service = challenge.params.service;
    if (this.mode.kind === 'bearer' && this.mode.realm === realm && this.mode.service === service) return;
    this.mode = { kind: 'bearer', realm, service };
    this.tokens.clear();
  }

  private async fetchToken(mode: Extract<Mode, { kind: 'bearer' }>, scope: string): Promise<CachedToken> {
    const url = new URL(mode.realm);
    if (mode.service !== undefined) url.searchParams.set('service', mode.service);
    url.searchParams.append('scope', scope);
    if (this.options.username !== undefined) url.searchParams.set('account', this.options.username);
    const answer = await this.options.fetchToken(url.toString(), this.basicHeader);
    const text = Buffer.from(answer.body).toString('utf8');
    if (answer.status === 401 || answer.status === 403) {
      throw new AuthError(
        this.basicHeader === undefined
          ? `the token server ${mode.realm} refused anonymous access (${answer.status}): pass --username/--password-stdin ` +
              'or REGISTRY_USERNAME/REGISTRY_PASSWORD'
          : `the token server ${mode.realm} rejected the credentials of ${this.who} (${answer.status}): check the username and password`,
        { status: answer.status, url: mode.realm },
      );
    }
    if (answer.status !== 200) {
      throw new RegistryError(
        `the token server ${mode.realm} answered ${answer.status} for scope ${scope}: ${text.slice(0, 200)}`,
        { status: answer.status, url: mode.realm },
      );
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new RegistryError(
        `the token server ${mode.realm} answered something that is not JSON (${answer.contentType ?? 'no Content-Type'}): ${text.slice(0, 120)}`,
        { status: answer.status, url: mode.realm },
        { cause: err },
      );
    }
    const obj = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
    const token = typeof obj.token === 'string' && obj.token !== '' ? obj.token : obj.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new RegistryError(`the token server ${mode.realm} answered without a "token" or "access_token"`, {
        status: answer.status,
        url: mode.realm,
      });
    }
    const seconds =
      typeof obj.expires_in === 'number' && Number.isFinite(obj.expires_in) && obj.expires_in > 0
        ? obj.expires_in
        : DEFAULT_TOKEN_SECONDS;
    const lifetime = seconds * 1000;
    // Renew a little early so a token never expires between being picked and reaching the registry.
    const margin = Math.min(30_000, lifetime / 4);
    const header = `Bearer ${token}`;
    const entry = {
      header,
      expiresAt: this.now() + lifetime - margin,
      sent: Object.freeze({ header, fresh: false }),
    };
    this.tokens.set(scope, entry);
    return entry;
  }
}
