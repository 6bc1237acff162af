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
  /** Deletion order: roots (tagged), then children of deleted indexes, then referrers. */
  readonly role: 'root' | 'child' | 'referrer';
  readonly kind: ManifestKind;
  /** Tags that point at it (deleted with it). */
  readonly tags: readonly string[];
  /**
   * Deletions in this repository that must succeed first: the indexes that reference it, or the subject it
   * refers to. If one of them fails, this one is skipped, so a failure never leaves a broken index behind.
   */
  readonly after: readonly string[];
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
  readonly bytesFreed: number;
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
}

export interface ReportEntry {
  readonly repository: string;
  /** What was acted on: a manifest (by digest), a tag alone, or the whole repository (when skipped). */
  readonly target: 'manifest' | 'tag' | 'repository';
  /** The digest, the tag, or `*`. */
  readonly reference: string;
  readonly tags?: readonly string[];
  readonly outcome: 'deleted' | 'already-gone' | 'skipped' | 'failed';
  readonly reason?: string;
}

export interface Report {
  readonly registry: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly tagsDeleted: number;
  readonly manifestsDeleted: number;
  readonly bytesFreedEstimate: number;
  readonly skippedRepositories: readonly { readonly name: string; readonly reason: string }[];
  readonly failures: readonly ReportEntry[];
  readonly entries: readonly ReportEntry[];
}
