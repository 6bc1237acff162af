// Registry auth: WWW-Authenticate parsing, token caching per scope, basic auth, and the errors for missing or
// insufficient credentials, over MockAgent (the real registries are in test/integration/registry-client-auth).
import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from '../../lambda/adapters/registry/auth.ts';
import {
  PROBE_DIGEST,
  createRegistryClient,
  type RegistryClientOptions,
  type RegistryHttpClient,
} from '../../lambda/adapters/registry-client.ts';
import { AuthError } from '../../lambda/core/errors.ts';

const ORIGIN = 'http://registry.test';
const AUTH_ORIGIN = 'https://auth.test';
const JSON_HEADERS = { 'content-type': 'application/json' };
const CHALLENGE = `Bearer realm="${AUTH_ORIGIN}/token",service="registry.test"`;

describe('parseWwwAuthenticate', () => {
  it.each([
    ['', []],
    ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.docker.io/token',
            service: 'registry.docker.io',
            scope: 'repository:samalba/my-app:pull,push',
          },
        },
      ],
    ],
    [
      'bearer REALM=https://a/t, Service = svc , error="insufficient_scope"',
      [{ scheme: 'bearer', params: { realm: 'https://a/t', service: 'svc', error: 'insufficient_scope' } }],
    ],
    [
      'Bearer realm="https://a/t?x=1,y=2",scope="repository:a:pull repository:b:delete",error="say \\"hi\\""',
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://a/t?x=1,y=2',
            scope: 'repository:a:pull repository:b:delete',
            error: 'say "hi"',
          },
        },
      ],
    ],
    [
      'Basic realm="a", Bearer realm="b",service="c"',
      [
        { scheme: 'basic', params: { realm: 'a' } },
        { scheme: 'bearer', params: { realm: 'b', service: 'c' } },
      ],
    ],
    [
      'Negotiate abc+/==, Basic realm="x"',
      [
        { scheme: 'negotiate', params: {}, token68: 'abc+/==' },
        { scheme: 'basic', params: { realm: 'x' } },
      ],
    ],
    ['Bearer', [{ scheme: 'bearer', params: {} }]],
  ])('%j', (header, expected) => {
    expect(parseWwwAuthenticate(header)).toEqual(expected);
  });
});

function mocked(options: Partial<RegistryClientOptions> = {}): {
  agent: MockAgent;
  registry: ReturnType<MockAgent['get']>;
  auth: ReturnType<MockAgent['get']>;
  client: RegistryHttpClient;
} {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const client = createRegistryClient({
    url: ORIGIN,
    dispatcher: agent,
    sleep: () => Promise.resolve(),
    // The mock registry is plain http and its token server on another host: both allowed here, tested apart.
    allowInsecureHttp: true,
    tokenRealmHosts: ['auth.test'],
    ...options,
  });
  return { agent, registry: agent.get(ORIGIN), auth: agent.get(AUTH_ORIGIN), client };
}

type Reply = {
  statusCode: number;
  data?: object | string;
  responseOptions?: { headers?: Record<string, string> };
};

const tagsOk: Reply = { statusCode: 200, data: { tags: ['v1'] }, responseOptions: { headers: JSON_HEADERS } };
const unauthorized = (extra = ''): Reply => ({
  statusCode: 401,
  data: { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] },
  responseOptions: { headers: { ...JSON_HEADERS, 'www-authenticate': CHALLENGE + extra } },
});

/** A mock registry that wants `Bearer <token>` and a mock token server issuing numbered tokens. */
function tokenWorld(
  options: Partial<RegistryClientOptions> & { expiresIn?: number; grant?: (scope: string) => string } = {},
) {
  const m = mocked(options);
  const issued: { scope: string; authorization: string | undefined; token: string }[] = [];
  const grantedScope = new Map<string, string>();
  m.auth
    .intercept({ path: (p) => p.startsWith('/token?'), method: 'GET' })
    .reply((opts) => {
      const url = new URL(opts.path, AUTH_ORIGIN);
      const scope = url.searchParams.get('scope') ?? '';
      const token = `t${issued.length + 1}`;
      issued.push({ scope, authorization: (opts.headers as Record<string, string>).authorization, token });
      grantedScope.set(token, options.grant ? options.grant(scope) : scope);
      const body: Record<string, unknown> = { access_token: token };
      if (options.expiresIn !== undefined) body.expires_in = options.expiresIn;
      return { statusCode: 200, data: body, responseOptions: { headers: JSON_HEADERS } };
    })
    .persist();
  const seen: (string | undefined)[] = [];
  m.registry
    .intercept({ path: () => true, method: () => true })
    .reply<object>((opts): Reply => {
      const authz = (opts.headers as Record<string, string>).authorization;
      seen.push(authz);
      const token = authz?.startsWith('Bearer ') ? authz.slice(7) : undefined;
      const scope = token ? grantedScope.get(token) : undefined;
      if (scope === undefined) return unauthorized();
      // Like distribution: the challenge names the one action this request needed.
      const repo = /^\/v2\/(.+)\/(?:tags|manifests|blobs)\//.exec(opts.path)?.[1];
      const needed = repo
        ? `repository:${repo}:${opts.method === 'DELETE' ? 'delete' : 'pull'}`
        : 'registry:catalog:*';
      const [type, name, actions] = [needed.split(':')[0], needed.split(':')[1], needed.split(':')[2]!];
      const [gType, gName, gActions] = scope.split(':');
      if (
        gType !== type ||
        gName !== name ||
        !(gActions ?? '').split(',').some((a) => a === actions || a === '*')
      ) {
        return unauthorized(`,error="insufficient_scope",scope="${needed}"`);
      }
      if (opts.method === 'DELETE') {
        return {
          statusCode: 404,
          data: { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'x' }] },
          responseOptions: { headers: JSON_HEADERS },
        };
      }
      if (opts.path.startsWith('/v2/_catalog'))
        return { statusCode: 200, data: { repositories: ['a'] }, responseOptions: { headers: JSON_HEADERS } };
      return tagsOk;
    })
    .persist();
  return { ...m, issued, seen };
}

describe('token auth (MockAgent)', () => {
  let agent: MockAgent | undefined;
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });

  it('discovers the token server once, then sends tokens up front, one token per scope', async () => {
    const w = tokenWorld();
    agent = w.agent;
    await expect(w.client.listTags('a')).resolves.toEqual(['v1']);
    await w.client.listTags('a');
    await w.client.listTags('b');
    await w.client.listRepositories();
    expect(w.issued.map((i) => i.scope)).toEqual([
      'repository:a:pull',
      'repository:b:pull',
      'registry:catalog:*',
    ]);
    // Only the very first request went out bare.
    expect(w.seen).toEqual([undefined, 'Bearer t1', 'Bearer t1', 'Bearer t2', 'Bearer t3']);
    expect(w.client.stats()).toMatchObject({ tags: 4, catalog: 1, token: 3 });
  });

  it('shares one token fetch between concurrent requests for the same scope', async () => {
    const w = tokenWorld();
    agent = w.agent;
    const results = await Promise.all(Array.from({ length: 20 }, () => w.client.listTags('a')));
    expect(results.every((r) => r[0] === 'v1')).toBe(true);
    expect(w.issued).toHaveLength(1);
  });

  it('fetches a new token when the cached one expires', async () => {
    let now = 1_000_000;
    const w = tokenWorld({ now: () => now, expiresIn: 120 });
    agent = w.agent;
    await w.client.listTags('a');
    now += 60_000;
    await w.client.listTags('a');
    expect(w.issued).toHaveLength(1);
    now += 31_000; // past 120 s minus the 30 s renewal margin
    await w.client.listTags('a');
    expect(w.issued.map((i) => i.token)).toEqual(['t1', 't2']);
  });

  it('uses 60 s when the token server gives no expires_in', async () => {
    let now = 0;
    const w = tokenWorld({ now: () => now });
    agent = w.agent;
    await w.client.listTags('a');
    now += 44_000;
    await w.client.listTags('a');
    now += 2_000; // past 60 s minus the 15 s margin
    await w.client.listTags('a');
    expect(w.issued).toHaveLength(2);
  });

  it('asks for pull until a DELETE or PUT in that repository, then only what that needs, there only', async () => {
    const w = tokenWorld();
    agent = w.agent;
    await w.client.listTags('a');
    await w.client.listTags('b');
    await w.client
      .putManifest('a', 'x', 'application/vnd.oci.image.manifest.v1+json', new Uint8Array([123, 125]))
      .catch(() => undefined);
    await w.client.deleteManifest('a', PROBE_DIGEST);
    await w.client.listTags('a');
    await w.client.listTags('b');
    await w.client.deleteManifest('c', PROBE_DIGEST);
    expect(w.issued.map((i) => i.scope)).toEqual([
      'repository:a:pull',
      'repository:b:pull',
      'repository:a:pull,push',
      'repository:a:pull,push,delete',
      'repository:c:pull,delete',
    ]);
  });

  it('a read-only client refuses DELETE and PUT before sending anything', async () => {
    const w = tokenWorld({ actions: 'pull' });
    agent = w.agent;
    await w.client.listTags('a');
    await expect(w.client.deleteManifest('a', PROBE_DIGEST)).rejects.toThrow(
      /refusing to DELETE in a: this registry client is read-only/,
    );
    await expect(w.client.probe('a')).rejects.toThrow(/read-only/);
    await expect(
      w.client.putManifest(
        'a',
        'x',
        'application/vnd.oci.image.manifest.v1+json',
        new Uint8Array([123, 125]),
      ),
    ).rejects.toThrow(/refusing to PUT in a/);
    expect(w.issued.map((i) => i.scope)).toEqual(['repository:a:pull']);
    expect(w.client.stats()).toMatchObject({ delete: 0, put: 0 });
  });

  it('sends basic credentials to the token server', async () => {
    const w = tokenWorld({ username: 'alice', password: 's3cret' });
    agent = w.agent;
    await w.client.listTags('a');
    expect(w.issued[0]!.authorization).toBe('Basic ' + Buffer.from('alice:s3cret').toString('base64'));
  });

  it('names the missing permission when a fresh token is refused, and the probe reports it', async () => {
    const w = tokenWorld({ username: 'bob', password: 'pw', grant: (scope) => scope.replace(',delete', '') });
    agent = w.agent;
    const err = await w.client.deleteManifest('a', PROBE_DIGEST).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(/user "bob" lack delete permission on repository a/);
    const probe = await w.client.probe('a');
    expect(probe).toMatchObject({ deletesEnabled: false, tagDelete: false });
    expect(probe.problem).toMatch(/lack delete permission on repository a.*or run without deleting/);
  });

  it('re-fetches once when a cached token is refused', async () => {
    const m = mocked();
    agent = m.agent;
    let tokens = 0;
    m.auth
      .intercept({ path: (p) => p.startsWith('/token?') })
      .reply(() => ({
        statusCode: 200,
        data: { token: `t${++tokens}` },
        responseOptions: { headers: JSON_HEADERS },
      }))
      .persist();
    m.registry.intercept({ path: '/v2/a/tags/list' }).reply(() => unauthorized());
    m.registry
      .intercept({ path: '/v2/a/tags/list', headers: { authorization: 'Bearer t1' } })
      .reply(() => tagsOk);
    // The registry restarted with another signing key: t1 is now refused, t2 works.
    m.registry
      .intercept({ path: '/v2/a/tags/list', headers: { authorization: 'Bearer t1' } })
      .reply(() => unauthorized(',error="invalid_token"'));
    m.registry
      .intercept({ path: '/v2/a/tags/list', headers: { authorization: 'Bearer t2' } })
      .reply(() => tagsOk);
    await m.client.listTags('a');
    await expect(m.client.listTags('a')).resolves.toEqual(['v1']);
    expect(tokens).toBe(2);
    m.agent.assertNoPendingInterceptors();
  });

  it('explains a token the registry cannot verify', async () => {
    const m = mocked();
    agent = m.agent;
    m.auth
      .intercept({ path: (p) => p.startsWith('/token?') })
      .reply(200, { token: 'bad' }, { headers: JSON_HEADERS })
      .persist();
    m.registry
      .intercept({ path: '/v2/a/tags/list' })
      .reply(() => unauthorized())
      .times(1);
    m.registry.intercept({ path: '/v2/a/tags/list' }).reply(() => unauthorized(',error="invalid_token"'));
    await expect(m.client.listTags('a')).rejects.toThrow(/rootcertbundle/);
  });

  it.each([
    [undefined, /refused anonymous access \(401\): pass --username/],
    ['alice', /rejected the credentials of user "alice"/],
  ])('reports a token server that refuses %s', async (username, message) => {
    const m = mocked(username ? { username, password: 'wrong' } : {});
    agent = m.agent;
    m.auth
      .intercept({ path: (p) => p.startsWith('/token?') })
      .reply(401, { errors: [] }, { headers: JSON_HEADERS });
    m.registry.intercept({ path: '/v2/a/tags/list' }).reply(() => unauthorized());
    await expect(m.client.listTags('a')).rejects.toThrow(message);
  });
});

describe('basic auth (MockAgent)', () => {
  let agent: MockAgent | undefined;
  afterEach(async () => {
    agent?.assertNoPendingInterceptors();
    await agent?.close();
    agent = undefined;
  });
  const basic = 'Basic ' + Buffer.from('alice:pw').toString('base64');
  const challenge = {
    statusCode: 401,
    data: '',
    responseOptions: { headers: { 'www-authenticate': 'Basic realm="Registry Realm"' } },
  };

  it('answers the challenge once, then sends credentials up front', async () => {
    const m = mocked({ username: 'alice', password: 'pw' });
    agent = m.agent;
    m.registry.intercept({ path: '/v2/a/tags/list' }).reply(() => challenge);
    m.registry
      .intercept({ path: '/v2/a/tags/list', headers: { authorization: basic } })
      .reply(() => tagsOk)
      .times(2);
    m.registry.intercept({ path: '/v2/b/tags/list', headers: { authorization: basic } }).reply(() => tagsOk);
    await m.client.listTags('a');
    await m.client.listTags('a');
    await m.client.listTags('b');
    expect(m.client.stats().tags).toBe(4);
  });

  it('asks for credentials when none were given', async () => {
    const m = mocked();
    agent = m.agent;
    m.registry.intercept({ path: '/v2/a/tags/list' }).reply(() => challenge);
    await expect(m.client.listTags('a')).rejects.toThrow(
      /requires credentials .*--username\/--password-stdin or REGISTRY_USERNAME\/REGISTRY_PASSWORD/,
    );
  });

  it('says the password is wrong when the registry refuses it', async () => {
    const m = mocked({ username: 'alice', password: 'pw' });
    agent = m.agent;
    m.registry
      .intercept({ path: '/v2/a/tags/list' })
      .reply(() => challenge)
      .times(2);
    await expect(m.client.listTags('a')).rejects.toThrow(
      /rejected the username and password of user "alice"/,
    );
  });

  it('rejects a 401 without a challenge it understands', async () => {
    const m = mocked();
    agent = m.agent;
    m.registry
      .intercept({ path: '/v2/a/tags/list' })
      .reply(401, '', { headers: { 'www-authenticate': 'Negotiate' } });
    await expect(m.client.listTags('a')).rejects.toThrow(/only Basic and Bearer/);
  });
});
