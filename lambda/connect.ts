// What the Lambda entry points share to reach the registry and the cache: the registry client with its secrets
// from Parameter Store, and the cache's key.
import type { SSMClient } from '@aws-sdk/client-ssm';
import { readCredentials, readParameter } from './adapters/parameter-store.ts';
import { createRegistryClient } from './adapters/registry-client.ts';
import type { JanitorConfig } from './config.ts';
import { MANIFEST_CACHE_PREFIX } from './core/contract.ts';
import type { RegistryClient } from './core/ports.ts';

/** One cache object per registry host, so a bucket shared by several janitors keeps their caches apart. */
export const cacheKeyOf = (config: JanitorConfig): string =>
  `${MANIFEST_CACHE_PREFIX}${new URL(config.registryUrl).host.replace(/[^A-Za-z0-9.-]/g, '_')}.json`;

/** The registry client, with the credentials and CA from Parameter Store (the workflow's steps share it). */
export async function connectRegistry(config: JanitorConfig, ssm: SSMClient): Promise<RegistryClient> {
  const credentials =
    config.credentialsParameter === undefined
      ? undefined
      : await readCredentials(ssm, config.credentialsParameter);
  const caPem = config.caParameter === undefined ? undefined : await readParameter(ssm, config.caParameter);
  const registry = createRegistryClient({
    url: config.registryUrl,
    ...(credentials ? { username: credentials.username, password: credentials.password } : {}),
    ...(caPem !== undefined ? { caPem } : {}),
    insecure: config.insecureTls,
    concurrency: config.concurrency,
    allowInsecureHttp: config.allowInsecureHttp,
    tokenRealmHosts: config.tokenRealmHosts,
    ...(config.maxListPages !== undefined ? { maxListPages: config.maxListPages } : {}),
    ...(config.maxListEntries !== undefined ? { maxListEntries: config.maxListEntries } : {}),
  });
  return registry;
}
