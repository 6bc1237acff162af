// Two-phase apply, the undo side: what a run records when it untags a manifest instead of deleting it (the tags it
// removed and the manifest's exact bytes, children included for an index), written to the journal before the
// first tag goes and again after, and how a reader (restore, the report) gets those records back.
// The sweep that deletes them once the undo window has passed is the planner's (journal entries with `untag`).
import pLimit from 'p-limit';
import { errorMessage } from './errors.ts';
import {
  manifestDigest,
  type JournalEntry,
  type JournalStore,
  type StoredManifest,
  type UntagDetails,
} from './journal.ts';
import type { ManifestDeletion, Plan, Report } from './model.ts';
import type { RegistryClient } from './ports.ts';

const HOUR_MS = 3_600_000;

/** One manifest a run untagged, as restore reads it (the journal's entry, flattened). */
export interface UntagRecord {
  readonly runId: string;
  readonly repository: string;
  /** The manifest that was untagged. */
  readonly digest: string;
  /** The tags this run removed from it. */
  readonly tags: readonly string[];
  /** When it was recorded, before its tags were removed (ISO 8601): the undo window runs from here. */
  readonly untaggedAt: string;
  /** 'intent': the run stopped before confirming; whether the tags went is for the live registry to tell. */
  readonly state: UntagDetails['state'];
  /** The manifest first, then the children and referrers the sweep deletes with it: exact bytes, base64. */
  readonly manifests: readonly StoredManifest[];
}

/** Every untag record of a journal's entries, oldest first. */
export function untagRecords(entries: readonly JournalEntry[]): UntagRecord[] {
  return entries
    .filter((e): e is JournalEntry & { untag: UntagDetails } => e.untag !== undefined)
    .map((e) => ({
      runId: e.untag.runId,
      repository: e.repository,
      digest: e.digest,
      tags: e.untag.tags,
      untaggedAt: e.recordedAt,
      state: e.untag.state,
      manifests: e.untag.manifests,
    }))
    .sort((a, b) => (a.untaggedAt < b.untaggedAt ? -1 : a.untaggedAt > b.untaggedAt ? 1 : 0));
}

/** The untag records a journal holds (the store warns about, and drops, anything malformed). */
export async function loadUntagRecords(store: JournalStore): Promise<UntagRecord[]> {
  return untagRecords(await store.load());
}

/** Until when a manifest untagged at `untaggedAt` can be restored (ISO 8601). */
export function undoUntil(untaggedAt: string | Date, windowHours: number): string {
  return new Date(new Date(untaggedAt).getTime() + windowHours * HOUR_MS).toISOString();
}

/** Whether the undo window of a manifest untagged at `untaggedAt` has passed at `now`. */
export function windowPassed(untaggedAt: string, windowHours: number, now: Date): boolean {
  const at = Date.parse(untaggedAt);
  return !Number.isNaN(at) && now.getTime() >= at + windowHours * HOUR_MS;
}

/**
 * A revision link's time is the registry host's clock (an S3 LastModified is whole seconds); the untag time is
 * the janitor's. A push this close before the untag time counts as after it: such a manifest is never swept (it
 * stays as history, judged by its push time like any other).
 */
export const PUSH_TIME_MARGIN_MS = 60_000;

/** Whether a revision pushed at `pushedAt` was pushed (again) after a run untagged it at `untaggedAt`. */
export function pushedSinceUntag(pushedAt: string, untaggedAt: string): boolean {
  const pushed = Date.parse(pushedAt);
  const untagged = Date.parse(untaggedAt);
  return Number.isNaN(pushed) || Number.isNaN(untagged) || pushed > untagged - PUSH_TIME_MARGIN_MS;
}

/**
 * The deferred deletions of a repository's plan grouped by the untagged manifest they go with: each manifest
 * with tags, then the deferred children and referrers that wait for it (`after`), transitively.
 */
export function untagGroups(deletions: readonly ManifestDeletion[]): Map<string, string[]> {
  const deferred = deletions.filter((m) => m.deferred);
  const groups = new Map<string, string[]>();
  for (const root of deferred.filter((m) => m.tags.length > 0)) {
    const group = [root.digest];
    const inGroup = new Set(group);
    for (let grew = true; grew;) {
      grew = false;
      for (const m of deferred) {
        if (inGroup.has(m.digest) || m.tags.length > 0) continue;
        if (m.after.some((a) => inGroup.has(a))) {
          inGroup.add(m.digest);
          group.push(m.digest);
          grew = true;
        }
      }
    }
    groups.set(root.digest, group);
  }
  return groups;
}

export interface UntagIntent {
  /** The journal entries to write before the first tag is removed. */
  readonly entries: readonly JournalEntry[];
  /** `repository@digest` of each manifest whose bytes could not be read: its tags are not removed tonight. */
  readonly unrecorded: ReadonlyMap<string, string>;
}

/**
 * What a two-phase run records before it removes any tag: per manifest it untags, the tags and the exact bytes of
 * it and of what goes with it (one GET each, the digest checked against the bytes). A manifest whose bytes cannot
 * be read is left out, and its tags stay tonight: nothing is untagged that restore could not bring back.
 */
export async function untagIntent(
  client: RegistryClient,
  plan: Plan,
  runId: string,
  now: Date,
  options: { readonly concurrency?: number; readonly repositories?: ReadonlySet<string> } = {},
): Promise<UntagIntent> {
  const limit = pLimit(options.concurrency ?? 16);
  const recordedAt = now.toISOString();
  const entries: JournalEntry[] = [];
  const unrecorded = new Map<string, string>();
  const fetched = new Map<string, Promise<StoredManifest>>();
  const read = (repository: string, digest: string): Promise<StoredManifest> => {
    const key = `${repository}@${digest}`;
    let p = fetched.get(key);
    if (!p) {
      p = limit(async () => {
        const m = await client.getManifest(repository, digest);
        if (m === null) throw new Error(`the registry no longer has ${digest}`);
        const actual = manifestDigest(m.body);
        if (actual !== digest) throw new Error(`the registry served bytes of ${actual} for ${digest}`);
        return { digest, mediaType: m.mediaType, bytes: Buffer.from(m.body).toString('base64') };
      });
      fetched.set(key, p);
    }
    return p;
  };
  await Promise.all(
    plan.repositories
      .filter((r) => options.repositories === undefined || options.repositories.has(r.name))
      .flatMap((repo) => {
        const tagsOf = new Map(repo.deleteManifests.map((m) => [m.digest, m.tags]));
        return [...untagGroups(repo.deleteManifests)].map(async ([digest, group]) => {
          try {
            const manifests = await Promise.all(group.map((d) => read(repo.name, d)));
            entries.push({
              repository: repo.name,
              digest,
              after: [],
              recordedAt,
              untag: {
                runId,
                tags: [...(tagsOf.get(digest) ?? [])].sort(),
                state: 'intent',
                manifests,
              },
            });
          } catch (err) {
            unrecorded.set(
              `${repo.name}@${digest}`,
              `its bytes could not be read for the undo record (${errorMessage(err)}), so its tags stay tonight`,
            );
          }
        });
      }),
  );
  entries.sort((a, b) =>
    a.repository === b.repository ? (a.digest < b.digest ? -1 : 1) : a.repository < b.repository ? -1 : 1,
  );
  return { entries, unrecorded };
}

/**
 * The untag records once the tags were removed: each names the tags that went (a removal that failed or was not
 * started leaves its tag on the image, and a record with no tag gone is dropped), in state 'untagged'.
 */
export function confirmUntagged(
  intent: readonly JournalEntry[],
  report: Report,
  previous: readonly JournalEntry[] = [],
): JournalEntry[] {
  const earlier = new Set(
    previous.flatMap((e) => (e.untag ? e.untag.tags.map((t) => `${e.repository}@${e.digest}:${t}`) : [])),
  );
  const removed = new Set(
    report.entries
      .filter((e) => e.target === 'tag' && (e.outcome === 'deleted' || e.outcome === 'already-gone'))
      .map((e) => `${e.repository}:${e.reference}`),
  );
  const out: JournalEntry[] = [];
  for (const e of intent) {
    if (!e.untag) continue;
    const tags = e.untag.tags.filter(
      (t) => removed.has(`${e.repository}:${t}`) || earlier.has(`${e.repository}@${e.digest}:${t}`),
    );
    if (tags.length === 0) continue;
    out.push({ ...e, untag: { ...e.untag, tags, state: 'untagged' } });
  }
  return out;
}

/** A run id: when it started and a random part, e.g. `20261202T031500Z-3f9a1c`. */
export function newRunId(now: Date, random: string): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')}-${random}`;
}

/** The CLI command that puts back every tag run `runId` removed (`extra`: e.g. ` --journal FILE`). */
export function restoreRunCommand(registry: string, runId: string, extra = ''): string {
  return `registry-janitor restore --registry ${registry} --run ${runId}${extra}`;
}

/** The Lambda payload that does the same from the journal in the bucket (lambda/lambda-restore.ts). */
export function restoreRunPayload(runId: string): string {
  return JSON.stringify({ restore: { run: runId } });
}
