// Entry to the registry HTTP client (lambda/adapters/registry/): builds it, and re-exports what callers and
// tests use, so importers need not know how the folder is split.
import { RegistryHttpClient, type RegistryClientOptions } from './registry/client.ts';

export { RegistryHttpClient, type RegistryClientOptions } from './registry/client.ts';
export type { RegistryClientStats } from './registry/http.ts';
export { nextLink } from './registry/catalog.ts';
export { parseRetryAfter } from './registry/retry.ts';
export { PROBE_DIGEST, assertReference, assertRepositoryName } from './registry/reference.ts';

/** Build the client. One per registry per process: it owns the connection pool. */
export function createRegistryClient(options: RegistryClientOptions): RegistryHttpClient {
  return new RegistryHttpClient(options);
}
