// The data the engine passes between its stages: what the registry holds (inventory), and what to do
// about it (plan, report). Plain data: serialisable to JSON as is.

export type ManifestKind = 'image' | 'index' | 'artifact' | 'schema1';

export interface BlobRef {
  readonly digest: string;
  /** Bytes; 0 when the manifest does not say (schema1). */
  readonly size: number;
}

export interface ChildRef {
  readonly digest: string;
  readonly mediaType: string;
  /** e.g. linux/amd64, unknown/unknown */
  readonly platform?: string;
  /** BuildKit attestation manifests (vnd.docker.reference.type=attestation-manifest). */
  readonly attestation?: boolean;
}

/** What one manifest says, parsed once per digest. */
export interface ManifestInfo {
  readonly digest: string;
  readonly mediaType: string;
  readonly kind: ManifestKind;
  /** Size of the manifest document itself. */
  readonly size: number;
  /** The config blob, for images and artifacts. */
  readonly config?: BlobRef & { readonly mediaType: string };
  /** Layer blobs stored in the registry (foreign/non-distributable layers left out). */
  readonly layers: readonly BlobRef[];
  /** Children of an index / manifest list. */
  readonly children: readonly ChildRef[];
  /** OCI 1.1 `subject` digest, for referrers. */
  readonly subject?: string;
  /** `artifactType`, or the config media type for artifacts. */
  readonly artifactType?: string;
  /**
   * Creation time as found (RFC 3339 string), and where. For an index it is filled in by the scanner from
   * its newest child. Absent when the document and its config carry none.
   */
  readonly created?: string;
  readonly createdSource?: 'annotation' | 'config' | 'history' | 'children';
  /** An empty index registry-janitor itself pushed to remove a tag on 2.8, left by an interrupted run. */
  readonly placeholder?: boolean;
}

export interface TagRef {
  readonly tag: string;
  readonly digest: string;
}

/** A manifest revision as the registry's storage lists it: every manifest pushed into a repository has one. */
export interface Revision {
  readonly digest: string;
  /** When it was last pushed into this repository (the revision link's modification time), ISO 8601. */
  readonly pushedAt: string;
}

/** Where the untagged history came from, and whether this run may act on it. */
export interface HistoryStatus {
  /** e.g. `/var/lib/registry`, `s3://bucket/prefix`, `ssm:i-0123…` */
  readonly source: string;
  /** False when the listing failed or is partial: then no untagged manifest is deleted in that run. */
  readonly complete: boolean;
  /** Why it is not complete, with the fix. */
  readonly problem?: string;
}

export interface RepositoryInventory {
  readonly name: string;
  /** Sorted by tag. */
  readonly tags: readonly TagRef[];
  /**
   * Tags the registry lists whose manifest is gone (404): left behind when a delete failed halfway. Sorted;
   * absent when there are none.
   */
  readonly dangling?: readonly string[];
  /** Digests referenced by an index in this repository that the registry does not have (404). */
  readonly missing: readonly string[];
  /**
   * Subjects of referrer tags that exist in the repository but are not reachable from any tag (pushed by
   * digest). Their referrers are kept: we never judge what we cannot see.
   */
  readonly untaggedSubjects: readonly string[];
  /**
   * With a storage listing: every revision no tag points at directly (the children of tagged indexes
   * included), sorted by digest. Their manifests are in `Inventory.manifests`. Absent without a listing.
   */
  readonly untagged?: readonly Revision[];
  /** The journal's entries for this repository, as this run found them; absent without any. */
  readonly journal?: readonly JournalItem[];
}

/** A journal entry (core/journal.ts) as the scan found it in the registry. */
export interface JournalItem {
  readonly digest: string;
  /** When the entry was recorded (from the journal: untrusted, used only to narrow what goes). */
  readonly recordedAt: string;
  /** 'gone': the registry no longer has it; 'unread': reading it failed in this run. */
  readonly state: 'present' | 'gone' | 'unread';
  /** What had to go first (from the journal) that the registry still holds, or that could not be read. */
  readonly waitsFor: readonly string[];
  /**
   * Two-phase: a run untagged it at `recordedAt` instead of deleting it. The sweep deletes it only after the undo
   * window, while it is still untagged and was not pushed again since.
   */
  readonly untagged?: boolean;
}

/** What a run does about one journal entry: finish it (delete it now), drop it, or leave it for a later run. */
export interface JournalDecision {
  readonly digest: string;
  readonly outcome: 'finish' | 'drop' | 'wait';
  /** Why, e.g. `tag latest reaches it`, `already gone`. */
  readonly reason: string;
  /** 'finish' of what an earlier two-phase run untagged: the sweep (counted as ManifestsSwept). */
  readonly swept?: true;
}

export interface ScanProblem {
  readonly repository?: string;
  readonly reference?: string;
  readonly message: string;
}

export interface Inventory {
  readonly registry: string;
  /** Sorted by name. */
  readonly repositories: readonly RepositoryInventory[];
  /** Every manifest seen, keyed by digest (tagged ones and index children). */
  readonly manifests: ReadonlyMap<string, ManifestInfo>;
  /** Reads that failed after retries. Any entry makes a plan incomplete: nothing is deleted. */
  readonly errors: readonly ScanProblem[];
  /** Things worth knowing that do not stop a run. */
  readonly warnings: readonly ScanProblem[];
  /** The storage listing of untagged history; absent when none is configured. */
  readonly history?: HistoryStatus;
}

/** Why a tag is kept. */
export type KeepReason =
  | 'no-rule'
  | 'protected'
  | `newest:${number}`
  | 'younger-than-days'
  | `tag:${string}`
  | `tag-regex:${string}`
  | 'unknown-age'
  | 'subject-kept'
  | 'referrer-subject-untracked';

export interface KeptTag {
  readonly tag: string;
  readonly digest: string;
  readonly reasons: readonly KeepReason[];
  readonly created?: string;
}

export interface DeletedTag {
  readonly tag: string;
  readonly digest: string;
  /** 'manifest': goes with its manifest; 'tag-only': its digest is kept by another tag, only the tag goes. */
  readonly method: 'manifest' | 'tag-only';
  readonly created?: string;
  /** Referrer tags (sha256-<hex>, .sig/.att/.sbom) go because their subject goes. */
  readonly referrer?: boolean;
}

export interface ManifestDeletion {
  readonly digest: string;
  /**
   * Deletion order: roots (tagged), then children of deleted indexes, then referrers. `untagged`: history
   * (no tag points at it) judged by its push time. `leftover`: left by an interrupted run (the journal), and
   * garbage by the live registry's account.
   */
  readonly role: 'root' | 'child' | 'referrer' | 'untagged' | 'leftover';
  readonly kind: ManifestKind;
  /** Tags that point at it (deleted with it). */
  readonly tags: readonly string[];
  /**
   * Deletions in this repository that must succeed first: the indexes that reference it, or the subject it
   * refers to. If one of them fails, this one is skipped, so a failure never leaves a broken index behind.
   */
  readonly after: readonly string[];
  /**
   * Two-phase (a storage listing is configured): tonight only its tags are removed (none, for the children and
   * referrers that go with an untagged manifest); it is recorded in the journal, can be restored within the undo
   * window, and the sweep of a later run deletes it after. Absent: deleted by digest tonight.
   */
  readonly deferred?: true;
}

/** Why an untagged manifest stays, or goes. */
export type UntaggedReason =
  /** Goes: pushed more than deleteAfterDays ago and nothing that stays references it. */
  | 'expired'
  /** Stays: pushed within deleteAfterDays (a multi-arch push may be in progress). */
  | 'young'
  /** Stays: a manifest that stays references it (the platform image of a kept index). */
  | 'referenced'
  /** Stays: a referrer whose subject stays. */
  | 'subject-kept'
  /** Stays: a run untagged it (two-phase) and its undo window has not passed; the sweep takes it after. */
  | 'undo-window'
  /** Stays: the repository is protected, matches no rule, or its rule has no `untagged` block. */
  | 'protected'
  | 'no-rule'
  | 'no-untagged-rule';

export interface UntaggedDecision {
  readonly digest: string;
  readonly kind: ManifestKind;
  readonly pushedAt: string;
  readonly reason: UntaggedReason;
  /** For `referenced` and `subject-kept`: the kept tag (or else digest) that holds it. */
  readonly by?: string;
}

export interface RepositoryPlan {
  readonly name: string;
  /** Index of the policy rule that matched, or null when no rule matched. */
  readonly rule: number | null;
  readonly action: 'untouched' | 'protected' | 'cleaned';
  readonly kept: readonly KeptTag[];
  readonly deleteTags: readonly DeletedTag[];
  /** In execution order. */
  readonly deleteManifests: readonly ManifestDeletion[];
  /**
   * Listed tags whose manifest is already gone. They hold no image, so they are neither kept nor counted; a
   * cleaned repository has them removed, others leave them. Absent when there are none.
   */
  readonly dangling?: readonly string[];
  /** Untagged history, with a complete storage listing; absent without one. */
  readonly untagged?: {
    readonly deleted: readonly UntaggedDecision[];
    readonly kept: readonly UntaggedDecision[];
    /** Estimated bytes deleting `deleted` frees on top of what this repository's tag deletions free. */
    readonly bytesFreed: number;
  };
  /** What becomes of the journal's entries for this repository; absent when it has none. */
  readonly journal?: readonly JournalDecision[];
  /** Estimated bytes garbage-collect frees after tonight's deletes (the sweep of earlier runs included). */
  readonly bytesFreed: number;
  /** Two-phase: estimated bytes of what is untagged tonight, reclaimed after the undo window. */
  readonly bytesPending?: number;
  readonly warnings: readonly string[];
}

export interface PlanSummary {
  readonly repositories: number;
  readonly tags: number;
  readonly tagsKept: number;
  readonly tagsDeleted: number;
  readonly manifestsDeleted: number;
  readonly bytesFreed: number;
  /** tagsDeleted / tags (0 when there are no tags). */
  readonly deleteFraction: number;
  /**
   * Present only with a complete storage listing: the manifests the plan's repositories hold (tagged, reached
   * from tags, and untagged history), which the delete guard counts as well as tags.
   */
  readonly manifests?: number;
  /** Untagged manifests deleted and kept; present only with a complete storage listing. */
  readonly untaggedDeleted?: number;
  readonly untaggedKept?: number;
  /** The part of `bytesFreed` that deleting untagged history frees beyond the tags' deletions. */
  readonly untaggedBytesFreed?: number;
  /** Two-phase: manifests untagged tonight (and the children going with them), and their estimated bytes. */
  readonly manifestsPending?: number;
  readonly bytesPending?: number;
}

/** Two-phase apply: what the plan untags can be restored until `until`, then a later run's sweep deletes it. */
export interface UndoWindow {
  readonly hours: number;
  /** generatedAt + hours: the earliest a deletion this plan makes can no longer be undone (ISO 8601). */
  readonly until: string;
}

export interface Plan {
  readonly registry: string;
  readonly generatedAt: string;
  /** False when any read failed: such a plan is shown but never applied. */
  readonly complete: boolean;
  readonly errors: readonly ScanProblem[];
  readonly warnings: readonly ScanProblem[];
  readonly summary: PlanSummary;
  readonly repositories: readonly RepositoryPlan[];
  /** The storage listing of untagged history, as the inventory had it; absent when none is configured. */
  readonly history?: HistoryStatus;
  /** Two-phase: present when the plan untags instead of deleting (a storage listing is configured). */
  readonly undo?: UndoWindow;
}

export interface ReportEntry {
  readonly repository: string;
  /** What was acted on: a manifest (by digest), a tag alone, or the whole repository (when skipped). */
  readonly target: 'manifest' | 'tag' | 'repository';
  /** The digest, the tag, or `*`. */
  readonly reference: string;
  readonly tags?: readonly string[];
  /** 'untagged': two-phase, its tags were removed and it awaits the sweep (restorable until the report's `undo`). */
  readonly outcome: 'deleted' | 'already-gone' | 'untagged' | 'skipped' | 'failed';
  readonly reason?: string;
}

export interface Report {
  readonly registry: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly tagsDeleted: number;
  readonly manifestsDeleted: number;
  readonly bytesFreedEstimate: number;
  /**
   * Two-phase: manifests untagged (awaiting the sweep), the estimated bytes reclaimed after the window, and until
   * when restore brings them back (ISO 8601), and the run id its undo records carry (`restore --run ID`). Absent
   * when the run untagged nothing.
   */
  readonly undo?: {
    readonly manifests: number;
    readonly bytesPending: number;
    readonly undoUntil: string;
    readonly runId?: string;
  };
  readonly skippedRepositories: readonly { readonly name: string; readonly reason: string }[];
  readonly failures: readonly ReportEntry[];
  readonly entries: readonly ReportEntry[];
  /**
   * Why the run stopped before the end of its plan (a signal, the Lambda's time-out). What it did not start is
   * reported as skipped; what is not reported deleted was not. Absent when the plan was carried out to the end.
   */
  readonly stopped?: string;
}
