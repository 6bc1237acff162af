// The registry HTTP client against a real distribution registry (Debian's docker-registry 2.8): catalog and tag
// pagination, every manifest type, keep-alive, probe and deletes on delete-enabled, delete-disabled and read-only
// registries.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryError } from '../../lambda/core/errors.ts';
import {
  PROBE_DIGEST,
  createRegistryClient,
  type RegistryClientOptions,
  type RegistryHttpClient,
} from '../../lambda/adapters/registry-client.ts';
import { freePort, startLocalRegistry, type LocalRegistry } from '../../lambda/demo/local-registry.ts';
import {
  MEDIA,
  pushBlob,
  pushImage,
  pushIndex,
  pushManifest,
  type PushedImage,
} from '../../lambda/demo/seed.ts';

async function caught(promise: Promise<unknown>): Promise<RegistryError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof RegistryError) return err;
    throw err;
  }
  throw new Error('expected a RegistryError, but the call succeeded');
}

describe('against a real registry (distribution 2.8)', () => {
  let main: LocalRegistry;
  let disabled: LocalRegistry;
  let readOnly: LocalRegistry;
  let storage: string;
  let images: { docker: PushedImage; oci: PushedImage; list: { digest: string }; index: { digest: string } };
  const clients: RegistryHttpClient[] = [];
  const client = (url: string, opts: Partial<RegistryClientOptions> = {}): RegistryHttpClient => {
    const c = createRegistryClient({ url, sleep: () => Promise.resolve(), ...opts });
    clients.push(c);
    return c;
  };
  const tags = Array.from({ length: 260 }, (_, i) => `t${i}`);
  const repos = Array.from({ length: 120 }, (_, i) => `bulk/r${String(i).padStart(3, '0')}`);

  beforeAll(async () => {
    storage = mkdtempSync(join(tmpdir(), 'rj-client-ro-'));
    // catalog.maxentries 50 < our n=1000: exercises the fallback and three catalog pages.
    let seedRo: LocalRegistry;
    [main, disabled, seedRo] = await Promise.all([
      startLocalRegistry({ extraConfig: 'catalog:\n  maxentries: 50' }),
      startLocalRegistry({ deleteEnabled: false }),
      startLocalRegistry({ storageDir: storage }),
    ]);
    const t = { url: main.url };
    const docker = await pushImage(t, 'apps/web', 'docker', {
      created: '2024-01-01T00:00:00Z',
      layers: [{ seed: 'l1', size: 512 }],
    });
    const oci = await pushImage(t, 'apps/web', 'oci', {
      created: null,
      format: 'oci',
      layers: [{ seed: 'l2', size: 512 }],
    });
    const arm = await pushImage(t, 'apps/web', null, {
      created: null,
      architecture: 'arm64',
      layers: [{ seed: 'l3', size: 512 }],
    });
    const plat = (d: PushedImage, architecture: string) => ({
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      platform: { architecture, os: 'linux' },
    });
    const list = await pushIndex(t, 'apps/web', 'list', [plat(docker, 'amd64'), plat(arm, 'arm64')], {
      format: 'docker',
    });
    const index = await pushIndex(t, 'apps/web', 'index', [plat(oci, 'amd64')], { format: 'oci' });
    images = { docker, oci, list, index };
    const many = await pushImage(t, 'apps/many', 'base', {
      created: null,
      layers: [{ seed: 'l4', size: 64 }],
    });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.dockerManifest,
      config: many.config,
      layers: many.layers,
    });
    const limit = pLimit(16);
    await Promise.all([
      ...tags.map((tag) => limit(() => pushManifest(t, 'apps/many', tag, MEDIA.dockerManifest, manifest))),
      ...repos.map((r) => limit(() => pushBlob(t, r, new TextEncoder().encode(r), MEDIA.dockerLayer))),
    ]);
    await pushImage({ url: disabled.url }, 'apps/web', 'v1', {
      created: null,
      layers: [{ seed: 'd1', size: 64 }],
    });
    await pushImage({ url: seedRo.url }, 'apps/web', 'v1', {
      created: null,
      layers: [{ seed: 'r1', size: 64 }],
    });
    await seedRo.stop();
    readOnly = await startLocalRegistry({ storageDir: storage, readOnly: true });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all([main?.dispose(), disabled?.dispose(), readOnly?.dispose()]);
    rmSync(storage, { recursive: true, force: true });
  });

  it('keeps one connection alive across HEADs, GETs and a DELETE (undici would close it after each HEAD)', async () => {
    // A TCP relay in front of the registry that counts the connections the client opens.
    let connections = 0;
    const upstream = new URL(main.url);
    const relay = createNetServer((socket) => {
      connections += 1;
      const out = connect(Number(upstream.port), upstream.hostname);
      socket.pipe(out).pipe(socket);
      socket.on('error', () => out.destroy());
      out.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const c = client(`http://127.0.0.1:${(relay.address() as AddressInfo).port}`, { concurrency: 1 });
      for (let i = 0; i < 20; i++) {
        await expect(c.headManifest('apps/web', 'docker')).resolves.toBe(images.docker.digest);
        await c.getManifest('apps/web', 'oci');
      }
      await expect(c.deleteManifest('apps/web', PROBE_DIGEST)).resolves.toBe('not-found');
      expect(connections).toBe(1);
    } finally {
      relay.close();
    }
  });

  it('lists a catalog over several pages', async () => {
    const c = client(main.url);
    const names = await c.listRepositories();
    expect(new Set(names)).toEqual(new Set([...repos, 'apps/web', 'apps/many']));
    expect(names).toHaveLength(repos.length + 2);
    // One refused n=1000, then 50 + 50 + 22 names.
    expect(c.stats().catalog).toBeGreaterThanOrEqual(4);
  });

  it('lists 260 tags of one repository, sorted', async () => {
    const c = client(main.url);
    const got = await c.listTags('apps/many');
    expect(got).toEqual([...tags, 'base'].sort());
    await expect(c.listTags('bulk/r000')).resolves.toEqual([]);
    await expect(c.listTags('no/such/repo')).resolves.toEqual([]);
  });

  it('fetches all four manifest types with their stored digests', async () => {
    const c = client(main.url);
    const cases = [
      ['docker', images.docker.digest, MEDIA.dockerManifest],
      ['oci', images.oci.digest, MEDIA.ociManifest],
      ['list', images.list.digest, MEDIA.dockerList],
      ['index', images.index.digest, MEDIA.ociIndex],
    ] as const;
    for (const [tag, digest, mediaType] of cases) {
      const got = await c.getManifest('apps/web', tag);
      expect(got).toMatchObject({ digest, mediaType });
      await expect(c.headManifest('apps/web', tag)).resolves.toBe(digest);
      await expect(c.getManifest('apps/web', digest)).resolves.toMatchObject({ digest, mediaType });
    }
    const config = await c.getBlob('apps/web', images.docker.config.digest);
    expect(JSON.parse(Buffer.from(config).toString())).toMatchObject({ created: '2024-01-01T00:00:00Z' });
    await expect(c.headBlob('apps/web', images.docker.config.digest)).resolves.toBe(true);
    await expect(c.headBlob('apps/web', 'sha256:' + '1'.repeat(64))).resolves.toBe(false);
    await expect(c.getManifest('apps/web', 'missing')).resolves.toBeNull();
  });

  it('probes a delete-enabled 2.8 registry: deletes work, tag deletes do not', async () => {
    await expect(client(main.url).probe('apps/web')).resolves.toEqual({
      deletesEnabled: true,
      tagDelete: false,
    });
  });

  it('deletes by digest and reports a second delete as not-found', async () => {
    const c = client(main.url);
    const arm = (await c.getManifest('apps/web', images.list.digest))!;
    const child = (JSON.parse(Buffer.from(arm.body).toString()) as { manifests: { digest: string }[] })
      .manifests[1]!.digest;
    await expect(c.deleteManifest('apps/web', child)).resolves.toBe('deleted');
    await expect(c.deleteManifest('apps/web', child)).resolves.toBe('not-found');
    await expect(c.headManifest('apps/web', child)).resolves.toBeNull();
  });

  it.each([
    [
      'delete-disabled',
      () => disabled,
      /storage\.delete\.enabled: true.*REGISTRY_STORAGE_DELETE_ENABLED=true/,
      'UNSUPPORTED',
    ],
    ['read-only', () => readOnly, /read-only maintenance mode/, 'READ_ONLY'],
  ])(
    'probes a %s registry, and its deletes fail with nothing deleted',
    async (_label, reg, message, code) => {
      const c = client(reg().url);
      const result = await c.probe('apps/web');
      expect(result).toEqual({
        deletesEnabled: false,
        tagDelete: false,
        problem: expect.stringMatching(message),
      });
      const digest = (await c.headManifest('apps/web', 'v1'))!;
      const err = await caught(c.deleteManifest('apps/web', digest));
      expect(err.details.code).toBe(code);
      await expect(c.headManifest('apps/web', 'v1')).resolves.toBe(digest);
    },
  );

  it('reports an unreachable registry clearly after retrying', async () => {
    const port = await freePort();
    const c = client(`http://127.0.0.1:${port}`, { retries: 2 });
    const err = await caught(c.listRepositories());
    expect(err.message).toMatch(
      new RegExp(
        `cannot reach http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*is the registry running and the URL right\\? \\(gave up after 3 attempts\\)`,
      ),
    );
    // Nothing is deleted when the registry is unreachable: the probe fails the same way.
    await expect(c.probe('apps/web')).rejects.toThrow(/cannot reach/);
  });
});
