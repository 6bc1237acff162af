// Undo: points the tags a run removed back at their manifests, from the bytes the journal recorded when it
// untagged them. The journal is a file someone could edit, so it only proposes: every recorded manifest must hash
// to its digest and belong to the image (a child its index references, a referrer of it), every blob must still
// be served, and a tag that points elsewhere now (someone pushed since) is never overwritten unless forced.
import pLimit from 'p-limit';
import { isRepositoryName, isTagName } from './contract.ts';
import { ConfigError, errorMessage, RegistryError } from './errors.ts';
import { manifestDigest, type JournalStore } from './journal.ts';
import { parseManifest } from './manifest.ts';
import type { ManifestInfo } from './model.ts';
import type { RegistryClient } from './ports.ts';
import { loadUntagRecords, type UntagRecord as JournalUntagRecord } from './undo.ts';

/**
 * What restore reads of a run's untag record (core/undo.ts). Whether the run confirmed it is not needed: a tag
 * still on its recorded digest is left as it is, whatever the record says.
 */
export type UntagRecord = Omit<JournalUntagRecord, 'state'>;

/** What restore may ask of the registry: reads and PUTs of manifests, never a DELETE. */
export type RestoreClient = Pick<
  RegistryClient,
  'baseUrl' | 'headManifest' | 'getManifest' | 'headBlob' | 'putManifest'
>;

/**
 * The registry client with only what restore uses: a restore deletes nothing, and this holds even for a caller
 * that casts (there is no `deleteManifest` to call).
 */
export function restoreOnly(client: RestoreClient): RestoreClient {
  return {
    baseUrl: client.baseUrl,
    headManifest: (repository, reference) => client.headManifest(repository, reference),
    getManifest: (repository, reference) => client.getManifest(repository, reference),
    headBlob: (repository, digest) => client.headBlob(repository, digest),
    putManifest: (repository, reference, mediaType, body) =>
      client.putManifest(repository, reference, mediaType, body),
  };
}

/** What to restore: every tag one run removed, every tag removed in one repository, or one tag. */
export type RestoreSelection =
  | { readonly run: string }
  | { readonly repository: string }
  | { readonly repository: string; readonly tag: string };

/** What becomes of one removed tag. */
export type RestoreAction =
  /** It points at nothing (or at a placeholder an interrupted removal left): it is put back. */
  | 'restore'
  /** It points at something else now and `force` was given: it is put back over it. */
  | 'overwrite'
  /** It already points at the recorded digest: nothing to do. */
  | 'already'
  /** It points at something else now (pushed since): left alone. */
  | 'moved'
  /** The record cannot be restored (tampered, blobs gone, a child missing): the reason says which. */
  | 'fail';

export interface RestoreItem {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  readonly runId: string;
  readonly untaggedAt: string;
  readonly action: RestoreAction;
  /** What the tag points at now, when that is not the recorded digest. */
  readonly current?: string;
  readonly reason?: string;
}

export interface RestorePlan {
  readonly registry: string;
  readonly selection: RestoreSelection;
  /** One per tag, in journal order (repository, then tag). */
  readonly items: readonly RestoreItem[];
  /** The verified bytes to put, by record: not part of what is shown. */
  readonly work: readonly RestoreWork[];
}

/** One record's verified manifests, in the order they are put. */
export interface RestoreWork {
  readonly repository: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Uint8Array;
  /** Children (deepest first) that the registry no longer has, put by digest before the tags. */
  readonly before: readonly VerifiedManifest[];
  /** Referrers the registry no longer has, put by digest after the tags. */
  readonly after: readonly VerifiedManifest[];
}

export interface VerifiedManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Uint8Array;
}

export type RestoreOutcome = 'restored' | 'already' | 'skipped' | 'failed';

export interface RestoreResult extends RestoreItem {
  readonly outcome: RestoreOutcome;
}

export interface RestoreReport {
  readonly registry: string;
  readonly dryRun: boolean;
  readonly results: readonly RestoreResult[];
  readonly restored: number;
  readonly already: number;
  readonly skipped: number;
  readonly failed: number;
}

export interface RestoreOptions {
  /** Put tags back over what they point at now. @default false */
  readonly force?: boolean;
  /** Requests in flight. @default 8 */
  readonly concurrency?: number;
}

/** `repository:tag` as given to --tag: the tag is after the last colon. */
export function parseTagReference(text: string): { repository: string; tag: string } | undefined {
  const at = text.lastIndexOf(':');
  if (at <= 0 || at === text.length - 1 || text.includes('@')) return undefined;
  return { repository: text.slice(0, at), tag: text.slice(at + 1) };
}

/**
 * What is wrong with a selection as typed (a repository name or tag distribution would not accept, an empty run
 * id), or undefined. `flag` names where each part came from, e.g. `--tag` or `restore.tag`.
 */
export function selectionProblem(
  selection: RestoreSelection,
  flag: (key: 'run' | 'repository' | 'tag') => string,
): string | undefined {
  if ('run' in selection) {
    return /^\S+$/.test(selection.run)
      ? undefined
      : `${flag('run')} expects a run id as apply printed it (e.g. 20261202T031500Z-3f9a1c), got "${selection.run}"`;
  }
  const key = 'tag' in selection ? 'tag' : 'repository';
  if (!isRepositoryName(selection.repository)) {
    return (
      `${flag(key)}: "${selection.repository}" is not a repository name (lowercase path components of [a-z0-9] ` +
      'joined by ".", "_", "__" or "-", separated by "/"; a name as the catalog lists it, not a glob)'
    );
  }
  if ('tag' in selection && !isTagName(selection.tag)) {
    return `${flag('tag')}: "${selection.tag}" is not a tag (a word character, then up to 127 of word characters, "." and "-")`;
  }
  return undefined;
}

export function describeSelection(selection: RestoreSelection): string {
  if ('run' in selection) return `run ${selection.run}`;
  if ('tag' in selection) return `tag ${selection.repository}:${selection.tag}`;
  return `repository ${selection.repository}`;
}

/**
 * The records a selection names, narrowed to its tags. A tag removed more than once (restored, then removed again
 * by a later run) is restored to what the latest removal took; a run is restored as that run left it.
 * @throws ConfigError when nothing matches, naming what the journal does hold.
 */
export function selectRecords(
  records: readonly UntagRecord[],
  selection: RestoreSelection,
  where: string,
): UntagRecord[] {
  const matching = records.flatMap((r): UntagRecord[] => {
    if ('run' in selection) return r.runId === selection.run ? [r] : [];
    if (r.repository !== selection.repository) return [];
    if (!('tag' in selection)) return [r];
    return r.tags.includes(selection.tag) ? [{ ...r, tags: [selection.tag] }] : [];
  });
  if (matching.length === 0) throw new ConfigError(nothingMatches(records, selection, where));
  if ('run' in selection) return matching;
  const latest = new Map<string, UntagRecord>();
  for (const r of matching) {
    for (const tag of r.tags) {
      const seen = latest.get(tag);
      if (!seen || Date.parse(r.untaggedAt) >= Date.parse(seen.untaggedAt)) latest.set(tag, r);
    }
  }
  return matching.flatMap((r) => {
    const tags = r.tags.filter((t) => latest.get(t) === r);
    return tags.length === 0 ? [] : [{ ...r, tags }];
  });
}

function nothingMatches(records: readonly UntagRecord[], selection: RestoreSelection, where: string): string {
  const head = `the journal ${where} records no tag removed by ${describeSelection(selection)}`;
  if (records.length === 0) {
    return (
      `${head}: it holds no removed tags at all (apply records what it untags there; a tag removed before ` +
      'two-phase apply, or swept after the undo window, cannot be restored). Give the same --journal (or --cache) ' +
      'as the apply that removed it'
    );
  }
  const list = (values: string[]): string => {
    const unique = [...new Set(values)];
    return unique.slice(0, 5).join(', ') + (unique.length > 5 ? `, … (${unique.length} in all)` : '');
  };
  if ('run' in selection) return `${head}; the runs it knows: ${list(records.map((r) => r.runId))}`;
  const inRepo = records.filter((r) => r.repository === selection.repository);
  if ('tag' in selection && inRepo.length > 0) {
    return `${head}; the removed tags it knows in ${selection.repository}: ${list(inRepo.flatMap((r) => r.tags))}`;
  }
  return `${head}; the repositories it knows: ${list(records.map((r) => r.repository))}`;
}

interface CheckedRecord {
  readonly root: VerifiedManifest & { readonly info: ManifestInfo };
  /** Recorded children in put order (deepest first). */
  readonly children: readonly (VerifiedManifest & { readonly info: ManifestInfo })[];
  readonly referrers: readonly (VerifiedManifest & { readonly info: ManifestInfo })[];
  /** Children the bytes reference but the record does not hold: they must still be in the registry. */
  readonly unrecorded: readonly string[];
}

/**
 * A record's manifests, checked against themselves: each one's bytes hash to its digest, the root is there, and
 * every other one is a child the root references (recursively) or a referrer of the root or a child. Returns the
 * problem otherwise: a tampered record restores nothing.
 */
export function checkRecord(record: UntagRecord): CheckedRecord | string {
  const verified = new Map<string, VerifiedManifest & { readonly info: ManifestInfo }>();
  for (const m of record.manifests) {
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64(m.bytes);
    } catch {
      return `the journal's bytes for ${m.digest} are not base64: the journal was altered, nothing of it is restored`;
    }
    const actual = manifestDigest(bytes);
    if (actual !== m.digest) {
      return `the journal's bytes for ${m.digest} hash to ${actual}: the journal was altered, nothing of it is restored`;
    }
    let info: ManifestInfo;
    try {
      info = parseManifest(m.digest, m.mediaType, bytes);
    } catch (err) {
      return `the journal's manifest ${m.digest} cannot be read (${errorMessage(err)}): nothing of it is restored`;
    }
    verified.set(m.digest, { digest: m.digest, mediaType: m.mediaType, bytes, info });
  }
  const root = verified.get(record.digest);
  if (!root) return `the journal holds no bytes for ${record.digest} itself: nothing of it is restored`;
  const children: (VerifiedManifest & { readonly info: ManifestInfo })[] = [];
  const unrecorded: string[] = [];
  const reached = new Set([root.digest]);
  const visit = (info: ManifestInfo, depth: number): void => {
    if (depth > 8) return;
    for (const child of info.children) {
      if (reached.has(child.digest)) continue;
      reached.add(child.digest);
      const recorded = verified.get(child.digest);
      if (!recorded) {
        unrecorded.push(child.digest);
        continue;
      }
      visit(recorded.info, depth + 1);
      children.push(recorded); // after its own children: put deepest first
    }
  };
  visit(root.info, 0);
  const referrers: (VerifiedManifest & { readonly info: ManifestInfo })[] = [];
  for (const m of verified.values()) {
    if (reached.has(m.digest)) continue;
    if (m.info.subject !== undefined && reached.has(m.info.subject)) referrers.push(m);
    else {
      return (
        `the journal's record of ${record.digest} also holds ${m.digest}, which that image neither references ` +
        'nor is referred to by: the journal was altered, nothing of it is restored'
      );
    }
  }
  return { root, children, referrers, unrecorded };
}

function decodeBase64(text: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Error('not base64');
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** The blobs a manifest needs the registry to serve (config and layers; foreign layers are not stored). */
function blobsOf(info: ManifestInfo): string[] {
  return [...(info.config ? [info.config.digest] : []), ...info.layers.map((l) => l.digest)];
}

/**
 * What a restore would do, read from the live registry: each selected tag's state now (absent, at the recorded
 * digest, elsewhere), each record checked against itself, and, for each record with a tag to put back, every
 * manifest and blob it needs. Sends no PUT.
 */
export async function planRestore(
  client: RestoreClient,
  records: readonly UntagRecord[],
  selection: RestoreSelection,
  options: RestoreOptions = {},
): Promise<RestorePlan> {
  const limit = pLimit(options.concurrency ?? 8);
  const perRecord = await Promise.all(
    records.map(async (record) => planRecord(client, record, options.force ?? false, limit)),
  );
  return {
    registry: client.baseUrl,
    selection,
    items: perRecord.flatMap((p) => p.items),
    work: perRecord.flatMap((p) => (p.work ? [p.work] : [])),
  };
}

async function planRecord(
  client: RestoreClient,
  record: UntagRecord,
  force: boolean,
  limit: ReturnType<typeof pLimit>,
): Promise<{ items: RestoreItem[]; work?: RestoreWork }> {
  const item = (tag: string, action: RestoreAction, extra: Partial<RestoreItem> = {}): RestoreItem => ({
    repository: record.repository,
    tag,
    digest: record.digest,
    runId: record.runId,
    untaggedAt: record.untaggedAt,
    action,
    ...extra,
  });
  const checked = checkRecord(record);
  if (typeof checked === 'string')
    return { items: record.tags.map((t) => item(t, 'fail', { reason: checked })) };
  const repo = record.repository;
  const states = await Promise.all(
    record.tags.map((tag) =>
      limit(async () => ({ tag, ...(await tagState(client, repo, tag, record.digest)) })),
    ),
  );
  const items = states.map((s): RestoreItem => {
    if (s.state === 'at-digest') return item(s.tag, 'already');
    if (s.state === 'free')
      return item(s.tag, 'restore', s.current ? { current: s.current, reason: s.reason } : {});
    return force
      ? item(s.tag, 'overwrite', { current: s.current, reason: `overwrites ${s.current} (--force)` })
      : item(s.tag, 'moved', {
          current: s.current,
          reason: `now points at ${s.current} (pushed since it was removed): left alone; --force puts it back over that`,
        });
  });
  if (!items.some((i) => i.action === 'restore' || i.action === 'overwrite')) return { items };
  // What the tags need: each manifest present (or recorded, to be put back), each blob served.
  const problem = await missingParts(client, repo, checked, limit);
  if (typeof problem === 'string') {
    return {
      items: items.map((i) =>
        i.action === 'restore' || i.action === 'overwrite'
          ? { ...i, action: 'fail' as const, reason: problem }
          : i,
      ),
    };
  }
  return {
    items,
    work: {
      repository: repo,
      digest: checked.root.digest,
      mediaType: checked.root.mediaType,
      bytes: checked.root.bytes,
      before: problem.children.map(strip),
      after: problem.referrers.map(strip),
    },
  };
}

const strip = (m: VerifiedManifest): VerifiedManifest => ({
  digest: m.digest,
  mediaType: m.mediaType,
  bytes: m.bytes,
});

type TagState =
  | { readonly state: 'at-digest' }
  | { readonly state: 'free'; readonly current?: string; readonly reason?: string }
  | { readonly state: 'moved'; readonly current: string };

/** Where a tag points now: nowhere, at the recorded digest, at a placeholder of ours, or at someone else's push. */
async function tagState(client: RestoreClient, repo: string, tag: string, digest: string): Promise<TagState> {
  const current = await client.headManifest(repo, tag);
  if (current === null) return { state: 'free' };
  if (current === digest) return { state: 'at-digest' };
  // A 2.8 removal interrupted between its placeholder PUT and DELETE leaves the tag on our placeholder: ours to replace.
  const fetched = await client.getManifest(repo, current);
  if (fetched && isPlaceholder(fetched.digest, fetched.mediaType, fetched.body)) {
    return {
      state: 'free',
      current,
      reason: `replaces the placeholder ${current} an interrupted removal left on it`,
    };
  }
  return { state: 'moved', current };
}

function isPlaceholder(digest: string, mediaType: string, body: Uint8Array): boolean {
  try {
    return parseManifest(digest, mediaType, body).placeholder === true;
  } catch {
    return false;
  }
}

/**
 * The recorded children and referrers the registry no longer serves by digest (to be put back), or why the image
 * cannot be restored: a child neither recorded nor served, a blob no longer served (swept by garbage-collect).
 */
async function missingParts(
  client: RestoreClient,
  repo: string,
  checked: CheckedRecord,
  limit: ReturnType<typeof pLimit>,
): Promise<{ children: VerifiedManifest[]; referrers: VerifiedManifest[] } | string> {
  const present = async (digest: string): Promise<boolean> =>
    limit(async () => (await client.headManifest(repo, digest)) === digest);
  for (const digest of checked.unrecorded) {
    if (!(await present(digest))) {
      return (
        `cannot be restored: its index references ${digest}, which the journal does not hold and the registry no ` +
        'longer serves (swept after the undo window?). Push the image again from where it was built'
      );
    }
  }
  const manifests = [checked.root, ...checked.children, ...checked.referrers];
  const blobs = new Map<string, string>();
  for (const m of manifests) for (const b of blobsOf(m.info)) if (!blobs.has(b)) blobs.set(b, m.digest);
  const answers = await Promise.all(
    [...blobs].map(([blob, owner]) =>
      limit(async () => ({ blob, owner, served: await client.headBlob(repo, blob) })),
    ),
  );
  const gone = answers.filter((a) => !a.served);
  if (gone.length > 0) {
    const first = gone[0]!;
    return (
      `cannot be restored: ${gone.length === 1 ? 'a blob it needs is' : `${gone.length} blobs it needs are`} gone ` +
      `from the registry (${first.blob} of manifest ${first.owner}${gone.length > 1 ? ', …' : ''}): garbage-collect ` +
      'swept them, which happens once the undo window has passed and the manifest was reclaimed. Push the image ' +
      'again from where it was built'
    );
  }
  const children = (
    await Promise.all(checked.children.map(async (c) => ((await present(c.digest)) ? [] : [c])))
  ).flat();
  const referrers = (
    await Promise.all(checked.referrers.map(async (r) => ((await present(r.digest)) ? [] : [r])))
  ).flat();
  return { children, referrers };
}

/**
 * Carry out a restore plan: per record, the children the registry lost by digest (deepest first), then each tag
 * by a PUT of the recorded bytes, each re-read right before (a tag moved since the plan is left alone unless
 * forced), then the referrers. Idempotent: a tag at its digest already is not written again.
 */
export async function applyRestore(
  client: RestoreClient,
  plan: RestorePlan,
  options: RestoreOptions = {},
): Promise<RestoreReport> {
  const limit = pLimit(options.concurrency ?? 8);
  const work = new Map(plan.work.map((w) => [`${w.repository}@${w.digest}`, w]));
  const byRecord = new Map<string, RestoreItem[]>();
  for (const i of plan.items) {
    const key = `${i.repository}@${i.digest}`;
    byRecord.set(key, [...(byRecord.get(key) ?? []), i]);
  }
  const results = (
    await Promise.all(
      [...byRecord].map(([key, items]) => restoreRecord(client, items, work.get(key), options, limit)),
    )
  ).flat();
  return reportOf(plan.registry, false, results);
}

/**
 * A restore as the CLI and the Lambda run it: the journal's untag records, the selection among them (bad input
 * when it matches none), the plan read from the live registry, then (unless a dry run) the PUTs. Reads the journal
 * and never writes it: a restored tag makes its manifest tagged again, and the sweep leaves a tagged manifest be.
 * @throws ConfigError when the journal records nothing the selection names (nothing is sent then)
 */
export async function restoreFromJournal(
  client: RestoreClient,
  journal: JournalStore,
  selection: RestoreSelection,
  options: RestoreOptions & { readonly dryRun?: boolean } = {},
): Promise<RestoreReport> {
  const records = selectRecords(await loadUntagRecords(journal), selection, journal.where);
  const registry = restoreOnly(client);
  const plan = await planRestore(registry, records, selection, options);
  return options.dryRun ? dryRunReport(plan) : applyRestore(registry, plan, options);
}

/** The plan as a report of a dry run: what would be restored, nothing sent. */
export function dryRunReport(plan: RestorePlan): RestoreReport {
  return reportOf(
    plan.registry,
    true,
    plan.items.map((i) => ({ ...i, outcome: outcomeOfAction(i.action) })),
  );
}

function outcomeOfAction(action: RestoreAction): RestoreOutcome {
  if (action === 'already') return 'already';
  if (action === 'moved') return 'skipped';
  if (action === 'fail') return 'failed';
  return 'restored';
}

function reportOf(registry: string, dryRun: boolean, results: RestoreResult[]): RestoreReport {
  const count = (o: RestoreOutcome): number => results.filter((r) => r.outcome === o).length;
  return {
    registry,
    dryRun,
    results,
    restored: count('restored'),
    already: count('already'),
    skipped: count('skipped'),
    failed: count('failed'),
  };
}

async function restoreRecord(
  client: RestoreClient,
  items: readonly RestoreItem[],
  work: RestoreWork | undefined,
  options: RestoreOptions,
  limit: ReturnType<typeof pLimit>,
): Promise<RestoreResult[]> {
  const pending = items.filter((i) => i.action === 'restore' || i.action === 'overwrite');
  const settled = items
    .filter((i) => !pending.includes(i))
    .map((i): RestoreResult => ({ ...i, outcome: outcomeOfAction(i.action) }));
  if (pending.length === 0) return settled;
  if (!work) {
    return [
      ...settled,
      ...pending.map((i) => ({ ...i, outcome: 'failed' as const, reason: 'no verified bytes were planned' })),
    ];
  }
  const repo = work.repository;
  try {
    for (const m of work.before) await limit(() => put(client, repo, m.digest, m));
  } catch (err) {
    const reason = putProblem(err, 'a child of the index');
    return [...settled, ...pending.map((i) => ({ ...i, outcome: 'failed' as const, reason }))];
  }
  const tags = await Promise.all(
    pending.map((i) =>
      limit(async (): Promise<RestoreResult> => {
        try {
          // Re-read right before the PUT: a push since the plan wins, unless forced.
          const now = await tagState(client, repo, i.tag, i.digest);
          if (now.state === 'at-digest') return { ...i, outcome: 'already' };
          if (now.state === 'moved' && !(options.force ?? false)) {
            return {
              ...i,
              action: 'moved',
              current: now.current,
              outcome: 'skipped',
              reason: `now points at ${now.current} (pushed while restoring): left alone; --force puts it back over that`,
            };
          }
          await put(client, repo, i.tag, work);
          return { ...i, outcome: 'restored' };
        } catch (err) {
          return { ...i, outcome: 'failed', reason: putProblem(err, 'the tag') };
        }
      }),
    ),
  );
  // Referrers last: their subject is there again. One that fails does not undo the tags.
  const referrerFailures: string[] = [];
  for (const m of work.after) {
    try {
      await limit(() => put(client, repo, m.digest, m));
    } catch (err) {
      referrerFailures.push(`${m.digest}: ${putProblem(err, 'a referrer')}`);
    }
  }
  const withReferrers =
    referrerFailures.length === 0
      ? tags
      : tags.map((t) =>
          t.outcome === 'restored'
            ? { ...t, reason: `restored, but not its referrer ${referrerFailures.join('; ')}` }
            : t,
        );
  return [...settled, ...withReferrers];
}

async function put(
  client: RestoreClient,
  repo: string,
  reference: string,
  m: VerifiedManifest,
): Promise<void> {
  const stored = await client.putManifest(repo, reference, m.mediaType, m.bytes);
  if (stored !== m.digest) {
    throw new RegistryError(`PUT ${repo}:${reference} stored ${stored}, not the recorded ${m.digest}`);
  }
}

function putProblem(err: unknown, what: string): string {
  const code = err instanceof RegistryError ? err.details.code : undefined;
  if (code === 'MANIFEST_BLOB_UNKNOWN' || code === 'BLOB_UNKNOWN' || code === 'MANIFEST_UNKNOWN') {
    return (
      `the registry refused to put back ${what} (${code}): something it references was swept by garbage-collect ` +
      'since the restore was planned. Push the image again from where it was built'
    );
  }
  return `putting back ${what} failed: ${errorMessage(err)}`;
}

/** The report as text: one line per tag with what happened, then the counts. */
export function formatRestore(report: RestoreReport, where: string, selection: RestoreSelection): string {
  const verb: Record<RestoreOutcome, string> = report.dryRun
    ? { restored: 'would restore', already: 'in place', skipped: 'skip', failed: 'cannot' }
    : { restored: 'restored', already: 'in place', skipped: 'skipped', failed: 'failed' };
  const width = Math.max(...Object.values(verb).map((v) => v.length));
  const lines = [
    `Restore of ${describeSelection(selection)} on ${report.registry}, from the journal ${where}:`,
    ...report.results.map((r) => {
      const head = `  ${verb[r.outcome].padEnd(width)}  ${r.repository}:${r.tag} → ${r.digest}`;
      const when = `removed ${r.untaggedAt} by run ${r.runId}`;
      return `${head}  (${when})${r.reason ? `\n  ${' '.repeat(width)}  ${r.reason}` : ''}`;
    }),
  ];
  const counts = [
    `${report.restored} ${report.dryRun ? 'to restore' : 'restored'}`,
    `${report.already} already in place`,
    `${report.skipped} skipped`,
    `${report.failed} failed`,
  ];
  lines.push(`${report.dryRun ? 'Dry run, nothing was written: ' : ''}${counts.join(', ')}.`);
  return lines.join('\n') + '\n';
}
