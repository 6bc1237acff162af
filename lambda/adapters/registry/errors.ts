// Error answers: distribution's `{"errors":[{code,message}]}` bodies, and the typed errors (with the fix) the
// client throws for answers it cannot use, refused deletes, oversized bodies and unreachable registries.
import { RegistryError, errorMessage } from '../../core/errors.ts';
import type { Answer } from './transport.ts';

/** The first registry error of an error body (`{"errors":[{code,message}]}`), when there is one. */
export function registryError(ans: Answer): { code: string; message: string } | undefined {
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

export function bodyPreview(ans: Answer): string {
  const text = ans.body.toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > 160 ? text.slice(0, 160) + '…' : text;
}

/** A 404 from distribution always carries its JSON error; an HTML or text 404 comes from something else. */
export function isRegistry404(ans: Answer): boolean {
  return ans.status === 404 && (ans.body.length === 0 || registryError(ans) !== undefined);
}

/** The body as JSON, or an error that suspects a proxy. */
export function jsonOf(ans: Answer): unknown {
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

/** Any answer the caller has no use for, with the registry's error code and a hint where one helps. */
export function unexpected(method: string, ans: Answer): RegistryError {
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

/** 405 on DELETE/PUT: JSON UNSUPPORTED means deletes are off; a plain 405 means the routes are gone (read-only). */
export function deleteRefusal(ans: Answer): { code: string; message: string } {
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

export function tooLarge(method: string, url: string, status: number, max: number): RegistryError {
  return new RegistryError(
    `${method} ${url} answered ${status} with a body over ${max} bytes: that is not a registry API answer`,
    { status, code: 'TOO_LARGE', url },
  );
}

const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL|EPROTO/;

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

/** A request that got no answer: the cause, and what to check (TLS, DNS, time-out, or is it running). */
export function unreachable(
  method: string,
  url: string,
  err: unknown,
  codes: readonly string[],
  attempts: number,
  timeoutMs: number,
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
    hint = `no answer within ${timeoutMs} ms: is the registry overloaded or a firewall dropping packets?`;
  }
  const target = new URL(url).origin;
  return new RegistryError(
    `cannot reach ${target}: ${method} ${url} failed: ${cause} — ${hint}${tries}`,
    { code: codes[0], url },
    { cause: err },
  );
}
