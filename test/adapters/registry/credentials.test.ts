// Where the registry credentials may go (issue 9 item 6), against the real test token server: loopback
// registries that only challenge, and a token server on another loopback address playing "another host".
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryClient, type RegistryHttpClient } from '../../../lambda/adapters/registry-client.ts';
import { AuthError, ConfigError } from '../../../lambda/core/errors.ts';
import { startTokenServer, type TokenServer } from '../../support/token-server.ts';

const ADMIN = { username: 'admin', password: 'admin-pw' };
const users = {
  admin: { password: ADMIN.password, grants: [{ type: 'repository' as const, name: '*', actions: ['*'] }] },
};

/** A registry front that wants a Bearer token from `realm` and lists one tag once it has one. */
function bearerRegistry(realm: () => string, service: string) {
  const seen: (string | undefined)[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    seen.push(req.headers.authorization);
    if (!req.headers.authorization?.startsWith('Bearer ')) {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="${realm()}",service="${service}",scope="repository:a:pull"`,
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name: 'a', tags: ['v1'] }));
  };
  return { seen, handler };
}

async function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

async function close(server: Server | undefined): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('credentials stay on TLS and on the hosts allowed', () => {
  let dir: string;
  let tokens: TokenServer;
  let otherHostTokens: TokenServer;
  const servers: Server[] = [];
  const clients: RegistryHttpClient[] = [];
  const client = (opts: Parameters<typeof createRegistryClient>[0]): RegistryHttpClient => {
    const c = createRegistryClient({ sleep: () => Promise.resolve(), ...opts });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rj-cred-'));
    [tokens, otherHostTokens] = await Promise.all([
      startTokenServer({ users }),
      startTokenServer({ users, host: '127.0.0.2' }),
    ]);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map(close));
    tokens.requests.length = 0;
    otherHostTokens.requests.length = 0;
  });

  afterAll(async () => {
    await Promise.all([tokens?.stop(), otherHostTokens?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('an https registry naming an http: token realm: the realm gets no credentials, and the error says why', async () => {
    const res = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'].concat([
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ]),
      { encoding: 'utf8' },
    );
    if (res.error || res.status !== 0) throw new Error(`this test needs the openssl CLI: ${res.stderr}`);
    const caPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const registry = bearerRegistry(() => tokens.realm, tokens.service);
    const server = createHttpsServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: caPem },
      registry.handler,
    );
    servers.push(server);
    const url = `https://127.0.0.1:${await listen(server)}`;

    const err = await client({ url, caPem, ...ADMIN })
      .listTags('a')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(
      /plain-http token realm .*auth\.token\.realm to an https:\/\/ URL/,
    );
    // The token server on plain http never saw the password (the old client sent it Basic credentials).
    expect(tokens.requests).toEqual([]);
  });

  it('a token realm on another host is asked only when that host is allow-listed', async () => {
    const registry = bearerRegistry(() => otherHostTokens.realm, otherHostTokens.service);
    const server = createServer(registry.handler);
    servers.push(server);
    const url = `http://127.0.0.1:${await listen(server)}`;

    const refused = await client({ url, ...ADMIN, allowInsecureHttp: true })
      .listTags('a')
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AuthError);
    expect((refused as Error).message).toMatch(
      /on host 127\.0\.0\.2, not the registry's own \(127\.0\.0\.1\).*--token-realm-host 127\.0\.0\.2 \(construct prop tokenRealmHosts, TOKEN_REALM_HOSTS=127\.0\.0\.2\)/,
    );
    expect(otherHostTokens.requests).toEqual([]);

    const allowed = client({ url, ...ADMIN, allowInsecureHttp: true, tokenRealmHosts: ['127.0.0.2'] });
    await expect(allowed.listTags('a')).resolves.toEqual(['v1']);
    expect(otherHostTokens.requests.map((r) => [r.user, r.status])).toEqual([['admin', 200]]);
  });

  it('credentials for a plain-http registry URL need --allow-insecure-http; nothing is sent without it', async () => {
    const seen: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="Registry Realm"' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name: 'a', tags: ['v1'] }));
    });
    servers.push(server);
    const url = `http://127.0.0.1:${await listen(server)}`;

    let err: unknown;
    try {
      await client({ url, ...ADMIN }).listTags('a');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      /plain http, so its username and password would cross the network unencrypted: use an https:\/\/ registry URL, or.*--allow-insecure-http \(construct prop allowInsecureHttp, ALLOW_INSECURE_HTTP=true\)/,
    );
    expect(seen).toEqual([]);

    await expect(client({ url, ...ADMIN, allowInsecureHttp: true }).listTags('a')).resolves.toEqual(['v1']);
    expect(seen).toEqual([undefined, 'Basic ' + Buffer.from('admin:admin-pw').toString('base64')]);
  });

  it('anonymous access to a plain-http registry needs no opt-in', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name: 'a', tags: ['v1'] }));
    });
    servers.push(server);
    const url = `http://127.0.0.1:${await listen(server)}`;
    await expect(client({ url }).listTags('a')).resolves.toEqual(['v1']);
  });

  it.each(['https://auth.internal', 'auth.internal/token', 'a b', ''])(
    'refuses the token realm host %j with the form to use',
    (host) => {
      expect(() => createRegistryClient({ url: 'https://r.test', tokenRealmHosts: [host] })).toThrow(
        /is not a host name: give it as host or host:port/,
      );
    },
  );
});
