// The Lambda's container listing on a real container engine: the GC script's `action=list` (run by
// LocalCommandRunner under dash, as SSM would run the document) lists a real registry's storage inside its running
// container (registry:2, and registry:3 when REGISTRY_V3_BIN is set), uploads it gzip'd with curl to a presigned URL
// of the local S3 stand-in, and containerHistory reads it back and checks it. 100,000 revisions prove the listing
// does not depend on SSM's 24,000 characters of inline output.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerHistory } from '../../lambda/adapters/history-container.ts';
import { LocalCommandRunner } from '../../lambda/adapters/local-runner.ts';
import { HistoryError } from '../../lambda/core/errors.ts';
import { MANIFEST_ACCEPT } from '../../lambda/core/contract.ts';
import { REPOSITORIES_PATH, REVISIONS_PATH } from '../../lambda/core/history.ts';
import type { CommandRunner } from '../../lambda/core/ports.ts';
import { pushImage } from '../../lambda/demo/seed.ts';
import {
  createRegistryContainer,
  docker,
  dockerOk,
  registryImage,
  removeRegistryContainer,
  startEngine,
  uniqueName,
  type Engine,
  type RegistryContainer,
} from '../support/container-engine.ts';
import { describeEachRegistry } from '../support/registry-kind.ts';
import { startLocalS3, type LocalS3 } from '../support/local-s3.ts';
import { SSM_OUTPUT_LIMIT } from '../support/ssm-stand-in.ts';

const DAY = 86_400_000;
const SYNTHETIC_REPOS = 200;
const SYNTHETIC_REVISIONS = 500;
const hexOf = (n: number) => n.toString(16).padStart(64, '0');

/** 200 repositories × 500 revision links, pushed one day apart (the bench's shape): made once per file. */
const SYNTHETIC = {
  root: join(tmpdir(), `rj-history-synthetic-${process.pid}`),
  now: Date.now(),
  made: false,
};
function syntheticStorage(): { root: string; now: number } {
  if (!SYNTHETIC.made) {
    rmSync(SYNTHETIC.root, { recursive: true, force: true });
    writeSyntheticStorage(SYNTHETIC.root, SYNTHETIC.now);
    SYNTHETIC.made = true;
  }
  return SYNTHETIC;
}
afterAll(() => rmSync(SYNTHETIC.root, { recursive: true, force: true }));

function writeSyntheticStorage(root: string, now: number): void {
  for (let r = 0; r < SYNTHETIC_REPOS; r += 1) {
    const base = join(root, REPOSITORIES_PATH, `team${r % 10}/app${r}`, REVISIONS_PATH);
    for (let i = 0; i < SYNTHETIC_REVISIONS; i += 1) {
      const hex = hexOf(r * SYNTHETIC_REVISIONS + i);
      mkdirSync(join(base, hex), { recursive: true });
      const link = join(base, hex, 'link');
      writeFileSync(link, `sha256:${hex}`);
      const t = new Date(now - (SYNTHETIC_REVISIONS - i) * DAY);
      utimesSync(link, t, t);
    }
  }
}

/** Records what the script printed, which is all SSM would hand back inline. */
function recording(runner: CommandRunner): CommandRunner & { stdout: string[] } {
  const stdout: string[] = [];
  return {
    stdout,
    async run(parameters, options) {
      const result = await runner.run(parameters, options);
      stdout.push(result.stdout);
      return result;
    },
  };
}

describeEachRegistry('listing untagged history inside the registry container', ({ kind }) => {
  let engine: Engine;
  let registry: RegistryContainer;
  let s3: LocalS3;
  let client: S3Client;
  const work = mkdtempSync(join(tmpdir(), 'rj-history-container-'));
  const started = Date.now();
  const pushed: Record<string, string> = {};
  const extraContainers: string[] = [];

  const history = (containerName: string) => {
    const runner = recording(new LocalCommandRunner({ env: { DOCKER_HOST: engine.dockerHost } }));
    return {
      runner,
      source: containerHistory({
        runner,
        s3: client,
        bucket: s3.bucket,
        containerName,
        host: 'this host',
        hostSettings: {
          lockPath: join(work, 'lock', 'gc.lock'),
          logDir: join(work, 'logs'),
          lockWaitSeconds: 30,
        },
      }),
    };
  };

  beforeAll(async () => {
    mkdirSync(join(work, 'lock'), { mode: 0o700 });
    engine = await startEngine();
    registry = await createRegistryContainer(engine, { kind });
    s3 = await startLocalS3('janitor-bucket');
    client = s3.client;
    const target = { url: registry.url };
    for (const n of [1, 2, 3]) {
      pushed[`main${n}`] = (
        await pushImage(target, 'team/app', 'main', {
          created: '2026-01-01T00:00:00Z',
          layers: [{ seed: `listing-main${n}`, size: 1024 }],
          label: `main${n}`,
        })
      ).digest;
    }
    pushed.nested = (
      await pushImage(target, 'team/app/cache', 'v1', {
        created: '2026-01-01T00:00:00Z',
        layers: [{ seed: 'listing-nested', size: 1024 }],
      })
    ).digest;
  }, 120_000);

  afterAll(async () => {
    await s3?.close();
    for (const name of extraContainers) await docker(engine, 'rm', '-f', name);
    if (registry) await removeRegistryContainer(engine, registry);
    await engine?.release();
    rmSync(work, { recursive: true, force: true });
  });

  it('lists every revision, tagged or not, with its push time, through one presigned upload', async () => {
    const { source, runner } = history(registry.name);
    const listing = await source.list();
    expect(listing.source).toBe(`registry container ${registry.name} on this host: /var/lib/registry`);
    expect([...listing.repositories.keys()]).toEqual(['team/app', 'team/app/cache']);
    expect(listing.repositories.get('team/app')!.map((r) => r.digest)).toEqual(
      [pushed.main1, pushed.main2, pushed.main3].sort(),
    );
    expect(listing.repositories.get('team/app/cache')!.map((r) => r.digest)).toEqual([pushed.nested]);
    for (const revisions of listing.repositories.values()) {
      for (const r of revisions) {
        // Link mtimes have whole seconds here.
        expect(Date.parse(r.pushedAt)).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000 - 120_000);
        expect(Date.parse(r.pushedAt)).toBeLessThanOrEqual(Date.now());
      }
    }
    expect(s3.puts).toEqual([
      {
        key: expect.stringMatching(/^history-listing\//) as unknown,
        presigned: true,
        bytes: expect.any(Number) as unknown,
      },
    ]);
    // The registry was not touched: it still serves, and the script printed a summary, not the listing.
    const served = await fetch(`${registry.url}/v2/team/app/manifests/main`, {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
    });
    expect(served.status).toBe(200);
    expect(runner.stdout[0]).toMatch(/registry-janitor: listing_count=4\n/);
    expect(runner.stdout[0]).not.toContain('_manifests');
  });

  it('refuses a listing changed in the bucket after the upload', async () => {
    const { source } = history(registry.name);
    const put = s3.puts.length;
    const tampered = source.list();
    // Swap the object between the upload and the read: wait for the upload, then change its bytes.
    const changed = (async () => {
      while (s3.puts.length === put) await new Promise((r) => setTimeout(r, 5));
      const key = s3.puts.at(-1)!.key;
      const body = s3.object(key)!;
      s3.setObject(key, Buffer.concat([body.subarray(0, body.length - 1), Buffer.from([body.at(-1)! ^ 1])]));
    })();
    await changed;
    await expect(tampered).rejects.toThrow(HistoryError);
    await expect(tampered).rejects.toThrow(/does not have the SHA-256 the host reported/);
  });

  it('fails, saying why, on a stopped container, and uploads nothing', async () => {
    const name = uniqueName();
    extraContainers.push(name);
    await dockerOk(engine, 'create', '--name', name, registryImage(kind));
    const before = s3.puts.length;
    await expect(history(name).source.list()).rejects.toThrow(
      new RegExp(`container ${name} is not running \\(state: (created|configured)\\)`),
    );
    expect(s3.puts.length).toBe(before);
  });

  describe('100,000 revisions', () => {
    it('come back complete through the bucket, from the root the container is configured with', async () => {
      const { root, now } = syntheticStorage();
      const name = uniqueName();
      extraContainers.push(name);
      // The root comes from the container's environment, which overrides its config file.
      await dockerOk(
        engine,
        'run',
        '-d',
        '--name',
        name,
        '-e',
        'REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/srv/registry-data',
        '-v',
        `${root}:/srv/registry-data`,
        registryImage(kind),
      );
      const { source, runner } = history(name);
      const t = Date.now();
      const listing = await source.list();
      const seconds = (Date.now() - t) / 1000;
      expect(listing.source).toBe(`registry container ${name} on this host: /srv/registry-data`);
      expect(listing.repositories.size).toBe(SYNTHETIC_REPOS);
      let total = 0;
      for (const revisions of listing.repositories.values()) total += revisions.length;
      expect(total).toBe(SYNTHETIC_REPOS * SYNTHETIC_REVISIONS);
      const app7 = listing.repositories.get('team7/app7')!;
      expect(app7).toHaveLength(SYNTHETIC_REVISIONS);
      const newest = app7.find((r) => r.digest === `sha256:${hexOf(7 * SYNTHETIC_REVISIONS + 499)}`)!;
      expect(Math.abs(Date.parse(newest.pushedAt) - (now - DAY))).toBeLessThan(1000);
      // The listing itself is megabytes: SSM's inline output could never have carried it; the summary is small.
      const upload = s3.puts.at(-1)!;
      expect(upload.presigned).toBe(true);
      expect(runner.stdout[0]!.length).toBeLessThan(2000);
      expect(runner.stdout[0]!.length).toBeLessThan(SSM_OUTPUT_LIMIT);
      expect(runner.stdout[0]).toMatch(/registry-janitor: listing_count=100000\n/);
      console.log(
        `100,000-revision container listing (${kind}): ${seconds.toFixed(1)} s, ${upload.bytes} bytes gzip'd, ` +
          `inline output ${runner.stdout[0]!.length} characters`,
      );
    }, 300_000);
  });
});
