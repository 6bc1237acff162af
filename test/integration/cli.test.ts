// The CLI in-process against real registries: exit codes, messages, and that bad input and refusals delete
// nothing.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXIT } from '../../lambda/cli/main.ts';
import type { Plan } from '../../lambda/core/model.ts';
import {
  containerState,
  createRegistryContainer,
  removeRegistryContainer,
  startEngine,
  type Engine,
  type RegistryContainer,
} from '../support/container-engine.ts';
import { htpasswdAuthConfig, writeHtpasswd } from '../support/htpasswd.ts';
import { freePort, type LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { cli } from '../support/cli.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { SCENARIO_POLICY, seedScenario, type Scenario } from '../../lambda/demo/scenario.ts';
import { MEDIA, pushImage, pushIndex } from '../../lambda/demo/seed.ts';

/** Where the GC script writes its log on the host (the CLI does not change it). */
const GC_LOG_DIR = '/var/log/registry-janitor';
const dir = mkdtempSync(join(tmpdir(), 'rj-cli-'));
const policyFile = join(dir, 'policy.yaml');
writeFileSync(policyFile, SCENARIO_POLICY);

/** The terminal's erase-line sequence, made readable for the assertions. */
const clear = (text: string): string => text.replaceAll('\x1b[K', '<clear>');

async function allTags(url: string, headers: Record<string, string> = {}): Promise<Record<string, string[]>> {
  const cat = (await (await fetch(`${url}/v2/_catalog`, { headers })).json()) as { repositories: string[] };
  const out: Record<string, string[]> = {};
  for (const r of cat.repositories) {
    const body = (await (await fetch(`${url}/v2/${r}/tags/list`, { headers })).json()) as {
      tags: string[] | null;
    };
    out[r] = (body.tags ?? []).sort();
  }
  return out;
}

describeEachRegistry('the CLI', ({ kind }) => {
  describe('registry-janitor CLI', () => {
    let registry: LocalRegistry;
    let scenario: Scenario;
    beforeAll(async () => {
      registry = await startRegistry(kind);
      scenario = await seedScenario(registry);
    });
    afterAll(async () => {
      await registry?.dispose();
    });

    it('plan shows every deletion and deletes nothing', async () => {
      const before = await allTags(registry.url);
      const r = await cli(['plan', '--registry', registry.url, '--policy', policyFile]);
      expect(r.code).toBe(EXIT.ok);
      for (const [repo, tags] of Object.entries(scenario.deleted)) {
        for (const tag of tags)
          expect(r.out).toMatch(new RegExp(`DELETE\\s+${tag.replace(/\./g, '\\.')}\\s`));
        expect(r.out).toContain(`${repo}: rule #1`);
      }
      expect(r.out).toMatch(/Summary: 5 repositories, 26 tags: 15 kept, 11 to delete/);
      expect(await allTags(registry.url)).toEqual(before);
    });

    it('plan --json prints the complete plan document', async () => {
      const r = await cli(['plan', '--registry', registry.url, '--policy', policyFile, '--json']);
      const p = JSON.parse(r.out) as Plan;
      expect(p.complete).toBe(true);
      expect(p.summary.tagsDeleted).toBe(11);
      expect(p.repositories.find((x) => x.name === 'team1/api')?.kept.map((k) => k.tag)).toEqual(
        scenario.kept['team1/api'],
      );
    });

    it('plan warns when apply would refuse it (delete guard), naming the flag and the stack context', async () => {
      const r = await cli([
        'plan',
        '--registry',
        registry.url,
        '--policy',
        policyFile,
        '--max-delete-fraction',
        '0.2',
      ]);
      expect(r.code).toBe(EXIT.refused);
      expect(r.out).toMatch(/Summary: 5 repositories, 26 tags/);
      expect(r.err).toMatch(
        /^warning: apply will refuse this plan \(delete guard\): the plan deletes 11 of 26 tags \(42\.3%\)/,
      );
      expect(r.err).toContain('--max-delete-fraction 0.43');
      expect(r.err).toContain('-c maxDeleteFraction=0.43');
      expect(r.err).not.toContain('MAX_DELETE_FRACTION');
    });

    it('--out and --html are written relative to where the user ran the command (INIT_CWD), and say where', async () => {
      const userDir = mkdtempSync(join(tmpdir(), 'rj-cli-user-'));
      const r = await cli(
        [
          'plan',
          '--registry',
          registry.url,
          '--policy',
          policyFile,
          '--out',
          'plan.json',
          '--html',
          'plan.html',
        ],
        { env: { INIT_CWD: userDir } },
      );
      expect(r.code, r.err).toBe(EXIT.ok);
      expect(r.err).toContain(`Wrote the plan (JSON) to ${join(userDir, 'plan.json')}\n`);
      expect(r.err).toContain(`Wrote the HTML plan to ${join(userDir, 'plan.html')}\n`);
      const saved = JSON.parse(readFileSync(join(userDir, 'plan.json'), 'utf8')) as Plan;
      expect(saved.summary.tagsDeleted).toBe(11);
      const html = readFileSync(join(userDir, 'plan.html'), 'utf8');
      expect(html).toContain(`<title>Cleanup plan for ${registry.url}</title>`);
      for (const repo of saved.repositories) expect(html).toContain(JSON.stringify(repo.name));
      rmSync(userDir, { recursive: true, force: true });
    });

    it('--repositories matching nothing says so and suggests the glob, from plan and apply alike', async () => {
      const before = await allTags(registry.url);
      for (const command of ['plan', 'apply']) {
        const r = await cli([
          command,
          '--registry',
          registry.url,
          '--policy',
          policyFile,
          '--repositories',
          'team2',
          '--yes',
        ]);
        expect(r.code).toBe(EXIT.badInput);
        expect(r.err).toContain(
          "error: --repositories team2 matched no repository in the catalog; for the repositories under it, use --repositories 'team2/**'",
        );
      }
      expect(await allTags(registry.url)).toEqual(before);
    });

    it('on a terminal the scan shows a progress line ended by a newline; elsewhere nothing', async () => {
      const tty = await cli(['plan', '--registry', registry.url, '--policy', policyFile], { tty: true });
      expect(tty.code).toBe(EXIT.ok);
      expect(clear(tty.err)).toMatch(/^\r<clear>scanning \d+\/5 repositories, /);
      expect(clear(tty.err)).toMatch(
        /\r<clear>scanning 5\/5 repositories, \d+ tags, [\d.]+ repositories\/s, done in \d+:\d\d\n$/,
      );
      const plain = await cli(['plan', '--registry', registry.url, '--policy', policyFile]);
      expect(plain.err).toBe('');
    });

    it.each([
      [
        'an unknown policy field',
        'rules:\n  - repositories: ["**"]\n    keep: { newst: 3 }\n',
        /rules\[0\]\.keep: unknown field "newst"; did you mean "newest"\?/,
      ],
      [
        'a bad glob',
        'rules:\n  - repositories: ["team1/**"]\n    keep: { tags: ["v[0-9"] }\n',
        /rules\[0\]\.keep\.tags\[0\]: "v\[0-9" is not a valid glob/,
      ],
      [
        'a bad regex',
        'rules:\n  - repositories: ["team1/**"]\n    keep: { tagsRegex: ["(v"] }\n',
        /rules\[0\]\.keep\.tagsRegex\[0\]: "\(v" is not a valid regular expression/,
      ],
    ])('apply with %s exits 2 with the path and fix, and deletes nothing', async (_n, text, message) => {
      const file = join(dir, `bad-${Math.random()}.yaml`);
      writeFileSync(file, text);
      const before = await allTags(registry.url);
      const r = await cli(['apply', '--registry', registry.url, '--policy', file, '--yes']);
      expect(r.code).toBe(EXIT.badInput);
      expect(r.err).toMatch(message);
      expect(await allTags(registry.url)).toEqual(before);
    });

    it.each([
      [['plan', '--policy', policyFile], /--registry is required/],
      [['plan', '--registry', 'http://127.0.0.1:1'], /--policy FILE is required/],
      [
        ['plan', '--registry', 'http://127.0.0.1:1', '--policy', join(dir, 'missing.yaml')],
        /cannot read the policy file/,
      ],
      [
        ['apply', '--registry', 'http://127.0.0.1:1', '--policy', policyFile, '--max-delete-fraction', '2'],
        /--max-delete-fraction expects a number from 0 to 1/,
      ],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['plan', '--bogus'], /unknown option --bogus/],
    ])('bad flags %j exit 2', async (args, message) => {
      const r = await cli(args);
      expect(r.code).toBe(EXIT.badInput);
      expect(r.err).toMatch(message);
    });

    it('apply without a terminal and without --yes refuses (exit 3) and deletes nothing', async () => {
      const before = await allTags(registry.url);
      const r = await cli(['apply', '--registry', registry.url, '--policy', policyFile]);
      expect(r.code).toBe(EXIT.refused);
      expect(r.err).toMatch(/pass --yes to confirm/);
      expect(await allTags(registry.url)).toEqual(before);
    });

    it('the delete guard refuses with exit 3 and says how to raise it', async () => {
      const r = await cli([
        'apply',
        '--registry',
        registry.url,
        '--policy',
        policyFile,
        '--yes',
        '--max-delete-fraction',
        '0.2',
      ]);
      expect(r.code).toBe(EXIT.refused);
      expect(r.err).toMatch(
        /refused: refusing to apply: the plan deletes 11 of 26 tags \(42\.3%\).*--max-delete-fraction 0\.43.*-c maxDeleteFraction=0\.43/,
      );
      expect(r.err).not.toContain('MAX_DELETE_FRACTION');
    });

    it('a saved plan for another registry is refused', async () => {
      const planFile = join(dir, 'plan.json');
      expect(
        (await cli(['plan', '--registry', registry.url, '--policy', policyFile, '--out', planFile])).code,
      ).toBe(0);
      const r = await cli(['apply', '--registry', 'http://127.0.0.1:9', '--plan', planFile, '--yes']);
      expect(r.code).toBe(EXIT.badInput);
      expect(r.err).toMatch(/was made for http:\/\/127\.0\.0\.1:\d+, not http:\/\/127\.0\.0\.1:9/);
    });

    it('applies a saved plan exactly, and a second plan then finds nothing to delete', async () => {
      const planFile = join(dir, 'plan-apply.json');
      await cli(['plan', '--registry', registry.url, '--policy', policyFile, '--out', planFile]);
      const saved = JSON.parse(readFileSync(planFile, 'utf8')) as Plan;
      const r = await cli(['apply', '--registry', registry.url, '--plan', planFile, '--yes']);
      expect(r.code, r.out + r.err).toBe(EXIT.ok);
      expect(r.out).toMatch(
        new RegExp(
          `Deleted ${saved.summary.tagsDeleted} tags and ${saved.summary.manifestsDeleted} manifests`,
        ),
      );
      const after = await allTags(registry.url);
      for (const [repo, kept] of Object.entries(scenario.kept))
        expect([repo, after[repo]]).toEqual([repo, [...kept].sort()]);
      const again = await cli(['plan', '--registry', registry.url, '--policy', policyFile, '--json']);
      expect((JSON.parse(again.out) as Plan).summary.tagsDeleted).toBe(0);
    });
  });

  describe('CLI failures that change nothing', () => {
    it('an unreachable registry: plan and apply both exit 1, the error on stderr naming the URL', async () => {
      const port = await freePort();
      for (const command of ['plan', 'apply']) {
        const r = await cli([
          command,
          '--registry',
          `http://127.0.0.1:${port}`,
          '--policy',
          policyFile,
          '--yes',
        ]);
        expect([command, r.code]).toEqual([command, EXIT.failed]);
        expect(r.out).toBe('');
        expect(r.err).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}`));
        expect(r.err).toMatch(/is the registry running and the URL right\?/);
      }
    });

    it('apply --html writes the plan and its outcome; on a terminal the deletes show a progress line', async () => {
      const registry = await startRegistry(kind);
      const userDir = mkdtempSync(join(tmpdir(), 'rj-cli-user-'));
      try {
        await seedScenario(registry);
        const r = await cli(
          ['apply', '--registry', registry.url, '--policy', policyFile, '--yes', '--html', 'report.html'],
          { env: { INIT_CWD: userDir }, tty: true },
        );
        expect(r.code, r.err).toBe(EXIT.ok);
        expect(r.out).toMatch(/Deleted 11 tags and 9 manifests/);
        expect(clear(r.err)).toMatch(
          /\r<clear>deleting 3\/3 repositories, \d+ deleted, .*done in \d+:\d\d\n/,
        );
        expect(r.err).toContain(`Wrote the HTML report to ${join(userDir, 'report.html')}\n`);
        const html = readFileSync(join(userDir, 'report.html'), 'utf8');
        expect(html).toContain(`<title>Cleanup report for ${registry.url}</title>`);
        expect(html).toContain('Applied: deleted 11 tags and 9 manifests');
        for (const repo of ['team1/api', 'team1/web', 'team2/repro', 'legacy/tool', 'misc/untouched'])
          expect(html).toContain(JSON.stringify(repo));
      } finally {
        rmSync(userDir, { recursive: true, force: true });
        await registry.dispose();
      }
    });

    it('a registry that wants credentials: 401 without them, works with them from the environment', async () => {
      const authDir = mkdtempSync(join(tmpdir(), 'rj-auth-'));
      const htpasswd = writeHtpasswd(authDir, { ci: 's3cret' });
      const registry = await startRegistry(kind, { extraConfig: htpasswdAuthConfig(htpasswd) });
      try {
        const authorization = 'Basic ' + Buffer.from('ci:s3cret').toString('base64');
        await seedScenario({ url: registry.url, authorization });
        const before = await allTags(registry.url, { authorization });

        const denied = await cli(['apply', '--registry', registry.url, '--policy', policyFile, '--yes']);
        expect(denied.code).not.toBe(EXIT.ok);
        expect(denied.out + denied.err).toMatch(/credentials/);
        expect(await allTags(registry.url, { authorization })).toEqual(before);

        const wrong = await cli(
          ['plan', '--registry', registry.url, '--policy', policyFile, '--allow-insecure-http'],
          {
            env: { REGISTRY_USERNAME: 'ci', REGISTRY_PASSWORD: 'wrong' },
          },
        );
        expect(wrong.code).toBe(EXIT.failed);

        const ok = await cli(
          [
            'plan',
            '--registry',
            registry.url,
            '--policy',
            policyFile,
            '--username',
            'ci',
            '--password-stdin',
            '--allow-insecure-http',
          ],
          {
            stdin: 's3cret\n',
          },
        );
        expect(ok.err).toBe('');
        expect(ok.code).toBe(EXIT.ok);
        expect(ok.out).toMatch(/11 to delete/);
      } finally {
        await registry.dispose();
      }
    });

    it('a registry with deletes disabled: apply exits 3 with the config fix, nothing deleted', async () => {
      const registry = await startRegistry(kind, { deleteEnabled: false });
      try {
        await seedScenario(registry);
        const before = await allTags(registry.url);
        const r = await cli(['apply', '--registry', registry.url, '--policy', policyFile, '--yes']);
        expect(r.code).toBe(EXIT.refused);
        expect(r.err).toMatch(/storage\.delete\.enabled: true/);
        expect(r.err).toMatch(/REGISTRY_STORAGE_DELETE_ENABLED=true/);
        expect(await allTags(registry.url)).toEqual(before);
      } finally {
        await registry.dispose();
      }
    });
  });

  describe('registry-janitor gc on a registry container', () => {
    let engine: Engine;
    let registry: RegistryContainer;
    const head = async (ref: string): Promise<number> => {
      const res = await fetch(`${registry.url}/v2/app/manifests/${ref}`, {
        method: 'HEAD',
        headers: { accept: `${MEDIA.dockerManifest}, ${MEDIA.ociIndex}` },
      });
      return res.status;
    };
    const blobStatus = async (digest: string): Promise<number> =>
      (await fetch(`${registry.url}/v2/app/blobs/${digest}`, { method: 'HEAD' })).status;

    beforeAll(async () => {
      engine = await startEngine();
      vi.stubEnv('DOCKER_HOST', engine.dockerHost);
      registry = await createRegistryContainer(engine, { kind });
    });
    afterAll(async () => {
      vi.unstubAllEnvs();
      if (engine && registry) {
        await removeRegistryContainer(engine, registry);
        for (const f of existsSync(GC_LOG_DIR) ? readdirSync(GC_LOG_DIR) : []) {
          if (f.startsWith(`gc-${registry.name}-`)) rmSync(join(GC_LOG_DIR, f), { force: true });
        }
      }
      await engine?.release();
    });

    it(
      kind === 'v3'
        ? '--delete-untagged removes the untagged image, keeps tagged ones and the platforms of a multi-arch tag'
        : '--delete-untagged is refused on 2.8 (it breaks multi-arch images there), and the registry is untouched',
      async () => {
        const target = { url: registry.url };
        const layers = (seed: string) => [{ seed: `cli-gc-${seed}`, size: 50_000 }];
        const untagged = await pushImage(target, 'app', 'latest', { created: null, layers: layers('old') });
        const latest = await pushImage(target, 'app', 'latest', { created: null, layers: layers('new') });
        const platforms = await Promise.all(
          ['amd64', 'arm64'].map((architecture) =>
            pushImage(target, 'app', null, { created: null, architecture, layers: layers(architecture) }),
          ),
        );
        const multi = await pushIndex(
          target,
          'app',
          'multi',
          platforms.map((p, i) => ({
            mediaType: p.mediaType,
            digest: p.digest,
            size: p.size,
            platform: { os: 'linux', architecture: ['amd64', 'arm64'][i]! },
          })),
        );
        const before = await containerState(engine, registry.name);

        const r = await cli(['gc', '--container', registry.name, '--mode', 'offline', '--delete-untagged']);

        if (kind === 'v3') {
          expect(r.code, r.out + r.err).toBe(EXIT.ok);
          expect(r.out).toMatch(
            /garbage-collect done in offline mode: [1-9]\d* blobs and 1 manifests removed/,
          );
          expect(await head(untagged.digest)).toBe(404);
          expect(await blobStatus(untagged.layers[0]!.digest)).toBe(404);
        } else {
          expect(r.code).toBe(EXIT.failed);
          expect(r.err).toMatch(/refusing --delete-untagged on distribution 2\.8\.2\+ds1/);
          expect(await containerState(engine, registry.name)).toEqual(before);
          expect(await head(untagged.digest)).toBe(200);
        }
        expect(await head('latest')).toBe(200);
        expect(await head(latest.digest)).toBe(200);
        expect(await head('multi')).toBe(200);
        expect(await head(multi.digest)).toBe(200);
        for (const p of platforms) expect(await head(p.digest)).toBe(200);
      },
    );
  });
});
