// The registry HTTP client over undici's MockAgent (retries, pagination, manifest checks, probe answers) and
// loopback HTTP(S) servers; the real registry is in test/integration/registry-client.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockAgent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, RegistryError } from '../../lambda/core/errors.ts';
import { MANIFEST_ACCEPT } from '../../lambda/core/manifest.ts';
import {
  PROBE_DIGEST,
  assertReference,
  assertRepositoryName,
  createRegistryClient,
  nextLink,
  parseRetryAfter,
  type RegistryClientOptions,
  type RegistryHttpClient,
} from '../../lambda/adapters/registry-client.ts';
import { MEDIA } from '../../lambda/demo/seed.ts';

const ORIGIN = 'http://registry.test';
const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };
const ZERO = PROBE_DIGEST;

function sha256(data: string | Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

function errorBody(code: string, message = code.toLowerCase()): string {
  return JSON.stringify({ errors: [{ code, message, detail: null }] });
}

/** A client on a MockAgent that refuses real network, with recorded (not real) retry waits. */
function mocked(options: Partial<RegistryClientOptions> = {}): {
  agent: MockAgent;
  pool: ReturnType<MockAgent['get']>;
  client: RegistryHttpClient;
  waits: number[];
} {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const waits: number[] = [];
  const client = createRegistryClient({
    url: ORIGIN,
    dispatcher: agent,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    ...options,
  });
  return { agent, pool: agent.get(ORIGIN), client, waits };
}

async function caught(promise: Promise<unknown>): Promise<RegistryError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof RegistryError) return err;
    throw err;
  }
  throw new Error('expected a RegistryError, but the call succeeded');
}

describe('options and names', () => {
  it.each([
    ['not a url', /is not a URL/],
    ['ftp://registry.test', /https:\/\/ or http:\/\//],
    ['http://registry.test/v2/', /without a path/],
    ['http://registry.test/?x=1', /without a path/],
    ['http://user:pw@registry.test', /must not contain credentials/],
  ])('rejects the registry URL %s', (url, message) => {
    expect(() => createRegistryClient({ url })).toThrow(ConfigError);
    expect(() => createRegistryClient({ url })).toThrow(message);
  });

  it('keeps only the origin as base URL', () => {
    expect(
      createRegistryClient({ url: 'https://registry.test:5000/', dispatcher: new MockAgent() }).baseUrl,
    ).toBe('https://registry.test:5000');
  });

  it.each([
    [{ concurrency: 0 }, /concurrency/],
    [{ retries: -1 }, /retries/],
    [{ username: 'u' }, /both a username and a password/],
  ])('rejects options %j', (opts, message) => {
    expect(() => createRegistryClient({ url: ORIGIN, dispatcher: new MockAgent(), ...opts })).toThrow(
      message,
    );
  });

  it.each(['a', 'library/nginx', 'a-b/c__d/e.f', 'a--b', 'localhost:5000/team/app', 'Host.example/app'])(
    'accepts repository name %s',
    (name) => expect(() => assertRepositoryName(name)).not.toThrow(),
  );

  it.each(['', 'App', 'a/../b', 'a//b', 'a/', '/a', 'a?b', 'a b', '-a', 'a_', 'x'.repeat(256)])(
    'rejects repository name %j',
    (name) => expect(() => assertRepositoryName(name)).toThrow(ConfigError),
  );

  it.each(['latest', 'v1.2.3-rc_1', 'sha256:' + 'a'.repeat(64)])('accepts reference %s', (ref) =>
    expect(() => assertReference(ref)).not.toThrow(),
  );

  it.each(['', '.hidden', 'a/b', 'x'.repeat(129), 'sha256:', 'a?b'])('rejects reference %j', (ref) =>
    expect(() => assertReference(ref)).toThrow(ConfigError),
  );
});

describe('header parsing', () => {
  it.each([
    ['</v2/_catalog?last=b&n=2>; rel="next"', '/v2/_catalog?last=b&n=2'],
    ['<http://other:5000/v2/x/tags/list?last=a>; rel=next', 'http://other:5000/v2/x/tags/list?last=a'],
    ['</a>; rel="prev", </b>; rel="next"', '/b'],
    ['</a>; rel="prev"', undefined],
    [undefined, undefined],
  ])('Link %j → %j', (header, expected) => {
    expect(nextLink(header)).toBe(expected);
  });

  it.each([
    ['3', 3000],
    ['0', 0],
    ['Wed, 21 Oct 2015 07:28:05 GMT', 5000],
    ['Wed, 21 Oct 2015 07:27:00 GMT', 0],
    ['99999', 60_000],
    ['soon', undefined],
    [undefined, undefined],
  ])('Retry-After %j → %j ms', (value, expected) => {
    expect(parseRetryAfter(value, Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(expected);
  });
});

describe('retries', () => {
  let agent: MockAgent | undefined;
  afterEach(async () => {
    agent?.assertNoPendingInterceptors();
    await agent?.close();
    agent = undefined;
  });

  it('retries 503 and 429, honouring Retry-After in seconds and as a date', async () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    const m = mocked({ now: () => now });
    agent = m.agent;
    m.pool.intercept({ path: '/v2/_catalog?n=1000' }).reply(503, 'busy', { headers: { 'retry-after': '2' } });
    m.pool.intercept({ path: '/v2/_catalog?n=1000' }).reply(429, errorBody('TOOMANYREQUESTS'), {
      headers: { 'retry-after': 'Wed, 21 Oct 2015 07:28:07 GMT' },
    });
    m.pool.intercept({ path: '/v2/_catalog?n=1000' }).reply(502, 'bad gateway');
    m.pool
      .intercept({ path: '/v2/_catalog?n=1000' })
      .reply(200, { repositories: ['a'] }, { headers: JSON_HEADERS });
    await expect(m.client.listRepositories()).resolves.toEqual(['a']);
    expect(m.waits.slice(0, 2)).toEqual([2000, 7000]);
    // No Retry-After: full jitter below the third attempt's cap.
    expect(m.waits[2]).toBeGreaterThanOrEqual(0);
    expect(m.waits[2]).toBeLessThanOrEqual(1000);
    expect(m.client.stats()).toMatchObject({ catalog: 4, retries: 3 });
  });

  it('gives up after the configured retries with the status in the error', async () => {
    const m = mocked({ retries: 2 });
    agent = m.agent;
    m.pool.intercept({ path: '/v2/a/tags/list' }).reply(500, errorBody('UNKNOWN', 'disk broke')).times(3);
    const err = await caught(m.client.listTags('a'));
    expect(err.details.status).toBe(500);
    expect(err.message).toMatch(/answered 500 UNKNOWN: disk broke.*check its logs.*after 3 attempts/);
    expect(m.waits).toHaveLength(2);
  });

  it('retries a reset connection on GET', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: '/v2/a/tags/list' })
      .replyWithError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    m.pool
      .intercept({ path: '/v2/a/tags/list' })
      .reply(200, { name: 'a', tags: ['x'] }, { headers: JSON_HEADERS });
    await expect(m.client.listTags('a')).resolves.toEqual(['x']);
    expect(m.client.stats()).toMatchObject({ tags: 2, retries: 1 });
  });

  it('does not retry a DELETE that got 500: the caller must re-check what happened', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: `/v2/a/manifests/${ZERO.replace('0', '1')}`, method: 'DELETE' })
      .reply(500, 'oops');
    const err = await caught(m.client.deleteManifest('a', ZERO.replace('0', '1')));
    expect(err.details.status).toBe(500);
    expect(m.client.stats()).toMatchObject({ delete: 1, retries: 0 });
  });

  it('does not retry a DELETE whose connection was reset (it may have been applied)', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: `/v2/a/manifests/${ZERO}`, method: 'DELETE' })
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const err = await caught(m.client.deleteManifest('a', ZERO));
    expect(err.message).toMatch(/cannot reach http:\/\/registry\.test/);
    expect(m.client.stats()).toMatchObject({ delete: 1, retries: 0 });
  });

  it('retries a DELETE on 429 and on a refused connection', async () => {
    const m = mocked();
    agent = m.agent;
    const path = `/v2/a/manifests/${ZERO}`;
    m.pool.intercept({ path, method: 'DELETE' }).reply(429, '', { headers: { 'retry-after': '1' } });
    m.pool
      .intercept({ path, method: 'DELETE' })
      .replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    m.pool.intercept({ path, method: 'DELETE' }).reply(202, '');
    await expect(m.client.deleteManifest('a', ZERO)).resolves.toBe('deleted');
    expect(m.client.stats()).toMatchObject({ delete: 3, retries: 2 });
    expect(m.waits[0]).toBe(1000);
  });
});

describe('listing', () => {
  let agent: MockAgent | undefined;
  afterEach(async () => {
    agent?.assertNoPendingInterceptors();
    await agent?.close();
    agent = undefined;
  });

  it('follows catalog Links, relative and absolute, against the base URL', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: '/v2/_catalog?n=1000' })
      .reply(
        200,
        { repositories: ['b', 'a/x'] },
        { headers: { ...JSON_HEADERS, link: '</v2/_catalog?last=a%2Fx&n=1000>; rel="next"' } },
      );
    // An absolute Link naming an internal host (a proxy in front): only its path is used.
    m.pool.intercept({ path: '/v2/_catalog?last=a%2Fx&n=1000' }).reply(
      200,
      { repositories: ['c'] },
      {
        headers: { ...JSON_HEADERS, link: '<http://internal:5000/v2/_catalog?last=c&n=1000>; rel="next"' },
      },
    );
    m.pool
      .intercept({ path: '/v2/_catalog?last=c&n=1000' })
      .reply(200, { repositories: [] }, { headers: JSON_HEADERS });
    await expect(m.client.listRepositories()).resolves.toEqual(['b', 'a/x', 'c']);
  });

  it('falls back to the default page size when n is above catalog.maxentries', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool.intercept({ path: '/v2/_catalog?n=1000' }).reply(400, errorBody('PAGINATION_NUMBER_INVALID'), {
      headers: JSON_HEADERS,
    });
    m.pool.intercept({ path: '/v2/_catalog' }).reply(200, { repositories: ['a'] }, { headers: JSON_HEADERS });
    await expect(m.client.listRepositories()).resolves.toEqual(['a']);
  });

  it('explains a catalog that is not served', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool.intercept({ path: '/v2/_catalog?n=1000' }).reply(404, '<html>nope</html>');
    const err = await caught(m.client.listRepositories());
    expect(err.message).toMatch(/does not serve the catalog API/);
  });

  it('stops when a registry sends the same next page twice', async () => {
    const m = mocked();
    agent = m.agent;
    const link = { ...JSON_HEADERS, link: '</v2/_catalog?n=1000>; rel="next"' };
    m.pool.intercept({ path: '/v2/_catalog?n=1000' }).reply(200, { repositories: ['a'] }, { headers: link });
    await expect(m.client.listRepositories()).rejects.toThrow(/pagination loops/);
  });

  it.each([
    ['null tags', 200, { name: 'a', tags: null }],
    ['empty tags', 200, { name: 'a', tags: [] }],
    ['NAME_UNKNOWN', 404, JSON.parse(errorBody('NAME_UNKNOWN')) as object],
  ])('treats %s as no tags', async (_label, status, body) => {
    const m = mocked();
    agent = m.agent;
    m.pool.intercept({ path: '/v2/a/tags/list' }).reply(status, body, { headers: JSON_HEADERS });
    await expect(m.client.listTags('a')).resolves.toEqual([]);
  });

  it('merges tag pages and sorts by code point', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: '/v2/team/app/tags/list' })
      .reply(
        200,
        { tags: ['b', 'a', 'B', '10'] },
        { headers: { ...JSON_HEADERS, link: '</v2/team/app/tags/list?last=b&n=4>; rel="next"' } },
      );
    m.pool
      .intercept({ path: '/v2/team/app/tags/list?last=b&n=4' })
      .reply(200, { tags: ['b', 'c', '9'] }, { headers: JSON_HEADERS });
    await expect(m.client.listTags('team/app')).resolves.toEqual(['10', '9', 'B', 'a', 'b', 'c']);
  });

  it('does not take an HTML 404 for "no tags"', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: '/v2/a/tags/list' })
      .reply(404, '<html>not found</html>', { headers: { 'content-type': 'text/html' } });
    await expect(m.client.listTags('a')).rejects.toThrow(/answered 404/);
  });
});

describe('manifests and blobs', () => {
  let agent: MockAgent | undefined;
  afterEach(async () => {
    agent?.assertNoPendingInterceptors();
    await agent?.close();
    agent = undefined;
  });

  const types = MANIFEST_ACCEPT;

  it.each(types)('GET serves %s with its digest, asking for every manifest type', async (type) => {
    const m = mocked();
    agent = m.agent;
    const body = JSON.stringify({ schemaVersion: 2, mediaType: type });
    let accept = '';
    m.pool.intercept({ path: '/v2/a/manifests/v1' }).reply((opts) => {
      accept = (opts.headers as Record<string, string>).accept ?? '';
      return {
        statusCode: 200,
        data: body,
        responseOptions: { headers: { 'content-type': type, 'docker-content-digest': sha256(body) } },
      };
    });
    const got = await m.client.getManifest('a', 'v1');
    expect(got).toMatchObject({ digest: sha256(body), mediaType: type });
    expect(Buffer.from(got!.body).toString()).toBe(body);
    for (const t of MANIFEST_ACCEPT) expect(accept.split(', ')).toContain(t);
  });

  it('computes the digest when Docker-Content-Digest is missing', async () => {
    const m = mocked();
    agent = m.agent;
    const body = '{"schemaVersion":2}';
    m.pool
      .intercept({ path: '/v2/a/manifests/v1' })
      .reply(200, body, { headers: { 'content-type': MEDIA.ociManifest } });
    await expect(m.client.getManifest('a', 'v1')).resolves.toMatchObject({ digest: sha256(body) });
  });

  it.each([
    ['an HTML page', { 'content-type': 'text/html' }, /answered text\/html.*proxy/],
    [
      'a digest that does not match the body',
      { 'content-type': MEDIA.ociManifest, 'docker-content-digest': sha256('other') },
      /hash to .* but Docker-Content-Digest says/,
    ],
    [
      'schema1 without a digest',
      { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' },
      /schema1 .* without Docker-Content-Digest/,
    ],
  ])('refuses %s', async (_label, headers, message) => {
    const m = mocked();
    agent = m.agent;
    m.pool.intercept({ path: '/v2/a/manifests/v1' }).reply(200, '{"schemaVersion":2}', { headers });
    await expect(m.client.getManifest('a', 'v1')).rejects.toThrow(message);
  });

  it('refuses a manifest served under another digest than the one asked for', async () => {
    const m = mocked();
    agent = m.agent;
    const body = '{"schemaVersion":2}';
    const asked = 'sha256:' + 'b'.repeat(64);
    m.pool.intercept({ path: `/v2/a/manifests/${asked}` }).reply(200, body, {
      headers: { 'content-type': MEDIA.ociManifest, 'docker-content-digest': sha256(body) },
    });
    await expect(m.client.getManifest('a', asked)).rejects.toThrow(/for a request by digest/);
  });

  it('refuses a manifest over the size limit', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: '/v2/a/manifests/v1' })
      .reply(200, Buffer.alloc(5 * 1024 * 1024, 32), { headers: { 'content-type': MEDIA.ociManifest } });
    await expect(m.client.getManifest('a', 'v1')).rejects.toThrow(/body over 4194304 bytes/);
  });

  it('returns null for 404 MANIFEST_UNKNOWN, HEAD included', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: '/v2/a/manifests/gone' })
      .reply(404, errorBody('MANIFEST_UNKNOWN'), { headers: JSON_HEADERS });
    m.pool.intercept({ path: '/v2/a/manifests/gone', method: 'HEAD' }).reply(404, '');
    await expect(m.client.getManifest('a', 'gone')).resolves.toBeNull();
    await expect(m.client.headManifest('a', 'gone')).resolves.toBeNull();
  });

  it('HEAD returns Docker-Content-Digest and requires it', async () => {
    const m = mocked();
    agent = m.agent;
    const digest = 'sha256:' + 'c'.repeat(64);
    m.pool
      .intercept({ path: '/v2/a/manifests/v1', method: 'HEAD' })
      .reply(200, '', { headers: { 'content-type': MEDIA.dockerList, 'docker-content-digest': digest } });
    m.pool
      .intercept({ path: '/v2/a/manifests/v2', method: 'HEAD' })
      .reply(200, '', { headers: { 'content-type': MEDIA.dockerList } });
    await expect(m.client.headManifest('a', 'v1')).resolves.toBe(digest);
    await expect(m.client.headManifest('a', 'v2')).rejects.toThrow(/without a valid Docker-Content-Digest/);
  });

  it('follows a blob redirect to storage without sending the registry credentials there', async () => {
    const m = mocked({ username: 'u', password: 'p', allowInsecureHttp: true });
    agent = m.agent;
    const blob = '{"created":"2024-01-01T00:00:00Z"}';
    const digest = sha256(blob);
    const path = `/v2/a/blobs/${digest}`;
    m.pool
      .intercept({ path })
      .reply(401, errorBody('UNAUTHORIZED'), { headers: { 'www-authenticate': 'Basic realm="r"' } });
    m.pool
      .intercept({ path, headers: { authorization: 'Basic ' + Buffer.from('u:p').toString('base64') } })
      .reply(307, '', { headers: { location: 'https://bucket.s3.test/blob?X-Amz-Signature=abc' } });
    let storageAuth: string | undefined = 'unset';
    m.agent
      .get('https://bucket.s3.test')
      .intercept({ path: '/blob?X-Amz-Signature=abc' })
      .reply((opts) => {
        storageAuth = (opts.headers as Record<string, string>).authorization;
        return { statusCode: 200, data: blob };
      });
    expect(Buffer.from(await m.client.getBlob('a', digest)).toString()).toBe(blob);
    expect(storageAuth).toBeUndefined();
  });

  it('refuses a blob whose bytes do not match its digest', async () => {
    const m = mocked();
    agent = m.agent;
    const digest = sha256('expected');
    m.pool.intercept({ path: `/v2/a/blobs/${digest}` }).reply(200, 'tampered');
    const err = await caught(m.client.getBlob('a', digest));
    expect(err.details.code).toBe('DIGEST_MISMATCH');
  });

  it('PUT sends the media type and returns the stored digest', async () => {
    const m = mocked();
    agent = m.agent;
    const body = new TextEncoder().encode('{"schemaVersion":2}');
    m.pool
      .intercept({ path: '/v2/a/manifests/t', method: 'PUT', headers: { 'content-type': MEDIA.ociManifest } })
      .reply(201, '', { headers: { 'docker-content-digest': sha256(body) } });
    await expect(m.client.putManifest('a', 't', MEDIA.ociManifest, body)).resolves.toBe(sha256(body));
  });
});

describe('delete and probe', () => {
  let agent: MockAgent | undefined;
  afterEach(async () => {
    agent?.assertNoPendingInterceptors();
    await agent?.close();
    agent = undefined;
  });

  const digest = 'sha256:' + 'd'.repeat(64);
  const text405 = {
    status: 405,
    body: 'Method Not Allowed\n',
    headers: { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' },
  };
  const json405 = {
    status: 405,
    body: errorBody('UNSUPPORTED', 'The operation is unsupported.'),
    headers: JSON_HEADERS,
  };

  it.each([
    ['202', { status: 202, body: '', headers: {} }, 'deleted'],
    [
      '404 MANIFEST_UNKNOWN',
      { status: 404, body: errorBody('MANIFEST_UNKNOWN'), headers: JSON_HEADERS },
      'not-found',
    ],
  ])('DELETE answered %s → %s', async (_label, answer, outcome) => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: `/v2/a/manifests/${digest}`, method: 'DELETE' })
      .reply(answer.status, answer.body, { headers: answer.headers });
    await expect(m.client.deleteManifest('a', digest)).resolves.toBe(outcome);
  });

  it.each([
    [
      'JSON 405',
      json405,
      'UNSUPPORTED',
      /storage\.delete\.enabled: true.*REGISTRY_STORAGE_DELETE_ENABLED=true/,
    ],
    ['text 405', text405, 'READ_ONLY', /read-only maintenance mode/],
    [
      '400 DIGEST_INVALID for a tag',
      { status: 400, body: errorBody('DIGEST_INVALID'), headers: JSON_HEADERS },
      'TAG_DELETE_UNSUPPORTED',
      /cannot delete by tag/,
    ],
  ])('DELETE answered %s is an error with code %s', async (label, answer, code, message) => {
    const m = mocked();
    agent = m.agent;
    const ref = label.includes('tag') ? 'v1' : digest;
    m.pool
      .intercept({ path: `/v2/a/manifests/${ref}`, method: 'DELETE' })
      .reply(answer.status, answer.body, { headers: answer.headers });
    const err = await caught(m.client.deleteManifest('a', ref));
    expect(err.details.code).toBe(code);
    expect(err.message).toMatch(message);
  });

  const notFound = { status: 404, body: errorBody('MANIFEST_UNKNOWN'), headers: JSON_HEADERS };
  const digestInvalid = { status: 400, body: errorBody('DIGEST_INVALID'), headers: JSON_HEADERS };
  it.each([
    ['v3: deletes and tag deletes work', notFound, notFound, { deletesEnabled: true, tagDelete: true }],
    [
      '2.8: deletes work, tags cannot be deleted',
      notFound,
      digestInvalid,
      { deletesEnabled: true, tagDelete: false },
    ],
    [
      'deletes disabled',
      json405,
      undefined,
      {
        deletesEnabled: false,
        tagDelete: false,
        problem: expect.stringMatching(/storage\.delete\.enabled: true/),
      },
    ],
    [
      'read-only',
      text405,
      undefined,
      { deletesEnabled: false, tagDelete: false, problem: expect.stringMatching(/read-only/) },
    ],
  ])('probe: %s', async (_label, digestAnswer, tagAnswer, expected) => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: `/v2/a/manifests/${ZERO}`, method: 'DELETE' })
      .reply(digestAnswer.status, digestAnswer.body, { headers: digestAnswer.headers });
    if (tagAnswer) {
      m.pool
        .intercept({ path: (p) => p.startsWith('/v2/a/manifests/registry-janitor-probe-'), method: 'DELETE' })
        .reply(tagAnswer.status, tagAnswer.body, { headers: tagAnswer.headers });
    }
    await expect(m.client.probe('a')).resolves.toEqual(expected);
  });

  it('probe refuses an answer that proves nothing (an HTML 404 from a proxy)', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool
      .intercept({ path: `/v2/a/manifests/${ZERO}`, method: 'DELETE' })
      .reply(404, '<html>no</html>', { headers: { 'content-type': 'text/html' } });
    await expect(m.client.probe('a')).rejects.toThrow(/unexpected answer 404/);
  });

  it('403 is blamed on a proxy', async () => {
    const m = mocked();
    agent = m.agent;
    m.pool.intercept({ path: `/v2/a/manifests/${digest}`, method: 'DELETE' }).reply(403, 'denied by WAF');
    await expect(m.client.deleteManifest('a', digest)).rejects.toThrow(/never sends 403.*proxy/);
  });
});

describe('transport (loopback HTTP server)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
    server = createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('keeps at most `concurrency` requests in flight', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const url = await listen((req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, {
          'content-type': MEDIA.ociManifest,
          'docker-content-digest': 'sha256:' + 'e'.repeat(64),
        });
        res.end();
      }, 5);
    });
    const client = createRegistryClient({ url, concurrency: 3 });
    try {
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => client.headManifest('a', `t${i}`)),
      );
      expect(results).toHaveLength(30);
      expect(maxInFlight).toBe(3);
      expect(client.stats().manifestHead).toBe(30);
    } finally {
      await client.close();
    }
  });

  it('times out a registry that never answers, and says so', async () => {
    const url = await listen(() => {
      // never answers
    });
    const client = createRegistryClient({ url, timeoutMs: 150, retries: 1, sleep: () => Promise.resolve() });
    try {
      const err = await caught(client.listTags('a'));
      expect(err.message).toMatch(/no answer within 150 ms.*gave up after 2 attempts/);
    } finally {
      await client.close();
    }
  });
});

describe('TLS (loopback HTTPS server with a self-signed certificate)', () => {
  let dir: string;
  let server: HttpsServer;
  let url: string;
  let caPem: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rj-tls-'));
    const res = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { encoding: 'utf8' },
    );
    if (res.error || res.status !== 0) {
      throw new Error(
        `this test needs the openssl CLI (apt-get install -y openssl): ${res.error?.message ?? res.stderr}`,
      );
    }
    caPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: caPem }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ repositories: ['tls/app'] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['its CA bundle', () => ({ caPem })],
    ['the insecure flag', () => ({ insecure: true })],
  ])('connects with %s', async (_label, opts) => {
    const client = createRegistryClient({ url, ...opts() });
    try {
      await expect(client.listRepositories()).resolves.toEqual(['tls/app']);
    } finally {
      await client.close();
    }
  });

  it('refuses an unknown certificate without retrying, and says how to fix it', async () => {
    const client = createRegistryClient({ url, sleep: () => Promise.resolve() });
    try {
      const err = await caught(client.listRepositories());
      expect(err.message).toMatch(/TLS verification failed: trust the registry's CA/);
      expect(client.stats()).toMatchObject({ catalog: 1, retries: 0 });
    } finally {
      await client.close();
    }
  });
});
