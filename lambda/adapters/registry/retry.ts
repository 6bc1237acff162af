// Retry decisions: which failures and statuses are worth another attempt (a DELETE only when it cannot have
// reached the registry, or on 429), full-jitter backoff, and Retry-After.
export const BACKOFF_BASE_MS = 250;
export const BACKOFF_CAP_MS = 10_000;
/** Longest Retry-After we honour; a Lambda cannot wait an hour. */
export const RETRY_AFTER_CAP_MS = 60_000;

/** 'delete': retried only when the request cannot have reached the registry, or on 429. */
export type RetryPolicy = 'idempotent' | 'delete';

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

/** Every error code along the cause chain (and inside AggregateErrors). */
export function errorCodes(err: unknown): string[] {
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

/** A failed exchange (no answer) that may be sent again under `policy`. */
export function retryableFailure(codes: readonly string[], policy: RetryPolicy): boolean {
  const set = policy === 'idempotent' ? CONNECTION_CODES : NOT_SENT_CODES;
  return codes.some((c) => set.has(c));
}

/** An answer that may be asked again: 429 always, 5xx only for idempotent requests (2.8 can fail after deleting). */
export function retryableStatus(status: number, policy: RetryPolicy): boolean {
  return status === 429 || (policy === 'idempotent' && [500, 502, 503, 504].includes(status));
}

/** Full jitter: a random wait up to an exponentially growing cap. */
export function backoff(attempt: number): number {
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
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
