// A two-phase apply from the real CLI process, SIGKILLed part-way, on real 2.8 and v3 registries with filesystem
// storage behind a delay proxy: once the journal's intent is written and some tags are removed (window 24 h), and
// once every tag is removed but before the sweep is through (window 0). The next run, as a user runs it again,
// finishes: nothing kept is lost, every image the plan removes is untagged and restorable from the journal until
// its window passes (then swept and reclaimed), and with window 0 swept at once; the journal ends empty.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { decodeJournal } from '../../lambda/core/journal.ts';
import { untagRecords } from '../../lambda/core/undo.ts';
import { startDelayProxy, type DelayProxy } from '../bench/delay-proxy.ts';
import { runCli, type Finished } from '../support/cli-process.ts';
import { MANIFEST_ACCEPT, notReclaimed, whyNotServed, type Candidate } from '../support/promoter.ts';
import { RACE_POLICY_YAML } from '../support/race-scenario.ts';
import { HOUR, seedRound, type Round } from '../support/race-rounds.ts';
import { describeEachRegistry } from '../support/registry-kind.ts';
import { shiftJsonFile, shiftStorage } from '../support/time-shift.ts';

const STATE_DIR = mkdtempSync(join(tmpdir(), 'rj-kill-state-'));
afterAll(() => rmSync(STATE_DIR, { recursive: true, force: true }));

describeEachRegistry('a two-phase CLI apply killed part-way is finished by the next run', ({ kind }) => {
  const rounds: Round[] = [];
  afterEach(async () => {
    for (const r of rounds.splice(0)) await r.dispose();
  });

  let delay: DelayProxy | undefined;
  const seed = async (name: string, delayMs: number): Promise<{ r: Round; policyFile: string }> => {
    const r = await seedRound(kind, name, async (registry) => {
      delay = await startDelayProxy(Number(new URL(registry.url).port), delayMs);
      return delay;
    });
    rounds.push(r);
    const policyFile = join(r.dir, 'policy.yaml');
    writeFileSync(policyFile, RACE_POLICY_YAML);
    return { r, policyFile };
  };
  const apply = (r: Round, policyFile: string, window: number, onRunning?: Parameters<typeof runCli>[2]) =>
    runCli(
      [
        'apply',
        '--registry',
        r.proxy.url,
        '--policy',
        policyFile,
        '--storage',
        r.registry.storageDir,
        '--journal',
        r.journalFile,
        '--undo-window-hours',
        String(window),
        '--max-delete-fraction',
        '1',
        '--yes',
      ],
      STATE_DIR,
      onRunning,
    );
  const tagsLeft = async (r: Round, c: Candidate): Promise<string[]> => {
    const res = await fetch(`${r.registry.url}/v2/${c.repository}/tags/list`);
    const tags = ((await res.json()) as { tags: string[] | null }).tags ?? [];
    return c.tags.filter((t) => tags.includes(t));
  };
  const manifestThere = async (r: Round, c: Candidate): Promise<boolean> =>
    (
      await fetch(`${r.registry.url}/v2/${c.repository}/manifests/${c.digest}`, {
        method: 'HEAD',
        headers: { accept: MANIFEST_ACCEPT },
      })
    ).status === 200;
  /** Whether any candidate lost a tag, or all of them lost all: one tag listing per repository. */
  const tagsGone = async (r: Round): Promise<{ some: boolean; all: boolean }> => {
    const repos = [...new Set(r.candidates.map((c) => c.repository))];
    const listed = new Map(
      await Promise.all(
        repos.map(async (name): Promise<[string, string[]]> => {
          const res = await fetch(`${r.registry.url}/v2/${name}/tags/list`);
          return [name, ((await res.json()) as { tags: string[] | null }).tags ?? []];
        }),
      ),
    );
    const left = r.candidates.map((c) => c.tags.filter((t) => listed.get(c.repository)!.includes(t)).length);
    return {
      some: r.candidates.some((c, i) => left[i]! < c.tags.length),
      all: left.every((n) => n === 0),
    };
  };
  const records = (r: Round) =>
    existsSync(r.journalFile)
      ? untagRecords(decodeJournal(readFileSync(r.journalFile, 'utf8'), r.proxy.url).entries)
      : [];
  /** Kill the run once `when` holds (polled every 20 ms). */
  const killWhen =
    (when: () => Promise<boolean>): Parameters<typeof runCli>[2] =>
    (kill) => {
      let done = false;
      const poll = setInterval(() => {
        void when().then((yes) => {
          if (yes && !done) {
            done = true;
            clearInterval(poll);
            kill('SIGKILL');
          }
        });
      }, 20);
    };
  const keptServed = async (r: Round) => {
    for (const k of r.kept) expect(await whyNotServed(r.registry.url, k.image, k.tag)).toBeUndefined();
  };

  /** After garbage-collect and a restart: every candidate reclaimed, every kept image served whole. */
  const reclaimedAfterGc = async (r: Round) => {
    await r.registry.stop();
    r.registry.garbageCollect();
    await r.registry.start();
    expect(await notReclaimed(r.registry.url, r.candidates)).toEqual([]);
    await keptServed(r);
  };

  it('killed after the intent was written and some tags removed (window 24 h): the next run untags the rest, all restorable; the sweep after the window reclaims it', async () => {
    const { r, policyFile } = await seed(`kill-a-${kind}`, 60);
    const killed: Finished = await apply(
      r,
      policyFile,
      24,
      killWhen(async () => records(r).length > 0 && (await tagsGone(r)).some),
    );
    expect(killed.signal).toBe('SIGKILL');
    // Killed part-way: some tags went.
    const gone = [];
    for (const c of r.candidates) if ((await tagsLeft(r, c)).length === 0) gone.push(c);
    expect(gone.length).toBeGreaterThan(0);
    // The DELETEs already sent still land after the kill, so how many went is not asserted; the journal holds the
    // intent (the confirmation comes after every answer), or the run got that far before the kill.
    expect(records(r).length).toBeGreaterThan(0);
    await keptServed(r);

    const again = await apply(r, policyFile, 24);
    expect(again.code, again.stderr).toBe(0);
    const recorded = new Map(records(r).map((x) => [`${x.repository}@${x.digest}`, x]));
    for (const c of r.candidates) {
      expect(await tagsLeft(r, c)).toEqual([]);
      expect(await manifestThere(r, c)).toBe(true);
      // Restorable: the journal holds it with its exact bytes and the tags removed.
      const record = recorded.get(`${c.repository}@${c.digest}`);
      expect(record, `${c.repository}@${c.digest}`).toBeDefined();
      expect([...record!.tags].sort()).toEqual([...c.tags].sort());
      expect(Buffer.from(record!.manifests[0]!.bytes, 'base64').equals(Buffer.from(c.bytes))).toBe(true);
    }
    await keptServed(r);

    shiftStorage(r.registry.storageDir, 25 * HOUR);
    shiftJsonFile(r.journalFile, 25 * HOUR);
    const swept = await apply(r, policyFile, 24);
    expect(swept.code, swept.stderr).toBe(0);
    expect(records(r)).toEqual([]);
    await reclaimedAfterGc(r);
  }, 110_000);

  it('killed after every tag was removed, before the sweep was through (window 0): the next run sweeps it', async () => {
    const { r, policyFile } = await seed(`kill-b-${kind}`, 15);
    const killed = await apply(
      r,
      policyFile,
      0,
      killWhen(async () => (await tagsGone(r)).all),
    );
    // Killed, or (on a fast machine) done before the poll saw every tag gone: either way the next run finishes.
    expect(killed.signal === 'SIGKILL' || killed.code === 0, killed.stderr).toBe(true);
    await keptServed(r);
    const again = await apply(r, policyFile, 0);
    expect(again.code, again.stderr).toBe(0);
    for (const c of r.candidates) expect(await manifestThere(r, c)).toBe(false);
    expect(records(r)).toEqual([]);
    await reclaimedAfterGc(r);
  }, 110_000);
});
