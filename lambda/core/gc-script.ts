// The GC script's inputs and outputs: checks the options and turns them into the named parameters the static
// script (lambda/gc/registry-gc.sh) reads as SSM_<name> variables, and reads its machine-readable output back.
// Pure: a CommandRunner (SSM with the janitor's document, or a local sh) runs the script.

import {
  CONTAINER_NAME,
  CONTAINER_NAME_FORM,
  DEFAULT_CONTAINER_NAME,
  DEFAULT_GC_MODE,
  GC_MODES,
  SSM_DOCUMENT_NAME,
  UPLOAD_URL_PARAMETER_PATTERN,
  isGcMode,
  type GcMode,
} from './contract.ts';
import { ConfigError } from './errors.ts';

export { CONTAINER_NAME, SSM_DOCUMENT_NAME };

export { GC_MODES, type GcMode };

export interface GcOptions {
  /** Name (or id) of the registry container. @default 'registry' */
  readonly containerName?: string;
  /**
   * Registry configuration inside the container. @default the `.yml`/`.yaml` file the container was started
   * with, else `/etc/distribution/config.yml` on distribution v3+, else `/etc/docker/registry/config.yml`
   */
  readonly configPath?: string;
  /** @default 'readonly' */
  readonly mode?: GcMode;
  /** Pass `--delete-untagged` (v3+ only; the script refuses on 2.8, where it breaks multi-arch images). @default false */
  readonly deleteUntagged?: boolean;
  /** Storage root inside the container, measured with `du` before and after. @default '/var/lib/registry' */
  readonly storagePath?: string;
  /** Directory on the host for the full GC log. @default '/var/log/registry-janitor' */
  readonly logDir?: string;
  /**
   * Lock file on the host that keeps two runs apart, in a directory the script's user owns with mode 0700 (created
   * so when missing; refused when it is a symlink, someone else's or open to others). @default '/run/registry-janitor/lock/gc.lock'
   */
  readonly lockPath?: string;
  /**
   * How long to wait for the lock before giving up with `lock-busy`. A few seconds cover the guardian of a run that
   * was just killed, which keeps the lock while it brings the registry back. @default 5
   */
  readonly lockWaitSeconds?: number;
  /** `--dry-run`: runs in the running registry without stopping or restarting it. @default false */
  readonly dryRun?: boolean;
}

/**
 * Defaults of the options the function chooses (they are the SSM document's parameters). The host's own settings
 * (storagePath, logDir, lockPath, lockWaitSeconds) have their defaults in the script, the one place they are used.
 */
export const GC_DEFAULTS = {
  containerName: DEFAULT_CONTAINER_NAME,
  mode: DEFAULT_GC_MODE,
} as const satisfies GcOptions;

/** Prefix of every line the script writes for a machine to read: `registry-janitor: key=value`. */
export const GC_LINE_PREFIX = 'registry-janitor: ';

/** Reasons the script gives for failing (`error_code=`), with the exit status it uses. */
export type GcErrorCode =
  | 'bad-parameter' // 2: a parameter the script itself refuses (or none arrived)
  | 'docker-missing' // 2
  | 'flock-missing' // 2
  | 'log-dir' // 2
  | 'lock-file' // 2
  | 'config-missing' // 2
  | 'refused' // 2: --delete-untagged on 2.8 or an unknown version
  | 'lock-busy' // 3
  | 'container-missing' // 4
  | 'container-not-running' // 4
  | 'helper-foreign' // 4: a container has the helper's name but not the janitor's label
  | 'engine-error' // 1 or 4
  | 'stop-failed' // 5
  | 'helper-failed' // 5
  | 'gc-failed' // 5
  | 'restore-failed' // 6: the registry could not be started again
  | 'listing-refused' // 2: the storage is not a filesystem, or its root is not one the script passes on
  | 'listing-failed' // 2 or 5: find, gzip or the upload failed, or no upload tool
  | 'interrupted'; // 129, 130, 143

export interface GcSummary {
  /** `ok`/`failed` from the script's last line; null when that line is missing (output cut off, script killed). */
  readonly status: 'ok' | 'failed' | null;
  readonly container: string | null;
  readonly modeRequested: GcMode | null;
  /** The mode GC actually ran in (`offline` after a read-only fallback; `online` for dry runs). */
  readonly modeUsed: GcMode | null;
  /** Read-only was asked for, but the stand-in could not start and the registry was stopped instead. */
  readonly fellBack: boolean;
  readonly dryRun: boolean | null;
  readonly deleteUntagged: boolean | null;
  /** As `registry --version` gave it, without a leading `v` (e.g. `2.8.2+ds1`); null when unknown. */
  readonly registryVersion: string | null;
  readonly configPath: string | null;
  readonly blobsMarked: number | null;
  readonly blobsEligible: number | null;
  readonly manifestsEligible: number | null;
  /** `du` of the storage root in the container, before and after (KiB precision). */
  readonly bytesBefore: number | null;
  readonly bytesAfter: number | null;
  readonly bytesFreed: number | null;
  /** The full log on the host. */
  readonly logFile: string | null;
  /** The last lines of garbage-collect's own output. */
  readonly tail: readonly string[];
  readonly warnings: readonly string[];
  /** The first failure reported (the cause), then any later one (e.g. restore-failed). Codes: GcErrorCode. */
  readonly errors: readonly { readonly code: string; readonly message: string }[];
  /** The first error's code, one of GcErrorCode. */
  readonly errorCode: string | null;
  readonly error: string | null;
  /** The registry container could not be started again: someone must act. */
  readonly restoreFailed: boolean;
  readonly exitStatus: number | null;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what is rejected
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function checkContainerName(value: unknown): string {
  if (typeof value !== 'string' || !CONTAINER_NAME.test(value)) {
    throw new ConfigError(
      `gc containerName ${JSON.stringify(value)} is not a container name: use ${CONTAINER_NAME_FORM}`,
    );
  }
  return value;
}

function checkPath(option: string, value: unknown, where: string): string {
  if (
    typeof value !== 'string' ||
    !value.startsWith('/') ||
    CONTROL_CHARS.test(value) ||
    value.length > 1024
  ) {
    throw new ConfigError(
      `gc ${option} ${JSON.stringify(value)} must be an absolute path ${where} (starting with "/", ` +
        `at most 1024 characters, no control characters)`,
    );
  }
  if (value.length > 1 && value.endsWith('/') && option !== 'logDir' && option !== 'storagePath') {
    throw new ConfigError(`gc ${option} ${JSON.stringify(value)} names a directory; give a file path`);
  }
  return value;
}

function checkFlag(option: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') {
    throw new ConfigError(`gc ${option} must be true or false, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkSeconds(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 86_400) {
    throw new ConfigError(
      `gc ${option} must be a whole number of seconds from 0 to 86400, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** The parameters the script takes, by name; each reaches it as the environment variable `SSM_<name>`. */
export type GcParameters = Readonly<Record<string, string>>;

/**
 * Checks the options and turns them into the script's parameters. Throws ConfigError naming the bad option.
 * `containerName`, `configPath`, `mode`, `dryRun` and `deleteUntagged` are always there (the SSM document declares
 * exactly these); the host's own settings only when given, since only a local run may choose them.
 */
export function gcParameters(options: GcOptions = {}): GcParameters {
  const mode: unknown = options.mode ?? GC_DEFAULTS.mode;
  if (!isGcMode(mode)) {
    throw new ConfigError(`gc mode ${JSON.stringify(mode)} is not one of ${GC_MODES.join(', ')}`);
  }
  const inContainer = 'inside the registry container';
  const onHost = 'on the registry host';
  return {
    containerName: checkContainerName(options.containerName ?? GC_DEFAULTS.containerName),
    configPath:
      options.configPath === undefined ? '' : checkPath('configPath', options.configPath, inContainer),
    mode,
    dryRun: String(checkFlag('dryRun', options.dryRun)),
    deleteUntagged: String(checkFlag('deleteUntagged', options.deleteUntagged)),
    ...(options.storagePath !== undefined
      ? { storagePath: checkPath('storagePath', options.storagePath, inContainer) }
      : {}),
    ...(options.logDir !== undefined ? { logDir: checkPath('logDir', options.logDir, onHost) } : {}),
    ...(options.lockPath !== undefined ? { lockPath: checkPath('lockPath', options.lockPath, onHost) } : {}),
    ...(options.lockWaitSeconds !== undefined
      ? { lockWaitSeconds: String(checkSeconds('lockWaitSeconds', options.lockWaitSeconds)) }
      : {}),
  };
}

const SUMMARY = /(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion/;

function numberOrNull(value: string | undefined): number | null {
  if (value === undefined || !/^\d+$/.test(value)) return null;
  return Number(value);
}

function modeOrNull(value: string | undefined): GcMode | null {
  return isGcMode(value) ? value : null;
}

function flagOrNull(value: string | undefined): boolean | null {
  if (value === '1') return true;
  if (value === '0') return false;
  return null;
}

/** Reads the script's `registry-janitor: key=value` lines; other lines are ignored. */
export function parseGcOutput(stdout: string): GcSummary {
  const values = new Map<string, string>();
  const tail: string[] = [];
  const warnings: string[] = [];
  const errorCodes: string[] = [];
  const errorMessages: string[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith(GC_LINE_PREFIX)) continue;
    const rest = line.slice(GC_LINE_PREFIX.length);
    const eq = rest.indexOf('=');
    if (eq <= 0) continue;
    const key = rest.slice(0, eq);
    const value = rest.slice(eq + 1);
    if (key === 'tail') tail.push(value);
    else if (key === 'warning') warnings.push(value);
    else if (key === 'error_code') errorCodes.push(value);
    else if (key === 'error') errorMessages.push(value);
    else values.set(key, value);
  }
  const summary = SUMMARY.exec(values.get('summary') ?? '');
  const version = values.get('version');
  const status = values.get('status');
  const bytesBefore = numberOrNull(values.get('bytes_before'));
  const bytesAfter = numberOrNull(values.get('bytes_after'));
  const modeRequested = modeOrNull(values.get('mode'));
  const modeUsed = modeOrNull(values.get('mode_used'));
  const errors = errorCodes.map((code, i) => ({ code, message: errorMessages[i] ?? '' }));
  return {
    status: status === 'ok' || status === 'failed' ? status : null,
    container: values.get('container') ?? null,
    modeRequested,
    modeUsed,
    fellBack: modeRequested === 'readonly' && modeUsed === 'offline',
    dryRun: flagOrNull(values.get('dry_run')),
    deleteUntagged: flagOrNull(values.get('delete_untagged')),
    registryVersion: version === undefined || version === 'unknown' ? null : version,
    configPath: values.get('config') ?? null,
    blobsMarked: summary ? Number(summary[1]) : null,
    blobsEligible: summary ? Number(summary[2]) : null,
    manifestsEligible: summary ? Number(summary[3]) : null,
    bytesBefore,
    bytesAfter,
    bytesFreed: bytesBefore !== null && bytesAfter !== null ? bytesBefore - bytesAfter : null,
    logFile: values.get('log') ?? null,
    tail,
    warnings,
    errors,
    errorCode: errors[0]?.code ?? null,
    error: errors[0]?.message ?? null,
    restoreFailed: errorCodes.includes('restore-failed'),
    exitStatus: numberOrNull(values.get('exit_status')) ?? (status === 'ok' ? 0 : null),
  };
}

/** The listing's options: which container, and the one URL its gzip'd listing is uploaded to. */
export interface ListingOptions {
  readonly containerName?: string;
  readonly configPath?: string;
  /** A presigned PUT URL for one key (the caller makes it; the host needs no AWS credentials). */
  readonly uploadUrl: string;
  /** Host settings, for local runs and tests only (see GcOptions). */
  readonly lockPath?: string;
  readonly logDir?: string;
  readonly lockWaitSeconds?: number;
}

const UPLOAD_URL = new RegExp(UPLOAD_URL_PARAMETER_PATTERN);

/** The script's parameters for the read-only listing (`action=list`). Throws ConfigError for a bad option. */
export function listingParameters(options: ListingOptions): GcParameters {
  if (
    typeof options.uploadUrl !== 'string' ||
    options.uploadUrl === '' ||
    !UPLOAD_URL.test(options.uploadUrl)
  ) {
    throw new ConfigError(
      'the listing upload URL must be an http(s) URL of unreserved and percent-encoded characters (a presigned ' +
        'S3 URL), at most 4096 characters',
    );
  }
  const { uploadUrl, ...rest } = options;
  return { ...gcParameters({ ...rest, mode: 'online' }), action: 'list', uploadUrl };
}

/** What the listing reported on stdout; the listing itself went to the upload URL. */
export interface ListingSummary {
  /** `ok`/`failed`, null when the last line is missing (output cut off, script killed). */
  readonly status: 'ok' | 'failed' | null;
  /** The storage root inside the container (`storage.filesystem.rootdirectory`). */
  readonly root: string | null;
  /** Lines in the listing (revision links found). */
  readonly count: number | null;
  /** Size of the gzip'd listing, and its SHA-256 in hex. */
  readonly bytes: number | null;
  readonly sha256: string | null;
  /** The first failure reported, with its code (GcErrorCode). */
  readonly errorCode: string | null;
  readonly error: string | null;
  readonly registryVersion: string | null;
}

export function parseListingOutput(stdout: string): ListingSummary {
  const gc = parseGcOutput(stdout);
  const values = new Map<string, string>();
  for (const raw of stdout.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith(`${GC_LINE_PREFIX}listing_`)) continue;
    const rest = line.slice(GC_LINE_PREFIX.length);
    const eq = rest.indexOf('=');
    if (eq > 0 && !values.has(rest.slice(0, eq))) values.set(rest.slice(0, eq), rest.slice(eq + 1));
  }
  const sha = values.get('listing_sha256');
  return {
    status: gc.status,
    root: values.get('listing_root') ?? null,
    count: numberOrNull(values.get('listing_count')),
    bytes: numberOrNull(values.get('listing_bytes')),
    sha256: sha !== undefined && /^[a-f0-9]{64}$/.test(sha) ? sha : null,
    errorCode: gc.errorCode,
    error: gc.error,
    registryVersion: gc.registryVersion,
  };
}
