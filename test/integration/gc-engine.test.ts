// The GC script on a real container engine (podman serving the Docker API, driven by the docker CLI, with a
// registry:2 stand-in built from Debian's docker-registry, and a registry:3 one from REGISTRY_V3_BIN when set), run
// by LocalCommandRunner under dash. Each test gets
// its own registry container holding kept images and one deleted image, runs GC, and checks that the deleted
// image's blobs are gone, the kept ones are served, and the registry container is running and unmodified.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { LocalCommandRunner, parameterEnvironment } from '../../lambda/adapters/local-runner.ts';
import { GcCommandError, runGc } from '../../lambda/core/gc.ts';
import type { GcResult, GcRunOptions } from '../../lambda/core/gc.ts';
import { gcParameters } from '../../lambda/core/gc-script.ts';
import { readGcScript } from '../../lambda/gc/registry-gc.ts';
import type { GcSummary } from '../../lambda/core/gc-script.ts';
import {
  DockerPauses,
  REGISTRY_IMAGE,
  containerIdentity,
  containerState,
  createRegistryContainer,
  docker,
  dockerOk,
  exec,
  removeRegistryContainer,
  startEngine,
  uniqueName,
  waitUntil,
} from '../support/container-engine.ts';
import type { ContainerIdentity, Engine, RegistryContainer } from '../support/container-engine.ts';
import { REGISTRY_VERSION, describeEachRegistry } from '../support/registry-kind.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

interface PushedImage {
  readonly repo: string;
  readonly tag: string;
  readonly digest: string;
  readonly blobs: readonly string[];
}

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function pushBlob(url: string, repo: string, data: Uint8Array): Promise<string> {
  const digest = sha256(data);
  const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  if (start.status !== 202) throw new Error(`starting an upload to ${repo} answered ${start.status}`);
  const location = new URL(start.headers.get('location') ?? '', url);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    body: data,
    headers: { 'content-type': 'application/octet-stream' },
  });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`uploading ${digest} to ${repo} answered ${put.status}`);
  return digest;
}

/** Pushes an OCI image (monolithic blob uploads) and returns its digest and blobs. */
async function pushImage(url: string, repo: string, tag: string, layers: Uint8Array[]): Promise<PushedImage> {
  const layerDigests: string[] = [];
  for (const layer of layers) layerDigests.push(await pushBlob(url, repo, layer));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: new Date().toISOString(),
      rootfs: { type: 'layers', diff_ids: layerDigests },
      config: { Labels: { tag } },
    }),
  );
  const configDigest = await pushBlob(url, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: layers.map((l, i) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: layerDigests[i],
        size: l.length,
      })),
    }),
  );
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': OCI_MANIFEST },
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`pushing ${repo}:${tag} answered ${res.status}`);
  return { repo, tag, digest: sha256(manifest), blobs: [...layerDigests, configDigest] };
}

async function status(url: string, init?: RequestInit): Promise<number> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res.status;
}

/** Fetches the image by tag and every blob it names; returns what did not come back intact. */
async function unservable(url: string, image: PushedImage): Promise<string[]> {
  const problems: string[] = [];
  const res = await fetch(`${url}/v2/${image.repo}/manifests/${image.tag}`, {
    headers: { accept: OCI_MANIFEST },
  });
  const body = new Uint8Array(await res.arrayBuffer());
  if (res.status !== 200 || sha256(body) !== image.digest)
    problems.push(`${image.repo}:${image.tag} (${res.status})`);
  for (const blob of image.blobs) {
    const b = await fetch(`${url}/v2/${image.repo}/blobs/${blob}`);
    const data = new Uint8Array(await b.arrayBuffer());
    if (b.status !== 200 || sha256(data) !== blob) problems.push(`${image.repo}@${blob} (${b.status})`);
  }
  return problems;
}

/** Starting an upload: 202 when pushes work, 405 when the registry is read-only. */
function pushProbe(url: string): Promise<number> {
  return status(`${url}/v2/probe/blobs/uploads/`, { method: 'POST' });
}

interface Fixture {
  readonly registry: RegistryContainer;
  readonly kept: readonly PushedImage[];
  readonly deleted: PushedImage;
  /** Layers and config only the deleted image used (its manifest is not served as a blob, even before GC). */
  readonly doomedBlobs: readonly string[];
  readonly identity: ContainerIdentity;
  readonly startedAt: string;
}

describeEachRegistry('garbage-collect', ({ kind }) => {
  describe('garbage-collect on a real container engine', () => {
    let engine: Engine;
    let work: string;
    let pauses: DockerPauses;
    const registries: RegistryContainer[] = [];
    const cleanups: (() => Promise<void>)[] = [];

    beforeAll(async () => {
      engine = await startEngine();
    });
    afterAll(async () => {
      await engine?.release();
    });
    beforeEach(async () => {
      work = await mkdtemp(join(tmpdir(), 'rj-gc-engine-'));
      pauses = await DockerPauses.create();
    });
    afterEach(async () => {
      await pauses.dispose();
      // Registries first: a network cannot go while a container is attached to it.
      for (const registry of registries.splice(0)) await removeRegistryContainer(engine, registry);
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      await rm(work, { recursive: true, force: true });
    });

    /** A registry with app:keep and lib:stable kept, and app:old (sharing a base layer with app:keep) deleted. */
    async function fixture(runArgs: string[] = []): Promise<Fixture> {
      const registry = await createRegistryContainer(engine, { runArgs, kind });
      registries.push(registry);
      const base = randomBytes(64 * 1024);
      const keep = await pushImage(registry.url, 'app', 'keep', [base, randomBytes(96 * 1024)]);
      const old = await pushImage(registry.url, 'app', 'old', [base, randomBytes(512 * 1024)]);
      const lib = await pushImage(registry.url, 'lib', 'stable', [randomBytes(32 * 1024)]);
      expect(await status(`${registry.url}/v2/app/manifests/${old.digest}`, { method: 'DELETE' })).toBe(202);
      const doomedBlobs = old.blobs.filter((b) => !keep.blobs.includes(b));
      // Let the registry's in-memory blob cache learn the doomed blobs: only a restart after GC forgets them.
      for (const blob of doomedBlobs) {
        expect(await status(`${registry.url}/v2/app/blobs/${blob}`, { method: 'HEAD' })).toBe(200);
      }
      const { startedAt } = await containerState(engine, registry.name);
      return {
        registry,
        kept: [keep, lib],
        deleted: old,
        doomedBlobs,
        identity: await containerIdentity(engine, registry.name),
        startedAt,
      };
    }

    function options(f: Fixture, extra: GcRunOptions = {}): GcRunOptions {
      return {
        containerName: f.registry.name,
        logDir: join(work, 'logs'),
        lockPath: join(work, 'gc.lock'),
        ...extra,
      };
    }

    function runner(pauseAt: ('gc' | 'standin-start')[] = []): LocalCommandRunner {
      return new LocalCommandRunner({
        shell: 'dash',
        env: pauses.env(engine.env, pauseAt),
        killGraceSeconds: 30,
      });
    }

    function summaryOf(result: GcResult): GcSummary {
      if (result.status !== 'Success') throw new Error(`expected a finished run, got ${result.status}`);
      return result.summary;
    }

    /** The registry container is running, is the same container made the same way, and serves every kept image. */
    async function expectRestored(f: Fixture): Promise<void> {
      expect(await containerState(engine, f.registry.name)).toMatchObject({ running: true });
      expect(await containerIdentity(engine, f.registry.name)).toEqual(f.identity);
      expect(await containerState(engine, `${f.registry.name}-janitor-gc`)).toMatchObject({ exists: false });
      for (const image of f.kept) expect(await unservable(f.registry.url, image)).toEqual([]);
    }

    async function expectCollected(f: Fixture, summary: GcSummary): Promise<void> {
      for (const blob of f.doomedBlobs) {
        expect(await status(`${f.registry.url}/v2/app/blobs/${blob}`, { method: 'HEAD' })).toBe(404);
      }
      expect(summary).toMatchObject({
        status: 'ok',
        registryVersion: expect.stringMatching(REGISTRY_VERSION[kind]),
        blobsEligible: 3,
        manifestsEligible: 0,
      });
      expect(summary.bytesAfter!).toBeLessThan(summary.bytesBefore!);
      expect(summary.bytesFreed!).toBeGreaterThanOrEqual(512 * 1024);
      const log = await readFile(summary.logFile!, 'utf8');
      expect(log).toMatch(/^\d+ blobs marked, 3 blobs and 0 manifests eligible for deletion$/m);
      for (const blob of [...f.doomedBlobs, f.deleted.digest])
        expect(log).toContain(`blob eligible for deletion: ${blob}`);
    }

    it('readonly: a stand-in serves pulls and refuses pushes while GC runs, then the registry is back', async () => {
      const f = await fixture();
      const pending = runGc(runner(['gc']), options(f, { mode: 'readonly' }));
      await pauses.reached('gc');

      expect(await containerState(engine, f.registry.name)).toMatchObject({ running: false });
      expect(await containerState(engine, `${f.registry.name}-janitor-gc`)).toMatchObject({ running: true });
      for (const image of f.kept) expect(await unservable(f.registry.url, image)).toEqual([]);
      expect(await pushProbe(f.registry.url)).toBe(405);

      await pauses.release('gc');
      const summary = summaryOf(await pending);
      expect(summary).toMatchObject({ modeRequested: 'readonly', modeUsed: 'readonly', fellBack: false });
      await expectCollected(f, summary);
      await expectRestored(f);
      expect(await pushProbe(f.registry.url)).toBe(202);
    });

    it('offline: the registry is stopped while a one-off container runs GC', async () => {
      const f = await fixture();
      const pending = runGc(runner(['gc']), options(f, { mode: 'offline' }));
      await pauses.reached('gc');

      expect(await containerState(engine, f.registry.name)).toMatchObject({ running: false });
      await expect(fetch(`${f.registry.url}/v2/`)).rejects.toThrow();

      await pauses.release('gc');
      const summary = summaryOf(await pending);
      expect(summary).toMatchObject({ modeRequested: 'offline', modeUsed: 'offline' });
      await expectCollected(f, summary);
      await expectRestored(f);
    });

    it('online: GC runs in the running registry, which is restarted after so its cache forgets deleted blobs', async () => {
      const f = await fixture();
      const summary = summaryOf(await runGc(runner(), options(f, { mode: 'online' })));
      expect(summary).toMatchObject({ modeRequested: 'online', modeUsed: 'online' });
      expect((await containerState(engine, f.registry.name)).startedAt).not.toBe(f.startedAt);
      await expectCollected(f, summary);
      await expectRestored(f);
    });

    it('a dry run deletes nothing and leaves the registry running', async () => {
      const f = await fixture();
      const summary = summaryOf(await runGc(runner(), options(f, { mode: 'readonly', dryRun: true })));
      expect(summary).toMatchObject({ status: 'ok', dryRun: true, blobsEligible: 3 });
      for (const blob of f.doomedBlobs) {
        expect(await status(`${f.registry.url}/v2/app/blobs/${blob}`, { method: 'HEAD' })).toBe(200);
      }
      expect((await containerState(engine, f.registry.name)).startedAt).toBe(f.startedAt);
      await expectRestored(f);
    });

    it('readonly falls back to offline, and says so, when the stand-in cannot start (its port is taken)', async () => {
      const f = await fixture();
      const pending = runGc(runner(['standin-start', 'gc']), options(f, { mode: 'readonly' }));
      await pauses.reached('standin-start');
      // The registry is stopped now; take its port before the stand-in can.
      const squatter = await listen(f.registry.port);
      await pauses.release('standin-start');
      await pauses.reached('gc');
      await new Promise((resolve) => squatter.close(resolve));
      await pauses.release('gc');

      const summary = summaryOf(await pending);
      expect(summary).toMatchObject({ modeRequested: 'readonly', modeUsed: 'offline', fellBack: true });
      expect(summary.warnings.join('\n')).toMatch(
        /read-only stand-in could not start \(.*address already in use.*\); fell back to offline/,
      );
      await expectCollected(f, summary);
      await expectRestored(f);
    });

    it('GC failing midway: a clear error, and the registry is back and serves every kept image', async () => {
      const f = await fixture();
      // A revision directory that is not a digest makes 2.8's mark phase fail after it has marked `app` (2.8 only
      // sees repositories that have a _layers directory).
      const zzz = '/var/lib/registry/docker/registry/v2/repositories/zzz';
      const revision = `${zzz}/_manifests/revisions/sha256/not-a-digest`;
      await dockerOk(
        engine,
        'exec',
        f.registry.name,
        'sh',
        '-c',
        `mkdir -p ${zzz}/_layers ${revision} && echo x >${revision}/link`,
      );
      const error = await runGc(runner(), options(f, { mode: 'readonly' })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GcCommandError);
      const gcError = error as GcCommandError;
      expect(gcError.exitCode).toBe(5);
      expect(gcError.summary).toMatchObject({
        errorCode: 'gc-failed',
        modeUsed: 'readonly',
        restoreFailed: false,
      });
      expect(gcError.message).toMatch(
        /failed to garbage collect: failed to mark: .*invalid checksum digest format/,
      );
      expect(gcError.summary.tail).toContain('app: marking manifest ' + f.kept[0]!.digest + ' ');
      expect(gcError.message).toContain(`full log on the host: ${gcError.summary.logFile}`);
      await expectRestored(f);
    });

    it('a missing container: a clear error naming it', async () => {
      const missing = uniqueName('rj-missing');
      const error = await runGc(runner(), {
        containerName: missing,
        logDir: join(work, 'logs'),
        lockPath: join(work, 'gc.lock'),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GcCommandError);
      expect((error as GcCommandError).exitCode).toBe(4);
      expect((error as GcCommandError).summary.errorCode).toBe('container-missing');
      expect((error as GcCommandError).message).toContain(
        `there is no container named ${missing} on this host`,
      );
    });

    if (kind === '2.8') {
      it('refuses --delete-untagged on distribution 2.8 without stopping the registry', async () => {
        const registry = await createRegistryContainer(engine, { kind });
        registries.push(registry);
        const before = await containerState(engine, registry.name);
        const identity = await containerIdentity(engine, registry.name);
        const error = await runGc(runner(), {
          containerName: registry.name,
          logDir: join(work, 'logs'),
          lockPath: join(work, 'gc.lock'),
          mode: 'offline',
          deleteUntagged: true,
        }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(GcCommandError);
        expect((error as GcCommandError).summary).toMatchObject({
          errorCode: 'refused',
          registryVersion: '2.8.2+ds1',
        });
        expect((error as GcCommandError).message).toMatch(
          /refusing --delete-untagged on distribution 2\.8\.2\+ds1/,
        );
        expect(await containerState(engine, registry.name)).toEqual(before);
        expect(await containerIdentity(engine, registry.name)).toEqual(identity);
      });
    } else {
      it('--delete-untagged on v3: removes the untagged manifest and its own blobs, keeps every tagged image', async () => {
        const f = await fixture();
        // Pushing app:keep again moves the tag: the image it pointed at is untagged now.
        const moved = await pushImage(f.registry.url, 'app', 'keep', [randomBytes(48 * 1024)]);
        const untagged = f.kept[0]!;
        const summary = summaryOf(
          await runGc(runner(), options(f, { mode: 'offline', deleteUntagged: true })),
        );
        expect(summary).toMatchObject({
          status: 'ok',
          deleteUntagged: true,
          registryVersion: expect.stringMatching(REGISTRY_VERSION.v3),
          manifestsEligible: 1,
        });
        expect(
          await status(`${f.registry.url}/v2/app/manifests/${untagged.digest}`, { method: 'HEAD' }),
        ).toBe(404);
        for (const blob of untagged.blobs.filter((b) => !moved.blobs.includes(b)))
          expect(await status(`${f.registry.url}/v2/app/blobs/${blob}`, { method: 'HEAD' })).toBe(404);
        for (const image of [moved, f.kept[1]!]) expect(await unservable(f.registry.url, image)).toEqual([]);
        expect(await containerState(engine, f.registry.name)).toMatchObject({ running: true });
        expect(await containerIdentity(engine, f.registry.name)).toEqual(f.identity);
      });
    }

    it('brings the registry back through its guardian when the whole run is SIGKILLed (an SSM timeout)', async () => {
      const f = await fixture();
      const script = join(work, 'gc.sh');
      await writeFile(script, readGcScript());
      const parameters = parameterEnvironment(gcParameters(options(f, { mode: 'readonly' })));
      const child = spawn('dash', [script], {
        detached: true,
        stdio: 'ignore',
        env: { ...pauses.env(engine.env, ['gc']), ...parameters },
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await pauses.reached('gc');
      expect(await containerState(engine, f.registry.name)).toMatchObject({ running: false });

      process.kill(-child.pid!, 'SIGKILL');
      await exited;
      await waitUntil('the guardian has brought the registry back', async () => {
        const [original, standin] = await Promise.all([
          containerState(engine, f.registry.name),
          containerState(engine, `${f.registry.name}-janitor-gc`),
        ]);
        return original.running && !standin.exists;
      });
      await expectRestored(f);
      // The guardian has let go of the lock: the next run can have it.
      await waitUntil('the lock is free', async () => {
        const probe = await exec('flock', ['-n', join(work, 'gc.lock'), 'true']);
        return probe.code === 0;
      });
    });

    it('readonly keeps the registry reachable under its name and aliases on its network', async () => {
      const network = uniqueName('rj-net');
      await dockerOk(engine, 'network', 'create', network);
      cleanups.push(async () => void (await docker(engine, 'network', 'rm', network)));
      const f = await fixture(['--network', network, '--network-alias', 'registry-svc']);
      const pending = runGc(runner(['gc']), options(f, { mode: 'readonly' }));
      await pauses.reached('gc');

      // Another container on the network (a reverse proxy, say) still reaches the registry by name and alias.
      const [image] = f.kept;
      const path = `/v2/${image!.repo}/manifests/${image!.tag}`;
      const fetched = await dockerOk(
        engine,
        'run',
        '--rm',
        '--network',
        network,
        // Over the image's VOLUME, so no anonymous volume is left behind.
        '--tmpfs',
        '/var/lib/registry',
        REGISTRY_IMAGE,
        'sh',
        '-c',
        `for host in ${f.registry.name} registry-svc; do wget -q -O - --header 'Accept: ${OCI_MANIFEST}' ` +
          `"http://$host:5000${path}" | busybox sha256sum; done`,
      );
      const expected = image!.digest.replace('sha256:', '');
      expect(fetched.split('\n').map((l) => l.split(/\s+/)[0])).toEqual([expected, expected]);
      expect(await containerState(engine, f.registry.name)).toMatchObject({ running: false });

      await pauses.release('gc');
      summaryOf(await pending);
      await expectRestored(f);
    });

    it('readonly gives the stand-in hostile environment and label values exactly, and runs none of them', async () => {
      const pwned = join(work, 'pwned');
      const hostile = `$(touch ${pwned}-a) \`touch ${pwned}-b\` '; touch ${pwned}-c; '" a|b \\ é <&>`;
      const f = await fixture(['-e', `RJ_HOSTILE=${hostile}`, '--label', `rj.hostile=${hostile}`]);
      const pending = runGc(runner(['gc']), options(f, { mode: 'readonly' }));
      await pauses.reached('gc');

      const standIn = `${f.registry.name}-janitor-gc`;
      const env = JSON.parse(
        await dockerOk(engine, 'inspect', '-f', '{{json .Config.Env}}', standIn),
      ) as string[];
      expect(env).toContain(`RJ_HOSTILE=${hostile}`);
      const labels = JSON.parse(
        await dockerOk(engine, 'inspect', '-f', '{{json .Config.Labels}}', standIn),
      ) as Record<string, string>;
      expect(labels).toMatchObject({
        'rj.hostile': hostile,
        'registry-janitor.role': 'standin',
        'registry-janitor.container': f.registry.name,
      });

      await pauses.release('gc');
      await expectCollected(f, summaryOf(await pending));
      await expectRestored(f);
      for (const suffix of ['a', 'b', 'c']) expect(existsSync(`${pwned}-${suffix}`)).toBe(false);
    });
  });
});

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
