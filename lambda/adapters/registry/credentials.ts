// Where the registry credentials may go: never over plain http unless the user opts in, never to an http:
// token realm of an https registry, and to a realm on another host only when that host is allow-listed.
import { REALM_HOST_FORM, normalizeRealmHost } from '../../core/contract.ts';
import { AuthError, ConfigError } from '../../core/errors.ts';

export interface CredentialPolicy {
  /** The registry's origin (http(s)://host[:port]). */
  readonly registryOrigin: string;
  /** Hosts other than the registry's that may serve its token realm (lower-case; `host` or `host:port`). */
  readonly tokenRealmHosts: readonly string[];
  readonly allowInsecureHttp: boolean;
}

/** Lower-cased, checked allow-list entries; a URL or a path is refused with the form to use. */
export function normaliseRealmHosts(hosts: readonly string[] | undefined): string[] {
  return (hosts ?? []).map((raw) => {
    const host = normalizeRealmHost(raw);
    if (host === undefined) throw new ConfigError(`token realm host "${raw}" is not ${REALM_HOST_FORM}`);
    return host;
  });
}

/** Refuses, before anything is sent, credentials for a plain-http registry unless allowed explicitly. */
export function assertCredentialsTransport(policy: CredentialPolicy, hasCredentials: boolean): void {
  if (!hasCredentials || policy.allowInsecureHttp) return;
  if (new URL(policy.registryOrigin).protocol === 'http:') {
    throw new ConfigError(
      `the registry URL ${policy.registryOrigin} is plain http, so its username and password would cross the ` +
        'network unencrypted: use an https:// registry URL, or, on a network you trust, allow it with ' +
        '--allow-insecure-http (construct prop allowInsecureHttp, ALLOW_INSECURE_HTTP=true)',
    );
  }
}

/** Throws AuthError unless the token realm a challenge names may receive the credentials (and issue tokens). */
export function assertRealmAllowed(policy: CredentialPolicy, realm: URL, challengeUrl: string): void {
  const registry = new URL(policy.registryOrigin);
  if (registry.protocol === 'https:' && realm.protocol === 'http:') {
    throw new AuthError(
      `the registry ${policy.registryOrigin} names the plain-http token realm ${realm.href}: the credentials and ` +
        "tokens would leave TLS, so the janitor does not send them there. Set the registry's auth.token.realm " +
        'to an https:// URL',
      { status: 401, code: 'INSECURE_TOKEN_REALM', url: challengeUrl },
    );
  }
  const host = realm.hostname.toLowerCase();
  if (host === registry.hostname.toLowerCase()) return;
  const allowed = policy.tokenRealmHosts;
  if (allowed.includes(host) || allowed.includes(realm.host.toLowerCase())) return;
  throw new AuthError(
    `the registry ${policy.registryOrigin} sends its clients to the token realm ${realm.href}, on host ${host}, ` +
      `not the registry's own (${registry.hostname}): the janitor sends credentials to (and takes tokens from) ` +
      `another host only when you allow it: --token-realm-host ${host} (construct prop tokenRealmHosts, TOKEN_REALM_HOSTS=${host})`,
    { status: 401, code: 'UNTRUSTED_TOKEN_REALM', url: challengeUrl },
  );
}
