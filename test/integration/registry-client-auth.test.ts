// Registry auth against real registries (distribution 2.8): htpasswd, and token auth with a real token server;
// the errors for missing or insufficient credentials, with nothing deleted.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRegistryClient,
  type RegistryClientOptions,
  type RegistryHttpClient,
} from '../../lambda/adapters/registry-client.ts';
import { AuthError } from '../../lambda/core/errors.ts';
import { htpasswdAuthConfig, writeHtpasswd } from '../support/htpasswd.ts';
import { startLocalRegistry, type LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage, type PushedImage } from '../../lambda/demo/seed.ts';
import { startTokenServer, type TokenServer } from '../support/token-server.ts';

describe('against real registries with auth (distribution 2.8)', () => {
  let dir: string;
  let htpasswdRegistry: LocalRegistry;
  let tokenRegistry: LocalRegistry;
  let tokens: TokenServer;
  let basicImage: PushedImage;
  let tokenImage: PushedImage;
  const clients: RegistryHttpClient[] = [];
  const client = (url: string, opts: Partial<RegistryClientOptions> = {}): RegistryHttpClient => {
    // Loopback registries on plain http: the opt-in is what a user of such a registry gives.
    const c = createRegistryClient({ url, sleep: () => Promise.resolve(), allowInsecureHttp: true, ...opts });
    clients.push(c);
    return c;
  };
  const basicHeader = (user: string, pw: string) =>
    'Basic ' + Buffer.from(`${user}:${pw}`).toString('base64');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rj-auth-'));
    const path = writeHtpasswd(dir, { alice: 'alice-pw' });
    tokens = await startTokenServer({
      users: {
        admin: {
          password: 'admin-pw',
          grants: [
            { type: 'repository', name: '*', actions: ['*'] },
            { type: 'registry', name: 'catalog', actions: ['*'] },
          ],
        },
        reader: { password: 'reader-pw', grants: [{ type: 'repository', name: '*', actions: ['pull'] }] },
      },
    });
    [htpasswdRegistry, tokenRegistry] = await Promise.all([
      startLocalRegistry({ extraConfig: htpasswdAuthConfig(path) }),
      startLocalRegistry({ extraConfig: tokens.registryAuthConfig() }),
    ]);
    basicImage = await pushImage(
      { url: htpasswdRegistry.url, authorization: basicHeader('alice', 'alice-pw') },
      'team/app',
      'v1',
      { created: null, layers: [{ seed: 'b1', size: 64 }] },
    );
    // Push through a token: our own client's token handling is what is under test, so get it directly.
    const res = await fetch(`${tokens.realm}?service=${tokens.service}&scope=repository:team/app:pull,push`, {
      headers: { authorization: basicHeader('admin', 'admin-pw') },
    });
    const { token } = (await res.json()) as { token: string };
    tokenImage = await pushImage(
      { url: tokenRegistry.url, authorization: `Bearer ${token}` },
      'team/app',
      'v1',
      {
        created: null,
        layers: [{ seed: 't1', size: 64 }],
      },
    );
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all([htpasswdRegistry?.dispose(), tokenRegistry?.dispose()]);
    await tokens?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('htpasswd: lists, reads and probes with the right password', async () => {
    const c = client(htpasswdRegistry.url, { username: 'alice', password: 'alice-pw' });
    await expect(c.listRepositories()).resolves.toEqual(['team/app']);
    await expect(c.headManifest('team/app', 'v1')).resolves.toBe(basicImage.digest);
    await expect(c.probe('team/app')).resolves.toEqual({ deletesEnabled: true, tagDelete: false });
  });

  it.each([
    ['no credentials', {}, /requires credentials/],
    ['a wrong password', { username: 'alice', password: 'nope' }, /rejected the username and password/],
  ])('htpasswd with %s: a clear error, and the probe stops deletes', async (_label, creds, message) => {
    const c = client(htpasswdRegistry.url, creds);
    await expect(c.listRepositories()).rejects.toThrow(message);
    const probe = await c.probe('team/app');
    expect(probe).toMatchObject({ deletesEnabled: false, problem: expect.stringMatching(message) });
    await expect(c.deleteManifest('team/app', basicImage.digest)).rejects.toBeInstanceOf(AuthError);
    const ok = client(htpasswdRegistry.url, { username: 'alice', password: 'alice-pw' });
    await expect(ok.headManifest('team/app', 'v1')).resolves.toBe(basicImage.digest);
  });

  it('token auth: full access reads everything and one token per scope is fetched', async () => {
    const before = tokens.requests.length;
    const c = client(tokenRegistry.url, { username: 'admin', password: 'admin-pw' });
    await expect(c.listRepositories()).resolves.toEqual(['team/app']);
    await expect(c.listTags('team/app')).resolves.toEqual(['v1']);
    await expect(c.getManifest('team/app', 'v1')).resolves.toMatchObject({ digest: tokenImage.digest });
    await expect(c.getBlob('team/app', tokenImage.config.digest)).resolves.toBeInstanceOf(Uint8Array);
    await expect(c.probe('team/app')).resolves.toEqual({ deletesEnabled: true, tagDelete: false });
    const asked = tokens.requests.slice(before);
    // pull for reading; delete only once the probe sends its DELETE.
    expect(asked.map((r) => r.scopes.join(' '))).toEqual([
      'registry:catalog:*',
      'repository:team/app:pull',
      'repository:team/app:pull,delete',
    ]);
    expect(asked.every((r) => r.user === 'admin' && r.status === 200)).toBe(true);
    expect(c.stats().token).toBe(3);
  });

  it('token auth: a pull-only user reads, but the probe and deletes say delete is missing and nothing is deleted', async () => {
    const c = client(tokenRegistry.url, { username: 'reader', password: 'reader-pw' });
    await expect(c.headManifest('team/app', 'v1')).resolves.toBe(tokenImage.digest);
    const probe = await c.probe('team/app');
    expect(probe.deletesEnabled).toBe(false);
    expect(probe.problem).toMatch(/user "reader" lack delete permission on repository team\/app/);
    await expect(c.deleteManifest('team/app', tokenImage.digest)).rejects.toThrow(/lack delete permission/);
    await expect(c.headManifest('team/app', 'v1')).resolves.toBe(tokenImage.digest);
    // Without catalog access the catalog is refused with the scope named.
    await expect(c.listRepositories()).rejects.toThrow(
      /user "reader" lack access to the catalog \(.*did not grant registry:catalog:\*/,
    );
  });

  it.each([
    ['anonymous', {}, /refused anonymous access/],
    ['a wrong password', { username: 'admin', password: 'nope' }, /rejected the credentials of user "admin"/],
  ])('token auth, %s: a clear error', async (_label, creds, message) => {
    const c = client(tokenRegistry.url, creds);
    await expect(c.listTags('team/app')).rejects.toThrow(message);
    await expect(c.probe('team/app')).resolves.toMatchObject({
      deletesEnabled: false,
      problem: expect.stringMatching(message),
    });
  });
});
