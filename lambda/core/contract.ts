// The function's contract, written once: the environment variables the stack sets and the function reads, their
// defaults, the rules their values follow, the GC modes, the manifest media types and the metric names.
// Pure (no undici, no AWS SDK, no CDK), so the construct can check a stack at synth time without loading an adapter.
import { ConfigError } from './errors.ts';
import { S3_STORAGE_USAGE, s3StorageUrlProblem, type S3StorageLocation } from './history.ts';

/** Every environment variable of the function. The construct sets them; lambda/config.ts reads them. */
export const ENV = {
  registryUrl: 'REGISTRY_URL',
  instanceId: 'GC_INSTANCE_ID',
  instanceTag: 'GC_INSTANCE_TAG',
  documentName: 'GC_DOCUMENT_NAME',
  containerName: 'GC_CONTAINER_NAME',
  configPath: 'GC_CONFIG_PATH',
  gcMode: 'GC_MODE',
  deleteUntagged: 'GC_DELETE_UNTAGGED',
  gcLogGroup: 'GC_LOG_GROUP',
  gcTimeoutSeconds: 'GC_TIMEOUT_SECONDS',
  policy: 'RETENTION_POLICY',
  dryRun: 'DRY_RUN',
  allowManualApply: 'ALLOW_MANUAL_APPLY',
  maxDeleteFraction: 'MAX_DELETE_FRACTION',
  credentialsParameter: 'CREDENTIALS_PARAMETER',
  caParameter: 'CA_PARAMETER',
  insecureTls: 'INSECURE_TLS',
  allowInsecureHttp: 'ALLOW_INSECURE_HTTP',
  tokenRealmHosts: 'TOKEN_REALM_HOSTS',
  concurrency: 'CONCURRENCY',
  maxListPages: 'MAX_LIST_PAGES',
  maxListEntries: 'MAX_LIST_ENTRIES',
  cacheBucket: 'CACHE_BUCKET',
  cacheHmacKeyId: 'CACHE_HMAC_KEY_ID',
  reportsBucket: 'REPORTS_BUCKET',
  reportsPrefix: 'REPORTS_PREFIX',
  storage: 'HISTORY_STORAGE',
  undoWindowHours: 'UNDO_WINDOW_HOURS',
  listingBucket: 'HISTORY_LISTING_BUCKET',
  serviceName: 'POWERTOOLS_SERVICE_NAME',
  metricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];

/** Variables that would put a registry secret in the function's configuration, where anyone with read access sees it. */
export const SECRET_VARIABLES: readonly string[] = [
  'REGISTRY_PASSWORD',
  'REGISTRY_USERNAME',
  'REGISTRY_USER',
  'REGISTRY_CREDENTIALS',
];

// ---- Defaults ----

/** distribution's repository path component (reference/regexp.go): lower-case alphanumerics joined by `.`, `_`, `__` or dashes. */
export const REPOSITORY_PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
/** The longest repository name distribution accepts. */
export const MAX_REPOSITORY_NAME = 255;
const REPOSITORY_NAME = new RegExp(`^${REPOSITORY_PATH_COMPONENT}(?:/${REPOSITORY_PATH_COMPONENT})*$`);

/** Whether `name` is a repository name (no domain) distribution can hold: path components, 255 characters at most. */
export function isRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_REPOSITORY_NAME && REPOSITORY_NAME.test(name);
}

/** distribution's tag grammar (reference/regexp.go): a word character, then up to 127 of word characters, `.` and `-`. */
export const TAG_PATTERN = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const TAG_NAME = new RegExp(`^${TAG_PATTERN}$`);

/** Whether `tag` is a tag distribution accepts. */
export function isTagName(tag: string): boolean {
  return TAG_NAME.test(tag);
}

export const DEFAULT_CONTAINER_NAME = 'registry';
export const DEFAULT_GC_TIMEOUT_SECONDS = 3600;
/** SSM Run Command's largest execution timeout. */
export const MAX_GC_TIMEOUT_SECONDS = 172_800;
/** Delete guard: a run that would delete more than this share of a registry's tags stops instead. */
export const DEFAULT_MAX_DELETE_FRACTION = 0.5;
/** Requests in flight (and connections) a registry client allows by default: 64 measured best with `npm run bench` (32: 1.41x). */
export const DEFAULT_CONCURRENCY = 64;
/** The most requests in flight the function takes (CONCURRENCY). */
export const MAX_CONCURRENCY = 1024;
/** A fresh deploy only reports; a real run is a deliberate choice. */
export const DEFAULT_DRY_RUN = true;
/** A manual invoke may not turn a dry-run stack into a real run unless the stack says so. */
export const DEFAULT_ALLOW_MANUAL_APPLY = false;
/** When the scheduled run starts, in UTC: nightly at 03:00 (`cron(0 3 * * ? *)`). */
export const DEFAULT_SCHEDULE = { minute: '0', hour: '3' } as const;
/** Where in the bucket the function keeps its manifest cache. */
export const MANIFEST_CACHE_PREFIX = 'manifest-cache/';
/** Days a manifest-cache object lives; manifests are immutable, so this only bounds the cache's size. */
export const CACHE_EXPIRATION_DAYS = 30;
/**
 * Where in the bucket the function keeps its journal (`journal/<registry host>.json`): what a run is about to
 * delete, so the next one finishes what an interrupted one started. Rewritten by every real run; no expiry.
 */
export const JOURNAL_PREFIX = 'journal/';
/** Where in the bucket the function writes each run's HTML report and JSON plan (`reports/<date>/…`). */
export const DEFAULT_REPORTS_PREFIX = 'reports/';
/** Days a run's report stays in the bucket. */
export const REPORTS_EXPIRATION_DAYS = 90;

// ---- Two-phase apply: untag now, reclaim later ----

/**
 * With a storage listing, apply removes the tags the plan deletes instead of deleting their manifests; a later
 * run's sweep deletes a manifest so untagged once this many hours have passed (still untagged, not pushed again),
 * and until then `registry-janitor restore` brings it back. 0: the sweep runs in the same run, right after the
 * untagging, with the same checks. Construct prop and context key `undoWindowHours`, CLI `--undo-window-hours`.
 */
export const DEFAULT_UNDO_WINDOW_HOURS = 24;
/** The longest undo window taken: a year (the journal holds every untagged manifest's bytes until its sweep). */
export const MAX_UNDO_WINDOW_HOURS = 8760;
export const UNDO_WINDOW_FORM = `a whole number of hours from 0 to ${MAX_UNDO_WINDOW_HOURS}, e.g. ${DEFAULT_UNDO_WINDOW_HOURS}`;

/** The undo window from text (a whole number of hours), or undefined when it is not one. */
export function parseUndoWindowHours(text: string): number | undefined {
  return parseWhole(text, 0, MAX_UNDO_WINDOW_HOURS);
}

// ---- Untagged history: where the function lists it ----

/**
 * The construct's `storage` setting (HISTORY_STORAGE in the function), written once:
 * - `container` (the default): the registry's filesystem storage, listed read-only inside the registry container on
 *   the host through the janitor's SSM document (`find` and `stat` there; gzip'd back to the construct's bucket);
 * - `s3://BUCKET/ROOTDIRECTORY`: the registry's S3 storage, listed with ListObjectsV2;
 * - `none`: no listing; untagged history is left alone.
 */
export const STORAGE_CONTAINER = 'container';
export const STORAGE_NONE = 'none';
export const DEFAULT_STORAGE = STORAGE_CONTAINER;
export type StorageSetting =
  | { readonly kind: 'container' }
  | { readonly kind: 's3'; readonly location: S3StorageLocation }
  | { readonly kind: 'none' };
export const STORAGE_FORM =
  `${STORAGE_CONTAINER} (the default: filesystem storage, listed inside the registry container over SSM), ` +
  `s3://BUCKET/ROOTDIRECTORY (the S3 driver's bucket and rootdirectory) or ${STORAGE_NONE} (no listing)`;

/** The `storage` setting from text; what is wrong with it, phrased to follow the value, otherwise. */
export function parseStorageSetting(
  text: string,
): { readonly setting: StorageSetting } | { readonly problem: string } {
  const value = text.trim();
  if (value === STORAGE_CONTAINER) return { setting: { kind: 'container' } };
  if (value === STORAGE_NONE) return { setting: { kind: 'none' } };
  if (/^s3:/i.test(value)) {
    const parsed = s3StorageUrlProblem(value);
    return 'problem' in parsed
      ? { problem: `${parsed.problem}; ${S3_STORAGE_USAGE}` }
      : { setting: { kind: 's3', location: parsed.location } };
  }
  return { problem: `is not one of ${STORAGE_FORM}` };
}

/** Where in the construct's bucket the registry host uploads each container listing (gzip'd), one key per run. */
export const HISTORY_LISTING_PREFIX = 'history-listing/';
/** Days a listing stays in the bucket: it is read once, by the run that asked for it. */
export const HISTORY_LISTING_EXPIRATION_DAYS = 1;
/** Seconds the presigned PUT URL the host uploads the listing with stays valid. */
export const HISTORY_LISTING_URL_SECONDS = 600;
/** Seconds the listing command may run on the host. */
export const HISTORY_LISTING_TIMEOUT_SECONDS = 600;
/**
 * The SSM document's allowedPattern for the upload URL: empty (garbage-collect) or an http(s) URL of characters
 * that need no quoting (a presigned S3 URL is percent-encoded), at most 4096.
 */
export const UPLOAD_URL_PARAMETER_PATTERN =
  "^(https?://[A-Za-z0-9.:\\[\\]-]+/[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]{0,4000})?$";
/** What the janitor's SSM document runs: garbage-collect, or the read-only listing of untagged history. */
export const SCRIPT_ACTIONS = ['gc', 'list'] as const;
export type ScriptAction = (typeof SCRIPT_ACTIONS)[number];

// ---- Garbage-collect modes ----

/**
 * How garbage-collect keeps pushes out while it runs:
 * - `readonly`: a stand-in container serves pulls (pushes get 405) while GC runs; falls back to `offline` when the
 *   stand-in cannot start.
 * - `offline`: the registry is stopped while a one-off container runs GC.
 * - `online`: GC runs in the running registry; unsafe while anyone pushes (distribution#3045).
 */
export const GC_MODES = ['readonly', 'offline', 'online'] as const;
export type GcMode = (typeof GC_MODES)[number];
export const DEFAULT_GC_MODE: GcMode = 'readonly';

export function isGcMode(value: unknown): value is GcMode {
  return typeof value === 'string' && (GC_MODES as readonly string[]).includes(value);
}

// ---- Metrics ----

/** CloudWatch namespace of the function's EMF metrics (POWERTOOLS_METRICS_NAMESPACE). */
export const METRIC_NAMESPACE = 'RegistryJanitor';
/** Default `service` dimension of the metrics and the logger's service name (POWERTOOLS_SERVICE_NAME). */
export const DEFAULT_SERVICE_NAME = 'registry-janitor';
/** Metric names (EMF, namespace METRIC_NAMESPACE, dimension `service`); the construct's alarms and dashboard use them. */
export const METRICS = {
  tagsDeleted: 'TagsDeleted',
  manifestsDeleted: 'ManifestsDeleted',
  bytesFreed: 'BytesFreed',
  gcDuration: 'GcDurationSeconds',
  errors: 'Errors',
  verifyFailures: 'VerifyFailures',
  gcFailures: 'GcFailures',
  runDuration: 'RunDurationSeconds',
  /**
   * Untagged history, apart from the tags (published only when a storage listing is configured; ManifestsDeleted
   * and BytesFreed include it): untagged manifests the plan deletes (dry runs too), deleted, whose DELETE failed,
   * and the plan's estimate of the bytes they free beyond the tags' deletions (for repositories whose deletes all
   * went through).
   */
  untaggedPlanned: 'UntaggedManifestsPlanned',
  untaggedDeleted: 'UntaggedManifestsDeleted',
  untaggedFailures: 'UntaggedDeleteFailures',
  untaggedBytesFreed: 'UntaggedBytesFreed',
  /** 1 when the storage listing failed or stopped part-way (no untagged manifest is deleted that run), else 0. */
  historyListingFailures: 'HistoryListingFailures',
  /**
   * Two-phase apply (published when a storage listing is configured): manifests untagged tonight (restorable for
   * the undo window), the estimated bytes they hold (reclaimed after the window), and manifests an earlier run
   * untagged that this run's sweep deleted (their bytes are in BytesFreed).
   */
  manifestsUntagged: 'ManifestsUntagged',
  bytesPending: 'BytesPendingSweep',
  manifestsSwept: 'ManifestsSwept',
} as const;

// ---- Manifest media types ----

export const MEDIA_TYPES = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  schema1: 'application/vnd.docker.distribution.manifest.v1+json',
} as const;

/** Legacy schema1 types, asked for so 2.8 serves such manifests as stored instead of converting them. */
export const SCHEMA1_MEDIA_TYPES: readonly string[] = [MEDIA_TYPES.schema1Signed, MEDIA_TYPES.schema1];

/**
 * Every manifest type we ask for (the Accept header) and accept in an answer. The four modern ones must be named
 * exactly, or distribution converts or filters (REGISTRY-FACTS §2).
 */
export const MANIFEST_ACCEPT: readonly string[] = [
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.ociIndex,
  ...SCHEMA1_MEDIA_TYPES,
];

// ---- Rules ----

export type RegistryUrlProblem = {
  readonly kind: 'not-url' | 'scheme' | 'credentials' | 'path';
  readonly message: string;
};

/**
 * The registry's base URL: http(s), no credentials, no path (trailing slashes aside), query or fragment.
 * Returns what is wrong, phrased to follow the value's name (`REGISTRY_URL="…" <message>`), or undefined.
 * A URL with credentials is never echoed back: the message says so without repeating the password.
 */
export function registryUrlProblem(text: string): RegistryUrlProblem | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return {
      kind: 'not-url',
      message: 'is not a URL: give the registry base URL, e.g. https://registry.internal:5000',
    };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { kind: 'scheme', message: 'must start with https:// or http://' };
  }
  if (url.username !== '' || url.password !== '') {
    return { kind: 'credentials', message: 'must not contain credentials' };
  }
  if (url.pathname.replace(/\/+$/, '') !== '' || url.search !== '' || url.hash !== '') {
    return {
      kind: 'path',
      message: `must be the registry root without a path or query (the API lives at /v2/), e.g. ${url.origin}`,
    };
  }
  return undefined;
}

/** The one spelling of a valid registry URL: its origin (scheme://host[:port], lower-case, default port dropped). */
export function normalizeRegistryUrl(text: string): string {
  return new URL(text).origin;
}

/**
 * EC2 instance ids are `i-` and 8 hex digits (before 2016) or 17 (since); hybrid managed nodes are `mi-` and 17.
 * Nothing else names a host SSM can run a command on.
 */
export const INSTANCE_ID = /^(i-[0-9a-f]{8}|i-[0-9a-f]{17}|mi-[0-9a-f]{17})$/;
export const INSTANCE_ID_FORM = 'an instance id like i-0123456789abcdef0 (or mi-… for a hybrid node)';

export function isInstanceId(value: string): boolean {
  return INSTANCE_ID.test(value);
}

/** The registry host: one instance id, or an EC2 tag that must match exactly one managed instance. */
export type SsmTarget =
  { readonly instanceId: string } | { readonly tagKey: string; readonly tagValue: string };

/**
 * Parse an EC2 tag given as `Key=Value` (a leading `tag:` is accepted). The value may contain `=`.
 * @param source where the text came from, for the error message (e.g. the variable name).
 */
export function parseInstanceTag(
  text: string,
  source = 'instance tag',
): { tagKey: string; tagValue: string } {
  const trimmed = text.trim();
  const eq = trimmed.indexOf('=');
  const key = (eq < 0 ? '' : trimmed.slice(0, eq).trim()).replace(/^tag:/, '');
  const value = eq < 0 ? '' : trimmed.slice(eq + 1).trim();
  if (!key || !value) {
    throw new ConfigError(
      `${source} "${text}" is not Key=Value: give the EC2 tag of the registry host, e.g. Role=docker-registry.`,
    );
  }
  if (key.length > 128 || value.length > 256) {
    throw new ConfigError(
      `${source} "${text}" is too long: EC2 tag keys have at most 128 characters, values 256.`,
    );
  }
  return { tagKey: key, tagValue: value };
}

/**
 * Docker's container name rule (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`, so at least two characters: `docker run --name a`
 * is refused), capped at 200 because the name reaches a root shell on the host.
 */
export const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,199}$/;
export const CONTAINER_NAME_FORM =
  '2-200 letters, digits, "_", "." or "-", starting with a letter or digit (as in `docker ps --format {{.Names}}`)';

/**
 * The registry's config file inside the container, as the function and the SSM document take it: an absolute path
 * of letters, digits and `_ . / -`, at most 1024 characters.
 */
const CONFIG_PATH_BODY = '/[A-Za-z0-9._/-]{1,1023}';
export const CONFIG_PATH = new RegExp(`^${CONFIG_PATH_BODY}$`);
export const CONFIG_PATH_FORM =
  'an absolute path of letters, digits and _ . / - (at most 1024), e.g. /etc/docker/registry/config.yml';
/** The SSM document's allowedPattern: CONFIG_PATH, or empty (the script finds the file the container started with). */
export const CONFIG_PATH_PARAMETER_PATTERN = `^(${CONFIG_PATH_BODY})?$`;

/** An SSM document name (CreateDocument's rule). */
export const SSM_DOCUMENT_NAME = /^[a-zA-Z0-9_.-]{3,128}$/;

export const LOG_GROUP = /^[.\-_/#A-Za-z0-9]{1,512}$/;

/** An SSM parameter name (with or without a leading /) or its ARN. */
export const PARAMETER_NAME =
  /^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/[A-Za-z0-9_.\-/]+|\/?[A-Za-z0-9_.\-/]{1,2048})$/;

export const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** A key prefix in the bucket: segments of safe characters, each ending in `/` (e.g. `reports/`). */
export const BUCKET_PREFIX = /^([A-Za-z0-9!_.*'()-]+\/){1,16}$/;

/** A KMS key as GenerateMac/VerifyMac take it: key or alias ARN, key id, or alias name. */
export const KMS_KEY_ID =
  /^(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key|alias)\/[A-Za-z0-9/_-]+|[0-9a-f-]{36}|alias\/[A-Za-z0-9/_-]+)$/;

/** A host (optionally `:port`, IPv6 in brackets) that may serve the token realm besides the registry's own. */
export const REALM_HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;
export const REALM_HOST_FORM =
  'a host name: give it as host or host:port (e.g. auth.internal or auth.internal:5001), without a scheme or path';

/** A realm host in its one spelling (trimmed, lower-case), or undefined when it is not one. */
export function normalizeRealmHost(raw: string): string | undefined {
  const host = raw.trim().toLowerCase();
  return REALM_HOST.test(host) ? host : undefined;
}

/** TOKEN_REALM_HOSTS: comma-separated, blanks ignored. */
export function parseHostList(text: string): string[] {
  return text
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
}

/** A share from 0 to 1 as text (`0.5`, `.25`, `1`). */
export function parseFraction(text: string): number | undefined {
  const n = Number(text);
  return /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(text) && n >= 0 && n <= 1 ? n : undefined;
}

/** A whole number from min to max as text. */
export function parseWhole(text: string, min: number, max: number): number | undefined {
  const n = Number(text);
  return /^\s*\d+\s*$/.test(text) && n >= min && n <= max ? n : undefined;
}

/** `true` or `false` as text. */
export function parseBoolean(text: string): boolean | undefined {
  return text === 'true' ? true : text === 'false' ? false : undefined;
}

// ---- The Step Functions workflow ----

/** Where in the bucket the workflow's steps pass their data (`workflow-runs/<execution name>/…`), kept 7 days. */
export const WORKFLOW_RUNS_PREFIX = 'workflow-runs/';
export const WORKFLOW_RUNS_EXPIRATION_DAYS = 7;
/** The steps the workflow's function runs, one invocation each (the Map states' per batch). */
export const WORKFLOW_STEPS = ['probe', 'inventory', 'plan', 'apply', 'collect', 'verify', 'report'] as const;
export type WorkflowStepName = (typeof WORKFLOW_STEPS)[number];
/** A run id is the execution's name: what Step Functions allows in one (and nothing a key could escape with). */
export const WORKFLOW_RUN_ID = /^[A-Za-z0-9_-]{1,80}$/;
/** The memory a Lambda function may be given, in MB. */
export const LAMBDA_MEMORY_MB = { least: 128, most: 10_240 } as const;
/**
 * Batches of the inventory, apply and verify Map states: at most this many tags or repositories each. 5,000 tags
 * make a part of about 4 MB of JSON, which the plan step reads with little beside it (a 20,000-tag part, 17 MB,
 * took that step 40 MB higher at 101,000 tags).
 */
export const DEFAULT_BATCH_TAGS = 5_000;
export const DEFAULT_BATCH_REPOSITORIES = 500;
/** The largest batch sizes the construct accepts (a batch bigger than this would not fit one invocation). */
export const MAX_BATCH_TAGS = 200_000;
export const MAX_BATCH_REPOSITORIES = 10_000;
/**
 * Step Functions keeps at most 25,000 events in a Standard execution's history, and the Map states are inline:
 * each batch costs about 21 events (7 per iteration of the inventory, apply and verify Maps) and each poll of the
 * garbage-collect about 11 (Wait, Task, Pass, Choice). These caps keep the worst case under that with room for
 * retries: 400 batches (2,000,000 tags at the default batch size) and 1,000 polls, 8,400 + 11,000 events.
 */
export const MAX_WORKFLOW_BATCHES = 400;
/**
 * The workflow's steps that hold the whole run, not one batch: the plan step (every part, the plan and its page),
 * collect (every batch's deletions) and report (the whole plan and its page with the outcome).
 */
export const WHOLE_RUN_STEPS = ['plan', 'collect', 'report'] as const satisfies readonly WorkflowStepName[];
/**
 * Their memory by default: at 101,000 tags the plan step peaks at 240-252 MB, the report step at 210-216 MB and
 * collect at 173-187 MB (`npm run bench -- --mode workflow-memory`), so some 2 GB at 1,000,000.
 */
export const DEFAULT_WORKFLOW_WHOLE_RUN_MEMORY_MB = 3008;
export const MAX_GC_POLLS = 1000;
/** Kept beyond the GC timeout before the workflow stops waiting: delivery, and the registry's restart after it. */
export const GC_WAIT_MARGIN_SECONDS = 600;
/** The default wait between two looks at the garbage-collect command. */
export const DEFAULT_GC_POLL_SECONDS = 60;
/** Looks at the garbage-collect command the workflow makes at most: the GC timeout and the margin, polled. */
export const gcPollsFor = (gcTimeoutSeconds: number, pollSeconds: number): number =>
  Math.ceil((gcTimeoutSeconds + GC_WAIT_MARGIN_SECONDS) / pollSeconds);
/** The shortest poll that keeps the workflow within MAX_GC_POLLS looks over the GC timeout and the margin. */
export const leastGcPollSeconds = (gcTimeoutSeconds: number): number =>
  Math.ceil((gcTimeoutSeconds + GC_WAIT_MARGIN_SECONDS) / MAX_GC_POLLS);
/** The default poll: a minute, or longer where a minute would make more than MAX_GC_POLLS polls (12 h and more). */
export const defaultGcPollSeconds = (gcTimeoutSeconds: number): number =>
  Math.max(DEFAULT_GC_POLL_SECONDS, leastGcPollSeconds(gcTimeoutSeconds));
/** The workflow functions' own variables (the construct sets them from the workflow prop). */
export const WORKFLOW_ENV = {
  batchTags: 'BATCH_TAGS',
  batchRepositories: 'BATCH_REPOSITORIES',
  /** Seconds kept back at the end of an inventory or apply invocation (no new repository is started then). */
  deadlineMarginSeconds: 'DEADLINE_MARGIN_SECONDS',
} as const;
/** The default of WORKFLOW_ENV.deadlineMarginSeconds: a minute to write the batch's part. */
export const DEFAULT_DEADLINE_MARGIN_SECONDS = 60;
/** The error the state machine fails with when another execution is running. */
export const OVERLAP_ERROR = 'RegistryJanitor.ExecutionOverlap';
/** What the plan step says the run does next; the state machine's Choice goes by it. */
export const PLAN_OUTCOMES = {
  apply: 'apply',
  dryRun: 'dry-run',
  incomplete: 'incomplete',
  refused: 'refused',
} as const;
export type PlanOutcome = (typeof PLAN_OUTCOMES)[keyof typeof PLAN_OUTCOMES];
/** The errors an execution stops with when the plan is not applied (its cause is the plan's reason). */
export const PLAN_INCOMPLETE_ERROR = 'RegistryJanitor.PlanIncomplete';
export const DELETE_GUARD_ERROR = 'RegistryJanitor.DeleteGuard';
/** What the schedule starts: the single Lambda run, or the Step Functions workflow. */
export const ENGINES = ['lambda', 'workflow'] as const;
export type Engine = (typeof ENGINES)[number];
export const DEFAULT_ENGINE: Engine = 'lambda';
export const isEngine = (value: string): value is Engine => (ENGINES as readonly string[]).includes(value);
/** Iterations of the workflow's Map states at once (inline Map: Step Functions runs at most 40). */
export const DEFAULT_WORKFLOW_CONCURRENCY = 4;
export const MAX_WORKFLOW_CONCURRENCY = 40;
