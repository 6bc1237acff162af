// The narrow interfaces the pure core talks through. Adapters (undici, AWS SDK, local shell) implement
// them; the Lambda handler and the CLI wire them. The core never imports undici or the AWS SDK.
/** A manifest as the registry served it. */
export interface FetchedManifest {
  /** Docker-Content-Digest (or the sha256 of the body when the header is absent). */
  readonly digest: string;
  /** The Content-Type the registry answered with. */
  readonly mediaType: string;
  readonly body: Uint8Array;
}

/** What the delete probe learned about the registry. */
export interface ProbeResult {
  /** Deleting manifests by digest works (probe DELETE of sha256:000…0 answered 404). */
  readonly deletesEnabled: boolean;
  /** Why deletes do not work, with the fix, when deletesEnabled is false. */
  readonly problem?: string;
  /** DELETE /manifests/<tag> untags (distribution v3+). On 2.8 a placeholder manifest is used instead. */
  readonly tagDelete: boolean;
}

export type DeleteOutcome = 'deleted' | 'not-found';

export { DEFAULT_CONCURRENCY } from './contract.ts';

export interface RegistryClient {
  /** Base URL, e.g. https://registry.internal:5000 (no trailing slash). */
  readonly baseUrl: string;
  /** Every repository in the catalog, following pagination. Order as served. */
  listRepositories(): Promise<string[]>;
  /** Every tag of a repository, following pagination, sorted. `null`, `[]` and 404 NAME_UNKNOWN are `[]`. */
  listTags(repository: string): Promise<string[]>;
  /** GET a manifest by tag or digest with all four Accept types. `null` on 404 MANIFEST_UNKNOWN. */
  getManifest(repository: string, reference: string): Promise<FetchedManifest | null>;
  /** HEAD a manifest by tag or digest; returns the digest, or `null` on 404. */
  headManifest(repository: string, reference: string): Promise<string | null>;
  /** GET a blob (used for image configs). */
  getBlob(repository: string, digest: string): Promise<Uint8Array>;
  /** HEAD a blob: true when the registry serves it (used to verify kept images after GC). */
  headBlob(repository: string, digest: string): Promise<boolean>;
  /** DELETE a manifest by digest (or by tag on v3). 404 is 'not-found', not an error. */
  deleteManifest(repository: string, reference: string): Promise<DeleteOutcome>;
  /** PUT a manifest under a reference; returns the stored digest. */
  putManifest(repository: string, reference: string, mediaType: string, body: Uint8Array): Promise<string>;
  /** Find out whether deletes work (and whether tag deletes do) without changing anything. */
  probe(repository: string): Promise<ProbeResult>;
}

/**
 * Runs the janitor's GC script on the registry host with named parameters, each of which reaches the script as the
 * environment variable `SSM_<name>` (SSM Run Command with the janitor's own document, or a local shell). The
 * caller chooses values, never the script.
 */
export interface CommandRunner {
  run(
    parameters: Readonly<Record<string, string>>,
    options?: { timeoutSeconds?: number },
  ): Promise<CommandResult>;
}

export interface CommandResult {
  /** 'Success' | 'Failed' | 'TimedOut' | 'Cancelled' | 'InProgress' (still running when we had to stop waiting). */
  readonly status: 'Success' | 'Failed' | 'TimedOut' | 'Cancelled' | 'InProgress';
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** SSM command id, when run through SSM. */
  readonly commandId?: string;
}

/**
 * What a scan remembers between runs: only facts that cost a read beyond the manifest itself, an image config's
 * `created` (configs are immutable by digest). Everything else comes from the manifest fetched in the run, so a
 * cache saves reads but cannot change what the scan sees of a manifest; the stores that keep it (a KMS-signed
 * S3 object, a file only its owner can write) make sure this one fact was written by the janitor.
 */
export interface ManifestCache {
  /** The `created` of config `configDigest` (null: it has none), or undefined when not known. */
  getConfigCreated(configDigest: string): string | null | undefined;
  setConfigCreated(configDigest: string, created: string | null): void;
}
