// The Lambda's configuration: the environment the stack sets (the contract in core/contract.ts) and the optional
// manual-invoke payload, each parsed by one pure function that fails before any I/O with a message naming what to fix.
import { z } from 'zod';
import {
  BUCKET_NAME,
  BUCKET_PREFIX,
  CONFIG_PATH,
  CONFIG_PATH_FORM,
  CONTAINER_NAME,
  CONTAINER_NAME_FORM,
  DEFAULT_ALLOW_MANUAL_APPLY,
  DEFAULT_CONCURRENCY,
  DEFAULT_CONTAINER_NAME,
  DEFAULT_DRY_RUN,
  DEFAULT_GC_MODE,
  DEFAULT_GC_TIMEOUT_SECONDS,
  DEFAULT_MAX_DELETE_FRACTION,
  DEFAULT_REPORTS_PREFIX,
  DEFAULT_STORAGE,
  DEFAULT_UNDO_WINDOW_HOURS,
  ENV,
  GC_MODES,
  INSTANCE_ID_FORM,
  KMS_KEY_ID,
  LOG_GROUP,
  MAX_CONCURRENCY,
  MAX_GC_TIMEOUT_SECONDS,
  PARAMETER_NAME,
  REALM_HOST_FORM,
  SECRET_VARIABLES,
  SSM_DOCUMENT_NAME,
  STORAGE_NONE,
  UNDO_WINDOW_FORM,
  isGcMode,
  isInstanceId,
  normalizeRealmHost,
  normalizeRegistryUrl,
  parseBoolean,
  parseFraction,
  parseHostList,
  parseInstanceTag,
  parseStorageSetting,
  parseUndoWindowHours,
  parseWhole,
  registryUrlProblem,
  type GcMode,
  type SsmTarget,
  type StorageSetting,
} from './core/contract.ts';
import { ConfigError, errorMessage } from './core/errors.ts';
import { noun } from './core/plural.ts';
import { compileGlob } from './core/glob.ts';
import { validatePolicy, type Policy } from './core/policy.ts';

export { DEFAULT_CONTAINER_NAME, DEFAULT_GC_TIMEOUT_SECONDS, DEFAULT_MAX_DELETE_FRACTION };

export interface GcConfig {
  /** Where SSM Run Command runs the garbage-collect script. */
  readonly target: SsmTarget;
  /** The janitor's SSM Command document with the GC script in it (the construct creates it). */
  readonly documentName: string;
  readonly containerName: string;
  /**
   * The registry's config file inside the container. Unset: the GC script takes the file the container was started
   * with, else the version's default (/etc/docker/registry/config.yml on 2.x, /etc/distribution/config.yml on v3).
   */
  readonly configPath?: string;
  readonly mode: GcMode;
  /** `--delete-untagged` (distribution v3 only). */
  readonly deleteUntagged: boolean;
  /** CloudWatch Logs group for the full command output. */
  readonly logGroup?: string;
  /** SSM execution timeout of the script. */
  readonly timeoutSeconds: number;
}

export interface JanitorConfig {
  /** The registry's origin, scheme://host[:port], e.g. https://registry.internal:5000. */
  readonly registryUrl: string;
  readonly gc: GcConfig;
  readonly policy: Policy;
  readonly dryRun: boolean;
  /** A manual invoke may ask for a real run although the stack is a dry run (ALLOW_MANUAL_APPLY). */
  readonly allowManualApply: boolean;
  readonly maxDeleteFraction: number;
  /** SSM SecureString holding `user:password` or {"username","password"}. */
  readonly credentialsParameter?: string;
  /** SSM parameter holding a PEM CA bundle. */
  readonly caParameter?: string;
  readonly insecureTls: boolean;
  /** HTTP requests in flight. */
  readonly concurrency: number;
  /** S3 bucket of the manifest cache. */
  readonly cacheBucket?: string;
  /** Send the credentials to a plain-http registry URL (ALLOW_INSECURE_HTTP). */
  readonly allowInsecureHttp: boolean;
  /**
   * Hosts besides the registry's whose token realm may get the credentials (TOKEN_REALM_HOSTS, comma-separated),
   * lower-case.
   */
  readonly tokenRealmHosts: readonly string[];
  /** Caps on one catalog or tag listing (MAX_LIST_PAGES, MAX_LIST_ENTRIES); unset: the client's defaults. */
  readonly maxListPages?: number;
  readonly maxListEntries?: number;
  /** KMS HMAC key (HMAC_256) that signs the S3 cache; without it the S3 cache is not used. */
  readonly cacheHmacKeyId?: string;
  /**
   * Where each run's HTML report and JSON plan go (REPORTS_BUCKET, REPORTS_PREFIX); unset without REPORTS_BUCKET.
   * The prefix ends in `/` (default `reports/`).
   */
  readonly reports?: { readonly bucket: string; readonly prefix: string };
  /**
   * Where untagged history is listed from (HISTORY_STORAGE; default `container`: inside the registry container over
   * SSM). A listing that fails deletes no untagged manifest that run; tag deletes go ahead.
   */
  readonly history: StorageSetting;
  /** The bucket a container listing is uploaded to (HISTORY_LISTING_BUCKET, the construct's). */
  readonly listingBucket?: string;
  /**
   * Two-phase apply (UNDO_WINDOW_HOURS; default 24 whenever `history` is not `none`): the tags the plan deletes are
   * removed and their manifests recorded in the journal, restorable for this many hours, and a later run's sweep
   * deletes them. Absent with storage `none`: without a listing the sweep cannot see untagged manifests, so the
   * run deletes by digest.
   */
  readonly undoWindowHours?: number;
}

/**
 * How problems name what is wrong: by variable for the function, by prop for the construct, which runs this
 * parser at synth time and reports in its own terms.
 */
export interface ProblemNames {
  /** `REGISTRY_URL`, or the prop that sets it (`registryUrl`). */
  readonly name: (variable: string) => string;
  /** The start of a problem with a value: `REGISTRY_URL="x"` / `registryUrl: "x"`; without a value `REGISTRY_URL:`. */
  readonly subject: (variable: string, value?: string) => string;
}

export const VARIABLE_NAMES: ProblemNames = {
  name: (variable) => variable,
  subject: (variable, value) => (value === undefined ? `${variable}:` : `${variable}="${value}"`),
};

/**
 * Parse the function's environment. Pure: reads only `env`. Unset and empty variables take their defaults.
 * @throws ConfigError listing every missing or malformed variable with the form it expects.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): JanitorConfig {
  const { config, problems } = checkConfig(env);
  if (config === undefined) {
    throw new ConfigError(
      `The function's environment is invalid (it is set by the RegistryJanitor stack; fix the stack's props or ` +
        `context and deploy again):\n  - ${problems.join('\n  - ')}`,
    );
  }
  return config;
}

/** loadConfig without the throw: the config, or every problem, each worded with `names`. */
export function checkConfig(
  env: Readonly<Record<string, string | undefined>>,
  names: ProblemNames = VARIABLE_NAMES,
): { readonly config?: JanitorConfig; readonly problems: readonly string[] } {
  const problems: string[] = [];
  const { name, subject } = names;
  const get = (variable: string): string | undefined => {
    const value = env[variable]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const bool = (variable: string, fallback: boolean): boolean => {
    const value = get(variable);
    if (value === undefined) return fallback;
    const parsed = parseBoolean(value);
    if (parsed === undefined) problems.push(`${subject(variable, value)} is not true or false`);
    return parsed ?? fallback;
  };
  const matching = (variable: string, pattern: RegExp, expected: string): string | undefined => {
    const value = get(variable);
    if (value !== undefined && !pattern.test(value)) problems.push(`${subject(variable, value)} ${expected}`);
    return value;
  };
  const whole = (variable: string, min: number, max: number, fallback: number): number => {
    const value = get(variable);
    if (value === undefined) return fallback;
    const parsed = parseWhole(value, min, max);
    if (parsed === undefined) {
      problems.push(`${subject(variable, value)} is not a whole number from ${min} to ${max}`);
    }
    return parsed ?? fallback;
  };

  for (const variable of SECRET_VARIABLES) {
    if (get(variable) !== undefined) {
      problems.push(
        `${name(variable)} is set, but registry credentials never come from the function's environment (anyone ` +
          'who can read its configuration sees them): remove it, store `user:password` in an SSM SecureString ' +
          `and set ${name(ENV.credentialsParameter)} to its name`,
      );
    }
  }

  const registryUrl = get(ENV.registryUrl);
  if (registryUrl === undefined) {
    problems.push(
      `${name(ENV.registryUrl)} is not set: give the registry base URL, e.g. https://registry.internal:5000`,
    );
  } else {
    const problem = registryUrlProblem(registryUrl);
    if (problem?.kind === 'credentials') {
      problems.push(
        `${subject(ENV.registryUrl)} ${problem.message}; store them in an SSM SecureString and set ` +
          name(ENV.credentialsParameter),
      );
    } else if (problem) problems.push(`${subject(ENV.registryUrl, registryUrl)} ${problem.message}`);
  }

  const target = gcTarget(get(ENV.instanceId), get(ENV.instanceTag), names, problems);
  const documentName = get(ENV.documentName);
  if (documentName === undefined) {
    problems.push(
      `${name(ENV.documentName)} is not set: give the name of the janitor's SSM Command document (the construct ` +
        'creates it and sets this variable)',
    );
  } else if (!SSM_DOCUMENT_NAME.test(documentName)) {
    problems.push(
      `${subject(ENV.documentName, documentName)} is not an SSM document name (3-128 letters, digits, _ . -)`,
    );
  }
  const containerName =
    matching(ENV.containerName, CONTAINER_NAME, `is not a container name: use ${CONTAINER_NAME_FORM}`) ??
    DEFAULT_CONTAINER_NAME;
  const configPath = matching(ENV.configPath, CONFIG_PATH, `is not ${CONFIG_PATH_FORM}`);
  const modeText = get(ENV.gcMode);
  let mode: GcMode = DEFAULT_GC_MODE;
  if (modeText !== undefined) {
    if (isGcMode(modeText)) mode = modeText;
    else problems.push(`${subject(ENV.gcMode, modeText)} is not one of ${GC_MODES.join(', ')}`);
  }
  const deleteUntagged = bool(ENV.deleteUntagged, false);
  const logGroup = matching(ENV.gcLogGroup, LOG_GROUP, 'is not a CloudWatch Logs group name');
  const timeoutSeconds = whole(ENV.gcTimeoutSeconds, 1, MAX_GC_TIMEOUT_SECONDS, DEFAULT_GC_TIMEOUT_SECONDS);

  let policy: Policy | undefined;
  const policyText = get(ENV.policy);
  if (policyText === undefined) {
    problems.push(
      `${name(ENV.policy)} is not set: give the retention policy document as JSON, e.g. {"rules":[…]}`,
    );
  } else {
    let document: unknown;
    try {
      document = JSON.parse(policyText);
    } catch (err) {
      problems.push(
        `${name(ENV.policy)} is not valid JSON (${errorMessage(err)}): give the policy document as JSON`,
      );
    }
    if (document !== undefined) {
      try {
        policy = validatePolicy(document, name(ENV.policy));
      } catch (err) {
        problems.push(errorMessage(err));
      }
    }
  }

  const dryRun = bool(ENV.dryRun, DEFAULT_DRY_RUN);
  const allowManualApply = bool(ENV.allowManualApply, DEFAULT_ALLOW_MANUAL_APPLY);
  const fractionText = get(ENV.maxDeleteFraction);
  let maxDeleteFraction = DEFAULT_MAX_DELETE_FRACTION;
  if (fractionText !== undefined) {
    const parsed = parseFraction(fractionText);
    if (parsed !== undefined) maxDeleteFraction = parsed;
    else {
      problems.push(
        `${subject(ENV.maxDeleteFraction, fractionText)} is not a number from 0 to 1, e.g. ${DEFAULT_MAX_DELETE_FRACTION}`,
      );
    }
  }
  const parameterForm = 'is not an SSM parameter name or ARN, e.g. /registry-janitor/credentials';
  const credentialsParameter = matching(ENV.credentialsParameter, PARAMETER_NAME, parameterForm);
  const caParameter = matching(ENV.caParameter, PARAMETER_NAME, parameterForm);
  const insecureTls = bool(ENV.insecureTls, false);
  const concurrency = whole(ENV.concurrency, 1, MAX_CONCURRENCY, DEFAULT_CONCURRENCY);
  const cacheBucket = matching(ENV.cacheBucket, BUCKET_NAME, 'is not an S3 bucket name');
  const allowInsecureHttp = bool(ENV.allowInsecureHttp, false);
  const tokenRealmHosts: string[] = [];
  for (const raw of parseHostList(get(ENV.tokenRealmHosts) ?? '')) {
    const host = normalizeRealmHost(raw);
    if (host === undefined) problems.push(`${subject(ENV.tokenRealmHosts, raw)} is not ${REALM_HOST_FORM}`);
    else tokenRealmHosts.push(host);
  }
  const listCap = (variable: string): number | undefined =>
    get(variable) === undefined ? undefined : whole(variable, 1, Number.MAX_SAFE_INTEGER, 1);
  const maxListPages = listCap(ENV.maxListPages);
  const maxListEntries = listCap(ENV.maxListEntries);
  const cacheHmacKeyId = matching(ENV.cacheHmacKeyId, KMS_KEY_ID, 'is not a KMS key ARN, key id or alias');
  const reportsBucket = matching(ENV.reportsBucket, BUCKET_NAME, 'is not an S3 bucket name');
  const reportsPrefix =
    matching(
      ENV.reportsPrefix,
      BUCKET_PREFIX,
      `is not a key prefix like ${DEFAULT_REPORTS_PREFIX} (segments of letters, digits and !_.*'()-, each ending in /)`,
    ) ?? DEFAULT_REPORTS_PREFIX;

  let history: StorageSetting = { kind: DEFAULT_STORAGE };
  const storageText = get(ENV.storage);
  if (storageText !== undefined) {
    const parsed = parseStorageSetting(storageText);
    if ('problem' in parsed) problems.push(`${subject(ENV.storage, storageText)} ${parsed.problem}`);
    else history = parsed.setting;
  }
  const listingBucket = matching(ENV.listingBucket, BUCKET_NAME, 'is not an S3 bucket name');
  const undoWindowHours = undoWindow(get(ENV.undoWindowHours), history, names, problems);

  if (problems.length > 0) return { problems };
  return {
    problems,
    config: {
      registryUrl: normalizeRegistryUrl(registryUrl!),
      gc: {
        target: target!,
        documentName: documentName!,
        containerName,
        ...(configPath !== undefined ? { configPath } : {}),
        mode,
        deleteUntagged,
        ...(logGroup !== undefined ? { logGroup } : {}),
        timeoutSeconds,
      },
      policy: policy!,
      dryRun,
      allowManualApply,
      maxDeleteFraction,
      ...(credentialsParameter !== undefined ? { credentialsParameter } : {}),
      ...(caParameter !== undefined ? { caParameter } : {}),
      insecureTls,
      concurrency,
      ...(cacheBucket !== undefined ? { cacheBucket } : {}),
      allowInsecureHttp,
      tokenRealmHosts,
      ...(maxListPages !== undefined ? { maxListPages } : {}),
      ...(maxListEntries !== undefined ? { maxListEntries } : {}),
      ...(cacheHmacKeyId !== undefined ? { cacheHmacKeyId } : {}),
      ...(reportsBucket !== undefined ? { reports: { bucket: reportsBucket, prefix: reportsPrefix } } : {}),
      history,
      ...(listingBucket !== undefined ? { listingBucket } : {}),
      ...(undoWindowHours !== undefined ? { undoWindowHours } : {}),
    },
  };
}

/**
 * The undo window: UNDO_WINDOW_HOURS, else the default whenever untagged history is listed; none with storage
 * `none`, where setting one is a problem (nothing could ever sweep what the run untags).
 */
function undoWindow(
  text: string | undefined,
  history: StorageSetting,
  { name, subject }: ProblemNames,
  problems: string[],
): number | undefined {
  if (history.kind === 'none') {
    if (text !== undefined) {
      problems.push(
        `${name(ENV.undoWindowHours)} is set, but ${name(ENV.storage)} is ${STORAGE_NONE}: two-phase apply leaves ` +
          'the manifests it untags for a later sweep, and without a storage listing the sweep cannot see untagged ' +
          `manifests, so they would never be reclaimed. Set ${name(ENV.storage)} to where the registry's storage ` +
          `is listed (container or s3://BUCKET/ROOTDIRECTORY), or unset ${name(ENV.undoWindowHours)} to delete by digest`,
      );
    }
    return undefined;
  }
  if (text === undefined) return DEFAULT_UNDO_WINDOW_HOURS;
  const hours = parseUndoWindowHours(text);
  if (hours === undefined) problems.push(`${subject(ENV.undoWindowHours, text)} is not ${UNDO_WINDOW_FORM}`);
  return hours;
}

function gcTarget(
  id: string | undefined,
  tag: string | undefined,
  { name, subject }: ProblemNames,
  problems: string[],
): SsmTarget | undefined {
  if (id !== undefined && tag !== undefined) {
    problems.push(`${name(ENV.instanceId)} and ${name(ENV.instanceTag)} are both set: set only one`);
    return undefined;
  }
  if (id !== undefined) {
    if (isInstanceId(id)) return { instanceId: id };
    problems.push(`${subject(ENV.instanceId, id)} is not ${INSTANCE_ID_FORM}`);
    return undefined;
  }
  if (tag !== undefined) {
    try {
      return parseInstanceTag(tag, name(ENV.instanceTag));
    } catch (err) {
      problems.push(errorMessage(err));
      return undefined;
    }
  }
  problems.push(
    `neither ${name(ENV.instanceId)} nor ${name(ENV.instanceTag)} is set: set ${name(ENV.instanceId)} ` +
      `(e.g. i-0123456789abcdef0) or ${name(ENV.instanceTag)} (e.g. Role=docker-registry) to name the registry ` +
      'host where garbage-collect runs',
  );
  return undefined;
}

/** What one invocation asks for beyond the configured job. */
export interface InvokeOverrides {
  /** 'schedule': EventBridge Scheduler's fixed `{}` input or an EventBridge scheduled event; 'manual' otherwise. */
  readonly trigger: 'schedule' | 'manual';
  readonly dryRun?: boolean;
  /** Narrow the run to repositories matching these globs. */
  readonly repositories?: readonly string[];
  readonly skipGc?: boolean;
}

export const PAYLOAD_KEYS = ['dryRun', 'repositories', 'skipGc'] as const;
const PAYLOAD_EXAMPLE = '{"dryRun": true, "repositories": ["team1/**"], "skipGc": true}';

const payloadSchema = z.strictObject({
  dryRun: z.boolean({ error: 'expected true or false' }).optional(),
  repositories: z
    .array(
      z.string({ error: 'expected a repository glob string' }).min(1, { error: 'expected a non-empty glob' }),
      {
        error: 'expected a list of repository globs, e.g. ["team1/**"]',
      },
    )
    .min(1, { error: 'expected at least one repository glob; leave the key out to clean every repository' })
    .optional(),
  skipGc: z.boolean({ error: 'expected true or false' }).optional(),
});

/**
 * Tell the scheduled run from a manual invoke and validate the manual payload. `{}`, `null` and an EventBridge
 * "Scheduled Event" run the configured job.
 * @throws ConfigError naming the bad key, and listing the allowed keys for unknown ones.
 */
export function parseInvokePayload(event: unknown): InvokeOverrides {
  if (event === undefined || event === null) return { trigger: 'schedule' };
  if (typeof event !== 'object' || Array.isArray(event)) {
    throw new ConfigError(
      `The invoke payload must be a JSON object such as ${PAYLOAD_EXAMPLE} (all keys optional), not ${JSON.stringify(event)}.`,
    );
  }
  const record = event as Record<string, unknown>;
  if (Object.keys(record).length === 0) return { trigger: 'schedule' };
  if ('detail-type' in record && 'source' in record) {
    if (record.source === 'aws.events' && record['detail-type'] === 'Scheduled Event')
      return { trigger: 'schedule' };
    throw new ConfigError(
      `The function was invoked with an EventBridge event "${String(record['detail-type'])}" from ` +
        `${String(record.source)}; it only runs on a schedule or a manual payload like ${PAYLOAD_EXAMPLE}.`,
    );
  }

  const parsed = payloadSchema.safeParse(record);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return `unknown ${noun(issue.keys.length, 'key')} ${issue.keys.map((k) => `"${k}"`).join(', ')}; the allowed keys are ${PAYLOAD_KEYS.join(', ')}`;
      }
      const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
      return `${path.replace(/^\./, '')}: ${issue.message}`;
    });
    throw new ConfigError(
      `The invoke payload is invalid:\n  - ${lines.join('\n  - ')}\nExpected e.g. ${PAYLOAD_EXAMPLE} (all keys optional).`,
    );
  }
  const { dryRun, repositories, skipGc } = parsed.data;
  repositories?.forEach((glob, i) => {
    try {
      compileGlob(glob, true);
    } catch (err) {
      throw new ConfigError(
        `The invoke payload is invalid: repositories[${i}] "${glob}": ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    }
  });
  return {
    trigger: 'manual',
    ...(dryRun !== undefined ? { dryRun } : {}),
    ...(repositories !== undefined ? { repositories } : {}),
    ...(skipGc !== undefined ? { skipGc } : {}),
  };
}
