// Builds the inventory: every repository, tag and manifest the policy needs to judge, read through the
// RegistryClient port. Work per digest is done once: a manifest is parsed once, a config read once, however
// many tags or repositories share it. A read that fails is recorded, which makes any plan incomplete.
// Memory matters (100,000 tags must fit a small Lambda): manifest facts are built once in a compact form,
// repeated strings are shared, and nothing per read outlives the read.
import pLimit from 'p-limit';
import { errorMessage } from './errors.ts';
import {
  createdMillis,
  needsConfig,
  parseConfigCreated,
  parseManifest,
  referrerSubject,
} from './manifest.ts';
import { ManifestCompactor } from './compact.ts';
import type { HistoryListing, HistorySource } from './history.ts';
import { entriesByRepository, type JournalEntry } from './journal.ts';
import type {
  HistoryStatus,
  Inventory,
  JournalItem,
  ManifestInfo,
  RepositoryInventory,
  Revision,
  ScanProblem,
  TagRef,
} from './model.ts';
import { ruleFor, type Policy } from './policy.ts';
import { compileGlob } from './glob.ts';
import { noun, plural } from './plural.ts';
import type { FetchedManifest, ManifestCache, RegistryClient } from './ports.ts';

export interface ScanProgress {
  readonly repositoriesTotal: number;
  readonly repositoriesDone: number;
  readonly tagsSeen: number;
}

export interface ScanOptions {
  /** The policy decides which repositories need image ages (config reads); without it every one does. */
  readonly policy?: Policy;
  /** False: read no image age at all (a re-read for the live safety check needs what stays, not why). */
  readonly ages?: boolean;
  /** Only scan repositories matching one of these globs (narrows a run). */
  readonly repositories?: readonly string[];
  /** Repositories scanned at once (HTTP requests are bounded by the client). Default 16. */
  readonly repositoryConcurrency?: number;
  /**
   * Config `created` values learned on earlier runs, so those configs are not read again. Manifests are always
   * fetched and parsed: children, layers and subjects come from the registry's bytes, never from a cache.
   */
  readonly cache?: ManifestCache;
  /**
   * Resolve tags with HEAD, then GET by digest only for digests not known yet. Default false: a GET by tag is
   * one request whether the digest is known or not, and measured as fast as a keep-alive HEAD (manifests are
   * small); HEAD-first costs a second request for every new digest.
   */
  readonly headFirst?: boolean;
  readonly onProgress?: (progress: ScanProgress) => void;
  /**
   * A storage listing of every revision: with it, untagged history is read too (one GET per manifest not known
   * yet) and can be judged. Its failure only makes the history incomplete, never the inventory.
   */
  readonly history?: HistorySource;
  /**
   * Exactly these repositories, without listing the catalog (a workflow's inventory batch, whose names the
   * probe listed). `repositories` globs still narrow them.
   */
  readonly names?: readonly string[];
  /**
   * Stops the scan: once aborted, no repository not yet started is read; each is recorded as a failed read
   * (with the abort's reason), so the inventory is incomplete and no plan from it deletes anything.
   */
  readonly signal?: AbortSignal;
  /**
   * The journal's entries (what an interrupted run was about to delete): each is looked up in its repository,
   * with what had to go before it, so the planner can tell what is left over. A failed read leaves that entry
   * for a later run; it never makes the inventory incomplete.
   */
  readonly journal?: readonly JournalEntry[];
}

export async function scanRegistry(client: RegistryClient, options: ScanOptions = {}): Promise<Inventory> {
  return new Scanner(client, options).run();
}

class Scanner {
  private readonly manifests = new Map<string, ManifestInfo>();
  /** `created` of each config read (null when it has none), or the read in flight. */
  private readonly configCreated = new Map<string, string | null | Promise<string | null>>();
  /** Age reads in flight, by manifest digest (removed when settled). */
  private readonly ageReads = new Map<string, Promise<void>>();
  private readonly errors: ScanProblem[] = [];
  private readonly warnings: ScanProblem[] = [];
  private readonly compactor = new ManifestCompactor();
  private repositoriesTotal = 0;
  private repositoriesDone = 0;
  private tagsSeen = 0;
  /** Why the history is not complete; the first reason is kept. */
  private historyProblem: string | undefined;
  private readonly journal: Map<string, Map<string, JournalEntry>>;

  public constructor(
    private readonly client: RegistryClient,
    private readonly options: ScanOptions,
  ) {
    this.journal = entriesByRepository(options.journal ?? []);
  }

  public async run(): Promise<Inventory> {
    // The storage listing runs beside the catalog: it is a different read (the host's disk, or S3).
    const listing = this.listHistory();
    let names: string[];
    try {
      names = this.options.names ? [...this.options.names] : await this.client.listRepositories();
    } catch (err) {
      this.errors.push({ message: `listing repositories failed: ${errorMessage(err)}` });
      names = [];
    }
    const revisions = await listing;
    const filters = (this.options.repositories ?? []).map((g) => compileGlob(g, true));
    const selected = [...new Set(names)]
      .filter((n) => filters.length === 0 || filters.some((re) => re.test(n)))
      .sort(compareStrings);
    this.repositoriesTotal = selected.length;
    const limit = pLimit(this.options.repositoryConcurrency ?? 16);
    const repositories = await Promise.all(
      selected.map((name) =>
        limit(() => {
          const signal = this.options.signal;
          if (signal?.aborted) {
            this.errors.push({ repository: name, message: `not read: ${String(signal.reason)}` });
            return { name, tags: [], missing: [], untaggedSubjects: [] } satisfies RepositoryInventory;
          }
          return this.scanRepository(name, revisions ? (revisions.repositories.get(name) ?? []) : undefined);
        }),
      ),
    );
    this.deriveIndexAges();
    const cache = this.options.cache;
    if (cache) {
      for (const [config, created] of this.configCreated)
        if (!(created instanceof Promise)) cache.setConfigCreated(config, created);
    }
    const history: HistoryStatus | undefined = this.options.history
      ? this.historyProblem === undefined
        ? { source: this.options.history.source, complete: true }
        : { source: this.options.history.source, complete: false, problem: this.historyProblem }
      : undefined;
    return {
      registry: this.client.baseUrl,
      repositories: history?.complete === false ? repositories.map(withoutHistory) : repositories,
      manifests: this.manifests,
      errors: this.errors,
      warnings: this.warnings,
      ...(history ? { history } : {}),
    };
  }

  private async listHistory(): Promise<HistoryListing | undefined> {
    if (!this.options.history) return undefined;
    try {
      return await this.options.history.list();
    } catch (err) {
      this.historyProblem = errorMessage(err);
      return undefined;
    }
  }

  /**
   * The revisions no tag points at, each read once (a manifest already parsed from the tags costs
   * nothing). One that is gone since the listing is dropped; one that cannot be read makes the history
   * incomplete, so nothing untagged is judged this run.
   */
  private async readUntagged(
    name: string,
    revisions: readonly Revision[],
    tagged: ReadonlySet<string>,
  ): Promise<Revision[]> {
    const out: Revision[] = [];
    await Promise.all(
      revisions.map(async (r) => {
        if (tagged.has(r.digest)) return;
        try {
          if (await this.resolveDigest(name, r.digest, false, true)) out.push(r);
        } catch (err) {
          this.historyProblem ??= `reading untagged ${name}@${r.digest} failed: ${errorMessage(err)}`;
        }
      }),
    );
    return out.sort((a, b) => compareStrings(a.digest, b.digest));
  }

  /** Ages are needed only where a rule judges by age; protected and unmatched repositories skip config reads. */
  private needsAge(repository: string): boolean {
    if (this.options.ages === false) return false;
    if (!this.options.policy) return true;
    const rule = ruleFor(this.options.policy, repository);
    return (
      rule !== undefined &&
      !rule.protect &&
      (rule.keep.newest !== undefined || rule.keep.youngerThanDays !== undefined)
    );
  }

  private async scanRepository(name: string, revisions?: readonly Revision[]): Promise<RepositoryInventory> {
    const ageNeeded = this.needsAge(name);
    const present = new Set<string>();
    const missing = new Set<string>();
    const tags: TagRef[] = [];
    const dangling: string[] = [];
    let tagNames: string[] = [];
    try {
      tagNames = await this.client.listTags(name);
    } catch (err) {
      this.errors.push({ repository: name, message: `listing tags failed: ${errorMessage(err)}` });
    }
    this.tagsSeen += tagNames.length;

    await Promise.all(
      tagNames.map(async (tag) => {
        try {
          const info = await this.resolve(name, tag, ageNeeded);
          if (!info) {
            // Listed, yet its manifest is gone: a delete that failed halfway (2.8 can answer 500 after removing
            // the manifest) or one racing this scan. Recorded so the plan accounts for every listed tag.
            dangling.push(tag);
            return;
          }
          tags.push({ tag, digest: info.digest });
          present.add(info.digest);
        } catch (err) {
          this.errors.push({ repository: name, reference: tag, message: errorMessage(err) });
        }
      }),
    );

    // Expand indexes level by level: children must be known to judge and to delete them.
    let frontier = [...present];
    while (frontier.length > 0) {
      const next: string[] = [];
      await Promise.all(
        frontier.map(async (digest) => {
          const info = this.manifests.get(digest);
          if (!info) return;
          await Promise.all(
            info.children.map(async (child) => {
              if (present.has(child.digest) || missing.has(child.digest)) return;
              present.add(child.digest);
              try {
                const childInfo = await this.resolveDigest(
                  name,
                  child.digest,
                  ageNeeded && !child.attestation,
                );
                if (childInfo) next.push(child.digest);
                else {
                  present.delete(child.digest);
                  missing.add(child.digest);
                }
              } catch (err) {
                this.errors.push({ repository: name, reference: child.digest, message: errorMessage(err) });
              }
            }),
          );
        }),
      );
      frontier = next;
    }
    if (missing.size > 0) {
      this.warnings.push({
        repository: name,
        message: `${plural(missing.size, 'manifest')} referenced by an index ${noun(missing.size, 'is', 'are')} not in the registry (partial multi-platform push?): ${[...missing].sort(compareStrings).join(', ')}`,
      });
    }

    const untagged = revisions
      ? await this.readUntagged(name, revisions, new Set(tags.map((t) => t.digest)))
      : undefined;

    const journal = this.journal.get(name);
    const journalItems = journal ? await this.readJournal(name, journal, present) : undefined;

    // Referrer tags whose subject no tag reaches: is the subject there at all (pushed by digest)?
    const untaggedSubjects = new Set<string>();
    await Promise.all(
      tags.map(async ({ tag }) => {
        const subject = referrerSubject(tag);
        if (!subject || present.has(subject) || missing.has(subject)) return;
        try {
          if ((await this.client.headManifest(name, subject)) !== null) untaggedSubjects.add(subject);
        } catch (err) {
          this.errors.push({ repository: name, reference: subject, message: errorMessage(err) });
        }
      }),
    );

    this.repositoriesDone += 1;
    this.options.onProgress?.({
      repositoriesTotal: this.repositoriesTotal,
      repositoriesDone: this.repositoriesDone,
      tagsSeen: this.tagsSeen,
    });
    if (dangling.length > 0) {
      dangling.sort(compareStrings);
      this.warnings.push({
        repository: name,
        message:
          `${dangling.length === 1 ? '1 tag is listed but its' : `${dangling.length} tags are listed but their`} manifest is gone (a delete that failed halfway, or one ` +
          `racing this scan): ${dangling.slice(0, 10).join(', ')}${dangling.length > 10 ? ', …' : ''}`,
      });
    }
    return {
      name,
      tags: tags.sort((a, b) => compareStrings(a.tag, b.tag)),
      ...(dangling.length > 0 ? { dangling } : {}),
      missing: [...missing].sort(compareStrings),
      untaggedSubjects: [...untaggedSubjects].sort(compareStrings),
      ...(untagged ? { untagged } : {}),
      ...(journalItems ? { journal: journalItems } : {}),
    };
  }

  /**
   * Each journal entry of a repository, looked up (a GET for a manifest not read yet, so the planner knows what
   * it references), and what it had to wait for that is still there.
   */
  private async readJournal(
    name: string,
    entries: ReadonlyMap<string, JournalEntry>,
    present: ReadonlySet<string>,
  ): Promise<JournalItem[]> {
    const states = new Map<string, Promise<JournalItem['state']>>();
    const stateOf = (digest: string, read: boolean): Promise<JournalItem['state']> => {
      let state = states.get(digest);
      if (!state) {
        state = (async (): Promise<JournalItem['state']> => {
          if (present.has(digest)) return 'present';
          try {
            const there = read
              ? (await this.resolveDigest(name, digest, false)) !== null
              : (await this.client.headManifest(name, digest)) !== null;
            return there ? 'present' : 'gone';
          } catch (err) {
            this.warnings.push({
              repository: name,
              reference: digest,
              message: `reading a manifest the journal names failed (${errorMessage(err)}); it waits for a later run`,
            });
            return 'unread';
          }
        })();
        states.set(digest, state);
      }
      return state;
    };
    const items = await Promise.all(
      [...entries.values()].map(async (e): Promise<JournalItem> => {
        const state = await stateOf(e.digest, true);
        const waits: string[] = [];
        for (const a of e.after) if ((await stateOf(a, entries.has(a))) !== 'gone') waits.push(a);
        return {
          digest: e.digest,
          recordedAt: e.recordedAt,
          state,
          waitsFor: waits,
          ...(e.untag ? { untagged: true } : {}),
        };
      }),
    );
    return items.sort((a, b) => compareStrings(a.digest, b.digest));
  }

  /** Resolve a tag to its manifest: one GET per tag, or a HEAD plus a GET only for unknown digests. */
  private async resolve(repository: string, tag: string, ageNeeded: boolean): Promise<ManifestInfo | null> {
    if (this.options.headFirst) {
      const digest = await this.client.headManifest(repository, tag);
      return digest === null ? null : this.resolveDigest(repository, digest, ageNeeded, true);
    }
    const fetched = await this.client.getManifest(repository, tag);
    return fetched === null ? null : this.store(repository, fetched, ageNeeded);
  }

  /**
   * A manifest by digest. One parsed earlier in this run costs a HEAD (presence in this repository), unless
   * `known` says it is there; any other is fetched and parsed.
   */
  private async resolveDigest(
    repository: string,
    digest: string,
    ageNeeded: boolean,
    known = false,
  ): Promise<ManifestInfo | null> {
    const seen = this.manifests.get(digest);
    if (seen) {
      if (!known && (await this.client.headManifest(repository, digest)) === null) return null;
      await this.ensureAge(repository, digest, ageNeeded);
      return this.manifests.get(digest) ?? seen;
    }
    const fetched = await this.client.getManifest(repository, digest);
    if (fetched === null) return null;
    if (fetched.digest !== digest) {
      throw new Error(`asked for ${digest} but the registry served ${fetched.digest}`);
    }
    return this.store(repository, fetched, ageNeeded);
  }

  private async store(
    repository: string,
    fetched: FetchedManifest,
    ageNeeded: boolean,
  ): Promise<ManifestInfo> {
    if (!this.manifests.has(fetched.digest)) {
      const parsed = parseManifest(fetched.digest, fetched.mediaType, fetched.body);
      this.manifests.set(
        fetched.digest,
        this.compactor.compact(parsed, parsed.created, parsed.createdSource),
      );
    }
    await this.ensureAge(repository, fetched.digest, ageNeeded);
    return this.manifests.get(fetched.digest)!;
  }

  /** Read the config's `created` once per config digest, however many manifests or repositories share it. */
  private async ensureAge(repository: string, digest: string, ageNeeded: boolean): Promise<void> {
    const info = this.manifests.get(digest);
    if (!ageNeeded || !info || !needsConfig(info) || info.createdSource === 'config') return;
    const known = this.configCreated.get(info.config!.digest);
    if (known !== undefined && !(known instanceof Promise)) {
      this.setCreated(digest, known);
      return;
    }
    let pending = this.ageReads.get(digest);
    if (!pending) {
      pending = this.readAge(repository, info).finally(() => this.ageReads.delete(digest));
      this.ageReads.set(digest, pending);
    }
    await pending;
  }

  private async readAge(repository: string, info: ManifestInfo): Promise<void> {
    const configDigest = info.config!.digest;
    let read = this.configCreated.get(configDigest);
    if (read === undefined) {
      const cached = this.options.cache?.getConfigCreated(configDigest);
      if (cached !== undefined) {
        this.configCreated.set(configDigest, cached);
        this.setCreated(info.digest, cached);
        return;
      }
      const reading = this.client
        .getBlob(repository, configDigest)
        .then((body) => parseConfigCreated(body) ?? null);
      this.configCreated.set(configDigest, reading);
      // Keep the answer, not the promise; after a failure another repository sharing the config tries again.
      reading.then(
        (created) => {
          if (this.configCreated.get(configDigest) === reading) this.configCreated.set(configDigest, created);
        },
        () => {
          if (this.configCreated.get(configDigest) === reading) this.configCreated.delete(configDigest);
        },
      );
      read = reading;
    }
    let created: string | null;
    try {
      created = await read;
    } catch (err) {
      throw new Error(`reading config ${configDigest} of ${info.digest} failed: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    this.setCreated(info.digest, created);
  }

  /** The config's value wins: it is read only when the manifest's own annotation gave no usable time. */
  private setCreated(digest: string, created: string | null): void {
    const current = this.manifests.get(digest);
    if (created === null || !current || current.createdSource === 'config') return;
    this.manifests.set(digest, this.compactor.withAge(current, created, 'config'));
  }

  /** An index is as old as its newest child (attestations aside); its own annotation only as a fallback. */
  private deriveIndexAges(): void {
    const visiting = new Set<string>();
    const ageOf = (digest: string): number | undefined => {
      const info = this.manifests.get(digest);
      if (!info) return undefined;
      if (info.kind !== 'index') return createdMillis(info.created);
      if (info.createdSource === 'children') return createdMillis(info.created);
      if (visiting.has(digest)) return undefined;
      visiting.add(digest);
      let newest: number | undefined;
      let newestText: string | undefined;
      for (const child of info.children) {
        if (child.attestation) continue;
        const ms = ageOf(child.digest);
        if (ms !== undefined && (newest === undefined || ms > newest)) {
          newest = ms;
          newestText = new Date(ms).toISOString();
        }
      }
      visiting.delete(digest);
      if (newestText !== undefined) {
        this.manifests.set(digest, this.compactor.withAge(info, newestText, 'children'));
        return newest;
      }
      return createdMillis(info.created);
    };
    for (const [digest, info] of this.manifests) if (info.kind === 'index') ageOf(digest);
  }
}

function withoutHistory(repo: RepositoryInventory): RepositoryInventory {
  const { untagged: _untagged, ...rest } = repo;
  return rest;
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
