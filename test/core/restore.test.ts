// Restore (core/restore.ts) over the in-memory registry: a tag, a repository and a run put back from the recorded
// bytes; a tampered record, a moved tag and swept blobs restore nothing wrong; a second restore is a no-op.
import { describe, expect, it } from 'vitest';
import { ConfigError, RegistryError } from '../../lambda/core/errors.ts';
import {
  applyRestore,
  checkRecord,
  dryRunReport,
  formatRestore,
  parseTagReference,
  planRestore,
  restoreFromJournal,
  restoreOnly,
  selectRecords,
  selectionProblem,
  type RestoreSelection,
  type UntagRecord,
} from '../../lambda/core/restore.ts';
import type { JournalEntry, JournalStore } from '../../lambda/core/journal.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';
import { sha256 } from '../../lambda/demo/seed.ts';

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/** What apply records when it untags: the manifest's bytes and, for an index, its children's. */
async function recordOf(
  reg: MemoryRegistry,
  repository: string,
  digest: string,
  tags: string[],
  runId = 'run-1',
  untaggedAt = '2026-12-01T02:00:00.000Z',
): Promise<UntagRecord> {
  const root = (await reg.getManifest(repository, digest))!;
  const manifests = [{ digest, mediaType: root.mediaType, bytes: b64(root.body) }];
  const doc = JSON.parse(new TextDecoder().decode(root.body)) as { manifests?: { digest: string }[] };
  for (const c of doc.manifests ?? []) {
    const child = (await reg.getManifest(repository, c.digest))!;
    manifests.push({ digest: c.digest, mediaType: child.mediaType, bytes: b64(child.body) });
  }
  return { runId, repository, digest, tags, untaggedAt, manifests };
}

const untag = (reg: MemoryRegistry, repository: string, tags: string[]): Promise<unknown> =>
  Promise.all(tags.map((t) => reg.deleteManifest(repository, t)));

async function restore(
  reg: MemoryRegistry,
  records: UntagRecord[],
  selection: RestoreSelection,
  force = false,
): Promise<Awaited<ReturnType<typeof applyRestore>>> {
  const selected = selectRecords(records, selection, 'journal.json');
  const plan = await planRestore(reg, selected, selection, { force });
  return applyRestore(reg, plan, { force });
}

/** Two repositories, one image and one two-platform index in app, one image in api; all untagged by run-1. */
async function seeded(): Promise<{
  reg: MemoryRegistry;
  records: UntagRecord[];
  image: string;
  index: string;
}> {
  const reg = new MemoryRegistry({ tagDelete: true });
  const image = reg.addImage('app', 'v1', {
    created: '2026-01-01T00:00:00Z',
    layers: [{ seed: 'a', size: 64 }],
  });
  reg.tag('app', 'v1-alias', image.digest);
  const amd = reg.addImage('app', null, {
    created: '2026-01-01T00:00:00Z',
    layers: [{ seed: 'b', size: 64 }],
  });
  const arm = reg.addImage('app', null, {
    created: '2026-01-01T00:00:00Z',
    architecture: 'arm64',
    layers: [{ seed: 'c', size: 64 }],
  });
  const index = reg.addIndex('app', 'multi', [amd, arm]);
  const other = reg.addImage('api', 'old', {
    created: '2026-01-01T00:00:00Z',
    layers: [{ seed: 'd', size: 64 }],
  });
  const records = [
    await recordOf(reg, 'app', image.digest, ['v1', 'v1-alias']),
    await recordOf(reg, 'app', index.digest, ['multi']),
    await recordOf(reg, 'api', other.digest, ['old']),
  ];
  await untag(reg, 'app', ['v1', 'v1-alias', 'multi']);
  await untag(reg, 'api', ['old']);
  reg.calls.length = 0;
  return { reg, records, image: image.digest, index: index.digest };
}

describe('restore', () => {
  it.each<[string, RestoreSelection, Record<string, string[]>]>([
    ['one tag', { repository: 'app', tag: 'v1-alias' }, { app: ['v1-alias'], api: [] }],
    ['a repository', { repository: 'app' }, { app: ['multi', 'v1', 'v1-alias'], api: [] }],
    ['a whole run', { run: 'run-1' }, { app: ['multi', 'v1', 'v1-alias'], api: ['old'] }],
  ])('puts back %s and only that', async (_, selection, expected) => {
    const { reg, records } = await seeded();
    const report = await restore(reg, records, selection);
    expect(report.failed).toBe(0);
    for (const [repo, tags] of Object.entries(expected)) expect(Object.keys(reg.tagsOf(repo))).toEqual(tags);
    // Each restored tag points at the recorded digest.
    for (const r of records)
      for (const t of r.tags)
        if (reg.tagsOf(r.repository)[t]) expect(reg.tagsOf(r.repository)[t]).toBe(r.digest);
  });

  it('is a no-op the second time: nothing is written', async () => {
    const { reg, records } = await seeded();
    await restore(reg, records, { run: 'run-1' });
    const writes = reg.writes().length;
    const again = await restore(reg, records, { run: 'run-1' });
    expect(again).toMatchObject({ restored: 0, already: 4, skipped: 0, failed: 0 });
    expect(reg.writes().length).toBe(writes);
  });

  it('puts an index children first, by digest, then the index by tag, when the registry lost them', async () => {
    const { reg, records, index } = await seeded();
    const children = records[1]!.manifests.slice(1).map((m) => m.digest);
    for (const c of children) reg.dropManifest('app', c);
    reg.dropManifest('app', index);
    reg.calls.length = 0;
    const report = await restore(reg, records, { repository: 'app', tag: 'multi' });
    expect(report.restored).toBe(1);
    expect(reg.callsOf('putManifest').map((c) => c.reference)).toEqual([...children, 'multi']);
    for (const c of children) expect(reg.hasManifest('app', c)).toBe(true);
  });

  it('a dry run sends no PUT and lists each tag with its digest', async () => {
    const { reg, records, image } = await seeded();
    const plan = await planRestore(reg, records, { run: 'run-1' });
    const report = dryRunReport(plan);
    expect(reg.writes()).toEqual([]);
    const text = formatRestore(report, 'journal.json', { run: 'run-1' });
    expect(text).toContain(`would restore  app:v1 → ${image}`);
    expect(text).toContain('Dry run, nothing was written: 4 to restore');
  });

  describe('safety', () => {
    it('a tag pushed since is left alone and said so; --force puts it back', async () => {
      const { reg, records, image } = await seeded();
      const newer = reg.addImage('app', 'v1', {
        created: '2026-02-01T00:00:00Z',
        layers: [{ seed: 'new', size: 8 }],
      });
      const report = await restore(reg, records, { repository: 'app' });
      expect(reg.tagsOf('app').v1).toBe(newer.digest);
      const moved = report.results.find((r) => r.tag === 'v1')!;
      expect(moved).toMatchObject({ outcome: 'skipped', current: newer.digest });
      expect(moved.reason).toMatch(/pushed since.*--force/);
      expect(reg.tagsOf('app')['v1-alias']).toBe(image);
      const forced = await restore(reg, records, { repository: 'app', tag: 'v1' }, true);
      expect(forced.restored).toBe(1);
      expect(reg.tagsOf('app').v1).toBe(image);
    });

    it('a tag left on a placeholder by an interrupted 2.8 removal is ours and is put back', async () => {
      const { reg, records, image } = await seeded();
      const placeholder = reg.addManifest(
        'app',
        'v1',
        'application/vnd.oci.image.index.v1+json',
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [],
          annotations: { 'io.github.registry-janitor.placeholder': 'app:v1' },
        }),
      );
      expect(reg.tagsOf('app').v1).toBe(placeholder.digest);
      const report = await restore(reg, records, { repository: 'app', tag: 'v1' });
      expect(report.restored).toBe(1);
      expect(reg.tagsOf('app').v1).toBe(image);
    });

    it.each<[string, (r: UntagRecord) => UntagRecord]>([
      [
        'bytes that do not hash to the digest',
        (r) => ({
          ...r,
          manifests: r.manifests.map((m) => ({ ...m, bytes: b64(new TextEncoder().encode('{"evil":1}')) })),
        }),
      ],
      [
        'the digest of another image with its own bytes',
        (r) => ({ ...r, digest: 'sha256:' + 'a'.repeat(64) }),
      ],
      [
        'bytes that are not base64',
        (r) => ({ ...r, manifests: r.manifests.map((m) => ({ ...m, bytes: '%%%' })) }),
      ],
      [
        'an extra manifest the image does not reference',
        (r) => ({
          ...r,
          manifests: [
            ...r.manifests,
            (() => {
              const bytes = new TextEncoder().encode(
                JSON.stringify({
                  schemaVersion: 2,
                  mediaType: 'application/vnd.oci.image.index.v1+json',
                  manifests: [],
                }),
              );
              return {
                digest: sha256(bytes),
                mediaType: 'application/vnd.oci.image.index.v1+json',
                bytes: b64(bytes),
              };
            })(),
          ],
        }),
      ],
    ])('a tampered record (%s) restores nothing', async (_, tamper) => {
      const { reg, records } = await seeded();
      const bad = tamper(records[0]!);
      expect(typeof checkRecord(bad)).toBe('string');
      const before = reg.tagsOf('app');
      const report = await restore(reg, [bad], { repository: 'app' });
      expect(report.restored).toBe(0);
      expect(report.failed).toBe(bad.tags.length);
      expect(report.results[0]!.reason).toMatch(/journal/);
      expect(reg.tagsOf('app')).toEqual(before);
      expect(reg.writes().filter((c) => c.op === 'putManifest')).toEqual([]);
    });

    it('an index whose recorded child is not one its bytes reference is refused', async () => {
      const { records } = await seeded();
      const imageRecord = records[0]!;
      const indexRecord = records[1]!;
      // The index's real child swapped for another, valid, manifest.
      const swapped = { ...indexRecord, manifests: [indexRecord.manifests[0]!, imageRecord.manifests[0]!] };
      expect(checkRecord(swapped)).toMatch(/neither references nor is referred to/);
    });

    it('swept blobs fail the record with a clear message and put nothing', async () => {
      const { reg, records } = await seeded();
      const doc = JSON.parse(Buffer.from(records[0]!.manifests[0]!.bytes, 'base64').toString()) as {
        layers: { digest: string }[];
      };
      reg.dropBlob('app', doc.layers[0]!.digest);
      reg.calls.length = 0;
      const report = await restore(reg, records, { repository: 'app' });
      const failed = report.results.filter((r) => r.outcome === 'failed');
      expect(failed.map((r) => r.tag)).toEqual(['v1', 'v1-alias']);
      expect(failed[0]!.reason).toMatch(/blob it needs is gone.*garbage-collect swept.*Push the image again/);
      expect(reg.callsOf('putManifest').map((c) => c.reference)).toEqual(['multi']);
    });

    it('an index child neither recorded nor served fails the index', async () => {
      const { reg, records } = await seeded();
      const partial = { ...records[1]!, manifests: records[1]!.manifests.slice(0, 2) };
      const missing = records[1]!.manifests[2]!.digest;
      reg.dropManifest('app', missing);
      const report = await restore(reg, [partial], { repository: 'app', tag: 'multi' });
      expect(report.results[0]!.reason).toContain(`references ${missing}, which the journal does not hold`);
    });

    it("the registry's MANIFEST_BLOB_UNKNOWN on PUT is explained", async () => {
      const { reg, records } = await seeded();
      reg.fail(
        'putManifest',
        new RegistryError('PUT answered 400 MANIFEST_BLOB_UNKNOWN', {
          status: 400,
          code: 'MANIFEST_BLOB_UNKNOWN',
        }),
      );
      const report = await restore(reg, records, { repository: 'api' });
      expect(report.results[0]).toMatchObject({ outcome: 'failed' });
      expect(report.results[0]!.reason).toMatch(/swept by garbage-collect/);
    });
  });

  describe('selection', () => {
    it.each<[RestoreSelection, RegExp]>([
      [{ run: 'nope' }, /no tag removed by run nope; the runs it knows: run-1/],
      [{ repository: 'zzz' }, /repositories it knows: app, api/],
      [{ repository: 'app', tag: 'zzz' }, /removed tags it knows in app: v1, v1-alias, multi/],
    ])('%j matching nothing is bad input naming what the journal holds', async (selection, message) => {
      const { records } = await seeded();
      expect(() => selectRecords(records, selection, 'j.json')).toThrow(ConfigError);
      expect(() => selectRecords(records, selection, 'j.json')).toThrow(message);
    });

    it('an empty journal says what can be restored at all', () => {
      expect(() => selectRecords([], { run: 'x' }, 'j.json')).toThrow(/holds no removed tags at all/);
    });

    it('a tag removed twice is restored to what the latest removal took', async () => {
      const { records } = await seeded();
      const later = {
        ...records[2]!,
        runId: 'run-2',
        digest: 'sha256:' + 'b'.repeat(64),
        untaggedAt: '2026-12-02T02:00:00.000Z',
      };
      const picked = selectRecords([records[2]!, later], { repository: 'api', tag: 'old' }, 'j');
      expect(picked.map((r) => r.runId)).toEqual(['run-2']);
      // A run is restored as that run left it.
      expect(selectRecords([records[2]!, later], { run: 'run-1' }, 'j').map((r) => r.runId)).toEqual([
        'run-1',
      ]);
    });

    it.each([
      ['app:v1', { repository: 'app', tag: 'v1' }],
      ['team/app:v1.2', { repository: 'team/app', tag: 'v1.2' }],
      ['app', undefined],
      [':v1', undefined],
      ['app:', undefined],
      ['app@sha256:abc', undefined],
    ])('parseTagReference(%s)', (text, expected) => {
      expect(parseTagReference(text)).toEqual(expected);
    });
  });
});

/** A journal holding the records as apply confirms them; `saves` counts writes (restore must make none). */
function journalOf(records: readonly UntagRecord[]): JournalStore & { saves: number } {
  const entries: JournalEntry[] = records.map((r) => ({
    repository: r.repository,
    digest: r.digest,
    after: [],
    recordedAt: r.untaggedAt,
    untag: { runId: r.runId, tags: r.tags, state: 'untagged', manifests: r.manifests },
  }));
  const j = {
    where: 'memory journal',
    saves: 0,
    load: () => Promise.resolve(entries),
    save: () => {
      j.saves += 1;
      return Promise.resolve();
    },
  };
  return j;
}

describe('restoreFromJournal (what the CLI and the Lambda run)', () => {
  it('restores a run from the journal, reads the journal only and sends no DELETE', async () => {
    const { reg, records } = await seeded();
    const journal = journalOf(records);
    const report = await restoreFromJournal(reg, journal, { run: 'run-1' });
    expect(report).toMatchObject({ dryRun: false, restored: 4, failed: 0, skipped: 0 });
    expect(reg.tagsOf('api')).toEqual({ old: records[2]!.digest });
    expect(reg.callsOf('deleteManifest')).toEqual([]);
    expect(journal.saves).toBe(0);
  });

  it('a dry run says what it would restore and writes nothing', async () => {
    const { reg, records } = await seeded();
    const report = await restoreFromJournal(reg, journalOf(records), { repository: 'app' }, { dryRun: true });
    expect(report).toMatchObject({ dryRun: true, restored: 3, failed: 0 });
    expect(reg.writes()).toEqual([]);
    expect(reg.tagsOf('app')).toEqual({});
  });

  it('a selection the journal does not record is bad input, before any request', async () => {
    const { reg, records } = await seeded();
    await expect(restoreFromJournal(reg, journalOf(records), { run: 'run-9' })).rejects.toThrow(
      /the journal memory journal records no tag removed by run run-9; the runs it knows: run-1/,
    );
    expect(reg.calls).toEqual([]);
  });

  it('the client restore uses has no DELETE to call', () => {
    const narrowed = restoreOnly(new MemoryRegistry());
    expect(Object.keys(narrowed).sort()).toEqual(
      ['baseUrl', 'getManifest', 'headBlob', 'headManifest', 'putManifest'].sort(),
    );
    expect('deleteManifest' in narrowed).toBe(false);
  });

  it.each<[RestoreSelection, RegExp | undefined]>([
    [{ run: '20261202T031500Z-3f9a1c' }, undefined],
    [{ run: 'two words' }, /^--run expects a run id/],
    [{ repository: 'team1/app' }, undefined],
    [{ repository: 'Team1/App' }, /^--repository: "Team1\/App" is not a repository name/],
    [{ repository: 'team1/**' }, /not a glob/],
    [{ repository: 'team1/app', tag: 'v1.2_rc-1' }, undefined],
    [{ repository: 'team1/app', tag: '.v1' }, /^--tag: "\.v1" is not a tag/],
    [{ repository: 'team1/app', tag: 'x'.repeat(129) }, /is not a tag/],
  ])('selectionProblem(%j)', (selection, problem) => {
    const found = selectionProblem(selection, (k) => `--${k}`);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toMatch(problem);
  });
});
