// The transport: one undici keep-alive pool per registry, and one HTTP exchange at a time with size limits on
// every body, redirects followed only when asked (and credentials never carried to another origin).
import { EventEmitter } from 'node:events';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { normalizeRegistryUrl, registryUrlProblem } from '../../core/contract.ts';
import { ConfigError, RegistryError } from '../../core/errors.ts';
import { tooLarge } from './errors.ts';

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_BLOB_BYTES = 4 * 1024 * 1024;
export const MAX_LIST_BYTES = 32 * 1024 * 1024;
export const MAX_ERROR_BYTES = 64 * 1024;
export const MAX_TOKEN_BYTES = 1024 * 1024;
const MAX_REDIRECTS = 5;

/** An answer read in full (HEAD: no body). Header names are lower-case; repeated headers are joined. */
export interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly url: string;
}

export interface ExchangeOptions {
  readonly accept?: string;
  readonly contentType?: string;
  readonly body?: Uint8Array;
  readonly maxBytes?: number;
  readonly followRedirects?: boolean;
}

export interface TransportOptions {
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly userAgent: string;
  readonly caPem?: string;
  readonly insecure?: boolean;
  /** Used instead of our own Agent (tests pass a MockAgent); not closed by close(). */
  readonly dispatcher?: Dispatcher;
}

function normaliseHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** An abort signal undici accepts (an EventEmitter with `aborted`/`reason`), shared by exchanges begun together. */
class DeadlineSignal extends EventEmitter {
  public aborted = false;
  public reason: Error | undefined;

  public constructor(
    public readonly deadline: number,
    timeoutMs: number,
  ) {
    super();
    this.setMaxListeners(0);
    const timer = setTimeout(() => {
      const err = new Error(`no answer within ${timeoutMs} ms`);
      err.name = 'TimeoutError';
      this.reason = err;
      this.aborted = true;
      this.emit('abort');
    }, deadline - Date.now());
    timer.unref();
  }
}

/**
 * The whole-exchange time limit, cheaply: the exchanges begun within one slice of time (a tenth of the limit, at
 * most 250 ms) share one timer and one signal, instead of an AbortSignal.timeout each (a timer, an EventTarget and
 * a DOMException per request, a measurable share of the client's CPU over 100,000 requests). Each exchange is
 * therefore aborted between timeoutMs and timeoutMs plus one slice after it began.
 */
class Deadlines {
  private current: DeadlineSignal | undefined;
  private readonly sliceMs: number;

  public constructor(private readonly timeoutMs: number) {
    this.sliceMs = Math.max(1, Math.min(250, Math.floor(timeoutMs / 10)));
  }

  public signal(): DeadlineSignal {
    const now = Date.now();
    const current = this.current;
    // Begun within the slice `current` was made for (its deadline is that slice's end plus the limit).
    if (current && !current.aborted && current.deadline - this.timeoutMs > now) return current;
    const next = new DeadlineSignal(now + this.timeoutMs + this.sliceMs, this.timeoutMs);
    this.current = next;
    return next;
  }
}

export class Transport {
  private readonly dispatcher: Dispatcher;
  private readonly ownAgent: Agent | undefined;
  private readonly deadlines: Deadlines;

  public constructor(private readonly options: TransportOptions) {
    this.deadlines = new Deadlines(options.timeoutMs);
    if (options.dispatcher) {
      this.dispatcher = options.dispatcher;
      return;
    }
    this.ownAgent = new Agent({
      connections: options.concurrency,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect: {
        // Extra CAs are added to the public roots: the token realm may be on a publicly signed host.
        ...(options.caPem !== undefined ? { ca: [...rootCertificates, options.caPem] } : {}),
        rejectUnauthorized: options.insecure !== true,
        timeout: options.timeoutMs,
      },
    });
    this.dispatcher = this.ownAgent;
  }

  /** Close our connection pool (a dispatcher passed in is left to its owner). */
  public async close(): Promise<void> {
    await this.ownAgent?.close();
  }

  /**
   * One HTTP exchange (plus redirects when asked), reading the whole body within the size limit. `onSend` is
   * called for every request that goes out, redirects included.
   */
  public async exchange(
    method: string,
    startUrl: string,
    authorization: string | undefined,
    opts: ExchangeOptions,
    onSend: () => void,
  ): Promise<Answer> {
    const timeoutMs = this.options.timeoutMs;
    let url = startUrl;
    const firstOrigin = new URL(startUrl).origin;
    for (let hop = 0; ; hop++) {
      const target = new URL(url);
      const headers: Record<string, string> = { 'user-agent': this.options.userAgent };
      // Never hand credentials to another host (a blob redirect to S3 carries its own signature).
      if (authorization !== undefined && target.origin === firstOrigin) headers.authorization = authorization;
      if (opts.accept) headers.accept = opts.accept;
      if (opts.contentType) headers['content-type'] = opts.contentType;
      onSend();
      const res = await this.dispatcher.request({
        origin: target.origin,
        path: target.pathname + target.search,
        method: method,
        headers,
        body: opts.body ? Buffer.from(opts.body) : null,
        signal: this.deadlines.signal(),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
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
        throw tooLarge(method, url, res.statusCode, max);
      }
      if (resHeaders['content-length'] !== undefined && Number.isSafeInteger(declared) && declared >= 0) {
        // The HTTP parser ends the body at its declared length, so within the limit it can be read in one go
        // (no async iterator and no chunk list per response).
        const body = Buffer.from(await res.body.arrayBuffer());
        return { status: res.statusCode, headers: resHeaders, body, url };
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > max) {
          res.body.destroy();
          throw tooLarge(method, url, res.statusCode, max);
        }
        chunks.push(buf);
      }
      return { status: res.statusCode, headers: resHeaders, body: Buffer.concat(chunks), url };
    }
  }
}

/** The registry's origin, from a URL given as http(s)://host[:port] with nothing else (the contract's rule). */
export function validateBaseUrl(raw: string): string {
  const problem = registryUrlProblem(raw);
  if (problem?.kind === 'credentials') {
    throw new ConfigError(
      `registry URL ${problem.message}: pass --username/--password-stdin or REGISTRY_USERNAME/REGISTRY_PASSWORD`,
    );
  }
  if (problem) throw new ConfigError(`registry URL "${raw}" ${problem.message}`);
  return normalizeRegistryUrl(raw);
}
