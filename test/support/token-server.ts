// A real Docker registry token server for integration tests: checks HTTP basic credentials against a table,
// grants each user the actions its table allows, and signs RS256 JWTs with an x5c header, as distribution's
// registry/auth/token verifies them (issuer, audience = service, exp/nbf with 60 s leeway, x5c leaf certificate
// verified against auth.token.rootcertbundle).
import { spawnSync } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What one user (or anonymous, under the name '') may do: resource name ('*' = any) → allowed actions. */
export interface Grant {
  readonly type: 'repository' | 'registry';
  /** Resource name, or '*' for every name of that type. */
  readonly name: string;
  /** Actions allowed, e.g. ['pull'] or ['pull', 'delete'] or ['*']. */
  readonly actions: readonly string[];
}

export interface TokenUser {
  readonly password: string;
  readonly grants: readonly Grant[];
}

export interface TokenServerOptions {
  /** Users by name. The name '' holds anonymous grants (no Authorization header). */
  readonly users: Readonly<Record<string, TokenUser>>;
  readonly service?: string;
  readonly issuer?: string;
  /** expires_in of issued tokens, in seconds. @default 300 */
  readonly expiresIn?: number;
  /** Loopback address to listen on (another one than the registry's plays "another host"). @default 127.0.0.1 */
  readonly host?: string;
}

export interface TokenRequestRecord {
  /** The Authorization header as received (to prove where credentials went). */
  readonly authorization: string | undefined;
  readonly account: string | undefined;
  readonly user: string | undefined;
  readonly scopes: readonly string[];
  readonly status: number;
}

export interface TokenServer {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** PEM file with the signing certificate (the registry's rootcertbundle). */
  readonly rootCertBundle: string;
  /** Every token request, in order. */
  readonly requests: TokenRequestRecord[];
  /** The `auth:` block for LocalRegistryOptions.extraConfig. */
  registryAuthConfig(): string;
  stop(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function makeSigningCert(dir: string): { key: KeyObject; certDer: Buffer; certPath: string } {
  const keyPath = join(dir, 'signing.key');
  const certPath = join(dir, 'signing.pem');
  const res = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=registry-janitor test token signer',
    ],
    { encoding: 'utf8' },
  );
  if (res.error || res.status !== 0) {
    throw new Error(
      `the token server needs the openssl CLI to make its signing certificate (apt-get install -y openssl): ` +
        `${res.error?.message ?? res.stderr}`,
    );
  }
  const pem = readFileSync(certPath, 'utf8');
  const body = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem)?.[1];
  if (!body) throw new Error(`openssl wrote no certificate to ${certPath}`);
  return {
    key: createPrivateKey(readFileSync(keyPath)),
    certDer: Buffer.from(body.replace(/\s+/g, ''), 'base64'),
    certPath,
  };
}

/** Parse `type:name:actions` (names may contain ':' only before the last one, e.g. a registry port). */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'rj-token-'));
  const { key, certDer, certPath } = makeSigningCert(dir);
  const service = options.service ?? 'registry-janitor-test';
  const issuer = options.issuer ?? 'registry-janitor-test-issuer';
  const expiresIn = options.expiresIn ?? 300;
  const requests: TokenRequestRecord[] = [];

  const signToken = (
    subject: string,
    access: { type: string; name: string; actions: string[] }[],
  ): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: issuer,
      sub: subject,
      aud: service,
      exp: now + expiresIn,
      nbf: now - 1,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
    const account = url.searchParams.get('account') ?? undefined;
    const reply = (status: number, body: unknown, user?: string): void => {
      requests.push({ authorization: req.headers.authorization, account, user, scopes, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token' || req.method !== 'GET') return reply(404, { error: 'not found' });
    if (url.searchParams.get('service') !== service) return reply(400, { error: 'unknown service' });

    let user = '';
    const authz = req.headers.authorization;
    if (authz !== undefined) {
      const m = /^Basic\s+(.+)$/i.exec(authz);
      const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      const name = colon >= 0 ? decoded.slice(0, colon) : '';
      const entry = options.users[name];
      if (!m || name === '' || !entry || entry.password !== decoded.slice(colon + 1)) {
        res.setHeader('www-authenticate', 'Basic realm="token"');
        return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] });
      }
      user = name;
    } else if (!options.users['']) {
      res.setHeader('www-authenticate', 'Basic realm="token"');
      return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
    }

    // Grant the intersection of what was asked and what the table allows, as real token servers do.
    const grants = options.users[user]?.grants ?? [];
    const access: { type: string; name: string; actions: string[] }[] = [];
    for (const scope of scopes) {
      const parsed = parseScope(scope);
      if (!parsed) continue;
      const allowed = grants
        .filter((g) => g.type === parsed.type && (g.name === '*' || g.name === parsed.name))
        .flatMap((g) => g.actions);
      const actions = parsed.actions.filter((a) => allowed.includes('*') || allowed.includes(a));
      if (actions.length > 0) access.push({ type: parsed.type, name: parsed.name, actions });
    }
    const token = signToken(user, access);
    reply(
      200,
      { token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() },
      user,
    );
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const realm = `http://${options.host ?? '127.0.0.1'}:${port}/token`;

  return {
    realm,
    service,
    issuer,
    rootCertBundle: certPath,
    requests,
    registryAuthConfig: () =>
      [
        'auth:',
        '  token:',
        `    realm: ${realm}`,
        `    service: ${service}`,
        `    issuer: ${issuer}`,
        `    rootcertbundle: ${certPath}`,
      ].join('\n'),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
