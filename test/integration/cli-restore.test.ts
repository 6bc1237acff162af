// `registry-janitor restore` through the CLI on real 2.8 and v3 registries with filesystem storage, after a real
// two-phase apply (runJob as the CLI wires it: its client, file journal and storage listing, with the undo window
// --undo-window-hours gives): a tag, then its repository, then a whole run, right after the apply and after a
// garbage-collect that ran within the window; each restored image is served whole (manifest by tag, each child,
// every blob by GET, hashed). A tag pushed since is left alone (exit 3) unless --force --tag; once the window has
// passed and the sweep and garbage-collect took the image, there is nothing to restore and the CLI says why.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { filesystemHistory } from '../../lambda/adapters/history-fs.ts';
import { fileJournal } from '../../lambda/adapters/journal-file.ts';
import { createRegistryClient, type RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { EXIT } from '../../lambda/cli/main.ts';
import { runJob, type JobResult } from '../../lambda/core/job.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage } from '../../lambda/demo/seed.ts';
import { cli } from '../support/cli.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { seedRestoreScenario, type RestoreScenario } from '../support/restore-scenario.ts';
import { servedWhole } from '../support/served-whole.ts';
import { shiftJsonFile, shiftStorage } from '../support/time-shift.ts';

const HOUR = 3_600_000;
const POLICY = parsePolicy('rules:\n  - repositories: ["**"]\n    keep: { tags: ["keep"] }\n', 'policy.yaml');

describeEachRegistry('registry-janitor restore', ({ kind }) => {
  let registry: LocalRegistry;
  let client: RegistryHttpClient;
  let dir: string;

  beforeAll(async () => {
    registry = await startRegistry(kind);
    client = createRegistryClient({ url: registry.url, concurrency: 8 });
    dir = mkdtempSync(join(tmpdir(), 'rj-cli-restore-'));
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await registry?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The scenario, pushed a while ago: a push within a minute of the untagging would count as pushed again. */
  async function seed(prefix: string): Promise<RestoreScenario> {
    const s = await seedRestoreScenario(client, prefix);
    shiftStorage(registry.storageDir, 2 * HOUR);
    return s;
  }

  const journalOf = (prefix: string): string => join(dir, `${prefix}.journal.json`);

  /** A real two-phase apply of `prefix/**` as the CLI runs it, with a 24 h undo window. */
  async function apply(prefix: string): Promise<JobResult> {
    const warnings: string[] = [];
    const job = await runJob({
      client,
      policy: POLICY,
      repositories: [`${prefix}/**`],
      history: filesystemHistory(registry.storageDir),
      journal: fileJournal(journalOf(prefix), { registry: registry.url, warn: (m) => warnings.push(m) }),
      undoWindowHours: 24,
      now: new Date(),
      dryRun: false,
      maxDeleteFraction: 1,
    });
    expect(warnings).toEqual([]);
    expect(job.outcome).toBe('applied');
    expect(job.report!.failures).toEqual([]);
    return job;
  }

  const restore = (prefix: string, ...args: string[]): ReturnType<typeof cli> =>
    cli(['restore', '--registry', registry.url, '--journal', journalOf(prefix), ...args]);

  async function tagsOf(repo: string): Promise<string[]> {
    return (await client.listTags(repo)).sort();
  }

  async function collectGarbage(): Promise<void> {
    await registry.stop();
    registry.garbageCollect();
    await registry.start(); // also flushes 2.8's in-memory blob cache
  }

  async function allServed(s: RestoreScenario): Promise<void> {
    for (const [ref, digest] of Object.entries(s.was)) {
      const at = ref.lastIndexOf(':');
      expect(await servedWhole(client, ref.slice(0, at), ref.slice(at + 1), digest)).toBeGreaterThan(0);
    }
  }

  it('a tag, then its repository, right after apply: each image served whole; again, everything is in place', async () => {
    const s = await seed('tag');
    const job = await apply('tag');
    expect(job.report!.undo).toMatchObject({ manifests: 5, runId: expect.any(String) }); // the index with its two children;
    expect(await tagsOf(s.app)).toEqual(['keep']);
    expect(await tagsOf(s.api)).toEqual([]);

    const one = await restore('tag', '--tag', `${s.app}:v1-alias`);
    expect([one.code, one.err]).toEqual([EXIT.ok, '']);
    expect(one.out).toContain(`restored  ${s.app}:v1-alias → ${s.was[`${s.app}:v1-alias`]}`);
    expect(one.out).toContain('1 restored, 0 already in place, 0 skipped, 0 failed.');
    expect(await tagsOf(s.app)).toEqual(['keep', 'v1-alias']);

    const dry = await restore('tag', '--repository', s.app, '--dry-run');
    expect(dry.code).toBe(EXIT.ok);
    expect(dry.out).toContain('Dry run, nothing was written: 2 to restore, 1 already in place');
    expect(await tagsOf(s.app)).toEqual(['keep', 'v1-alias']);

    const repo = await restore('tag', '--repository', s.app, '--json');
    expect(repo.code).toBe(EXIT.ok);
    const result = JSON.parse(repo.out) as { restored: number; already: number; journal: string };
    expect(result).toMatchObject({ restored: 2, already: 1, journal: journalOf('tag') });
    expect(await tagsOf(s.app)).toEqual(['keep', 'multi', 'v1', 'v1-alias']);
    expect(await tagsOf(s.api)).toEqual([]);
    await collectGarbage();
    const { [`${s.api}:old`]: _, ...appTags } = s.was;
    await allServed({ ...s, was: appTags });

    const run = await restore('tag', '--run', job.report!.undo!.runId!);
    expect(run.code).toBe(EXIT.ok);
    expect(run.out).toContain('1 restored, 3 already in place');
    const again = await restore('tag', '--run', job.report!.undo!.runId!);
    expect(again.out).toContain('0 restored, 4 already in place, 0 skipped, 0 failed.');
    await allServed(s);
  }, 180_000);

  it('a whole run, after a garbage-collect that ran within the window: every blob served', async () => {
    const s = await seed('run');
    const job = await apply('run');
    await collectGarbage();
    const r = await restore('run', '--run', job.report!.undo!.runId!);
    expect([r.code, r.err]).toEqual([EXIT.ok, '']);
    expect(r.out).toContain('4 restored, 0 already in place, 0 skipped, 0 failed.');
    expect(await tagsOf(s.app)).toEqual(['keep', 'multi', 'v1', 'v1-alias']);
    expect(await tagsOf(s.api)).toEqual(['old']);
    await collectGarbage();
    await allServed(s);
  }, 180_000);

  it('a tag pushed since is left alone (exit 3); --force --tag puts it back and names what it displaced', async () => {
    const s = await seed('moved');
    const job = await apply('moved');
    const newer = await pushImage({ url: registry.url }, s.app, 'v1', {
      created: '2026-02-01T00:00:00Z',
      layers: [{ seed: 'moved-newer', size: 512 }],
    });
    const r = await restore('moved', '--run', job.report!.undo!.runId!);
    expect(r.code).toBe(EXIT.refused);
    expect(r.out).toMatch(new RegExp(`skipped +${s.app}:v1 → .*\\n +now points at ${newer.digest}`));
    expect(r.out).toContain('3 restored, 0 already in place, 1 skipped, 0 failed.');
    expect((await client.getManifest(s.app, 'v1'))!.digest).toBe(newer.digest);

    const forced = await restore('moved', '--tag', `${s.app}:v1`, '--force');
    expect(forced.code).toBe(EXIT.ok);
    expect(forced.out).toContain(`overwrites ${newer.digest} (--force)`);
    expect(await servedWhole(client, s.app, 'v1', s.was[`${s.app}:v1`]!)).toBe(2);
    // The displaced image is still there, by digest.
    expect(await client.headManifest(s.app, newer.digest)).toBe(newer.digest);
  }, 180_000);

  it('once the window passed and the sweep and garbage-collect took the image, restore says there is nothing to bring back', async () => {
    const s = await seed('swept');
    const job = await apply('swept');
    // A day and more later: the next run sweeps what the first one untagged, then garbage-collect frees the blobs.
    shiftStorage(registry.storageDir, 25 * HOUR);
    shiftJsonFile(journalOf('swept'), 25 * HOUR);
    const later = await apply('swept');
    expect(later.report!.manifestsDeleted).toBeGreaterThanOrEqual(3);
    await collectGarbage();
    const r = await restore('swept', '--run', job.report!.undo!.runId!);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toMatch(/records no tag removed by run .*swept after the undo window, cannot be restored/);
    expect(await tagsOf(s.app)).toEqual(['keep']);
  }, 180_000);

  it('apply through the CLI prints the run id, the deadline and the restore command, and that command restores the run', async () => {
    const s = await seed('printed');
    const policy = join(dir, 'printed-policy.yaml');
    writeFileSync(policy, 'rules:\n  - repositories: ["**"]\n    keep: { tags: ["keep"] }\n');
    const journal = journalOf('printed');
    const applied = await cli([
      'apply',
      '--registry',
      registry.url,
      '--policy',
      policy,
      '--repositories',
      'printed/**',
      '--storage',
      registry.storageDir,
      '--undo-window-hours',
      '24',
      '--journal',
      journal,
      '--max-delete-fraction',
      '1',
      '--yes',
    ]);
    expect([applied.code, applied.err]).toEqual([EXIT.ok, '']);
    const line =
      /^Run (\S+): 5 manifests untagged, restorable until (\S+) with\n {2}(registry-janitor restore .*)$/m.exec(
        applied.out,
      );
    expect(line, applied.out).not.toBeNull();
    const [, runId, until, command] = line!;
    expect(Date.parse(until!) - Date.now()).toBeGreaterThan(23 * HOUR);
    expect(command).toBe(
      `registry-janitor restore --registry ${registry.url} --run ${runId} --journal ${journal}`,
    );
    expect(await tagsOf(s.app)).toEqual(['keep']);

    const r = await cli(command!.split(' ').slice(1));
    expect([r.code, r.err]).toEqual([EXIT.ok, '']);
    expect(r.out).toContain('4 restored, 0 already in place, 0 skipped, 0 failed.');
    await allServed(s);
  }, 180_000);

  it('a journal written for another registry is not used, and nothing is written', async () => {
    const s = await seed('other');
    await apply('other');
    const copy = join(dir, 'copy.journal.json');
    writeFileSync(
      copy,
      '{"format":"registry-janitor-journal","version":2,"registry":"http://elsewhere:5000","entries":[]}\n',
      {
        mode: 0o600,
      },
    );
    const r = await cli(['restore', '--registry', registry.url, '--journal', copy, '--repository', s.app]);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toMatch(/warning: journal .* is not used/);
    expect(await tagsOf(s.app)).toEqual(['keep']);
  }, 120_000);
});
