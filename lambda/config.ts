// The Lambda's configuration: the environment the stack sets (see LAMBDA-CONTRACT) and the optional manual-invoke
// payload, each parsed by one pure function that fails before any I/O with a message naming what to fix.
import { z } from 'zod';
import { parseInstanceTag, type SsmTarget } from './adapters/ssm-runner.ts';
import { ConfigError, errorMessage } from './core/errors.ts';
import { GC_MODES, SSM_DOCUMENT_NAME, type GcMode } from './core/gc-script.ts';
import { compileGlob } from './core/glob.ts';
import { DEFAULT_CONCURRENCY } from './core/ports.ts';
import { validatePolicy, type Policy } from './core/policy.ts';

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
  /** Base URL without a trailing slash, e.g. https://registry.internal:5000. */
  readonly registryUrl: string;
  readonly gc: GcConfig;
  readonly policy: Policy;
  readonly dryRun: boolean;
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
  /** Hosts besides the registry's whose token realm may get the credentials (TOKEN_REALM_HOSTS, comma-separated). */
  readonly tokenRealmHosts: readonly string[];
  /** Caps on one catalog or tag listing (MAX_LIST_PAGES, MAX_LIST_ENTRIES); unset: the client's defaults. */
  readonly maxListPages?: number;
  readonly maxListEntries?: number;
  /** KMS HMAC key (HMAC_256) that signs the S3 cache; without it the S3 cache is not used. */
  readonly cacheHmacKeyId?: string;
  /** A manual payload may ask for a real run on a dry-run stack (ALLOW_MANUAL_APPLY); default false. */
  readonly allowManualApply: boolean;
}

export const DEFAULT_CONTAINER_NAME = 'registry';
export const DEFAULT_GC_TIMEOUT_SECONDS = 3600;
export const DEFAULT_MAX_DELETE_FRACTION = 0.5;

const INSTANCE_ID = /^(i-[0-9a-f]{8}|i-[0-9a-f]{17}|mi-[0-9a-f]{17})$/;
// Both end up in a shell script on the registry host: allow only what names and paths need.
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const CONFIG_PATH = /^\/[A-Za-z0-9._/-]+$/;
const LOG_GROUP = /^[.\-_/#A-Za-z0-9]{1,512}$/;
const PARAMETER_NAME =
  /^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/[A-Za-z0-9_.\-/]+|\/?[A-Za-z0-9_.\-/]{1,2048})$/;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const DECIMAL = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/;
const WHOLE = /^\s*\d+\s*$/;
const MAX_SSM_EXECUTION_TIMEOUT = 172_800;

/** Variables that would put a registry secret in the function's configuration, where anyone with read access sees it. */
const SECRET_VARIABLES = ['REGISTRY_PASSWORD', 'REGISTRY_USERNAME', 'REGISTRY_USER', 'REGISTRY_CREDENTIALS'];

/**
 * Parse the function's environment. Pure: reads only `env`. Unset and empty variables take their defaults.
 * @throws ConfigError listing every missing or malformed variable with the form it expects.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): JanitorConfig {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const value = get(name);
    if (value === undefined) return fallback;
    if (value === 'true' || value === 'false') return value === 'true';
    problems.push(`${name}="${value}" is not true or false`);
    return fallback;
  };
  const matching = (name: string, pattern: RegExp, expected: string): string | undefined => {
    const value = get(name);
    if (value !== undefined && !pattern.test(value)) problems.push(`${name}="${value}" ${expected}`);
    return value;
  };

  for (const name of SECRET_VARIABLES) {
    if (get(name) !== undefined) {
      problems.push(
        `${name} is set, but registry credentials never come from environment variables: remove it, store ` +
          '`user:password` in an SSM SecureString and set CREDENTIALS_PARAMETER to its name',
      );
    }
  }

  const registryUrl = get('REGISTRY_URL');
  if (registryUrl === undefined) {
    problems.push('REGISTRY_URL is not set: give the registry base URL, e.g. https://registry.internal:5000');
  } else {
    const problem = registryUrlProblem(registryUrl);
    if (problem) problems.push(`REGISTRY_URL="${registryUrl}" ${problem}`);
  }

  const target = gcTarget(get('GC_INSTANCE_ID'), get('GC_INSTANCE_TAG'), problems);
  const documentName = get('GC_DOCUMENT_NAME');
  if (documentName === undefined) {
    problems.push(
      "GC_DOCUMENT_NAME is not set: give the name of the janitor's SSM Command document (the construct creates " +
        'it and sets this variable)',
    );
  } else if (!SSM_DOCUMENT_NAME.test(documentName)) {
    problems.push(
      `GC_DOCUMENT_NAME="${documentName}" is not an SSM document name (3-128 letters, digits, _ . -)`,
    );
  }
  const containerName =
    matching('GC_CONTAINER_NAME', CONTAINER_NAME, 'is not a container name (letters, digits, _ . -)') ??
    DEFAULT_CONTAINER_NAME;
  const configPath = matching(
    'GC_CONFIG_PATH',
    CONFIG_PATH,
    'is not an absolute path of letters, digits and _ . / -, e.g. /etc/docker/registry/config.yml',
  );
  const modeText = get('GC_MODE');
  let mode: GcMode = 'readonly';
  if (modeText !== undefined) {
    if ((GC_MODES as readonly string[]).includes(modeText)) mode = modeText as GcMode;
    else problems.push(`GC_MODE="${modeText}" is not one of ${GC_MODES.join(', ')}`);
  }
  const deleteUntagged = bool('GC_DELETE_UNTAGGED', false);
  const logGroup = matching('GC_LOG_GROUP', LOG_GROUP, 'is not a CloudWatch Logs group name');
  const timeoutSeconds = wholeNumber(
    'GC_TIMEOUT_SECONDS',
    get('GC_TIMEOUT_SECONDS'),
    1,
    MAX_SSM_EXECUTION_TIMEOUT,
    DEFAULT_GC_TIMEOUT_SECONDS,
    problems,
  );

  let policy: Policy | undefined;
  const policyText = get('RETENTION_POLICY');
  if (policyText === undefined) {
    problems.push(
      'RETENTION_POLICY is not set: give the retention policy document as JSON, e.g. {"rules":[…]}',
    );
  } else {
    let document: unknown;
    try {
      document = JSON.parse(policyText);
    } catch (err) {
      problems.push(
        `RETENTION_POLICY is not valid JSON (${errorMessage(err)}): give the policy document as JSON`,
      );
    }
    if (document !== undefined) {
      try {
        policy = validatePolicy(document, 'RETENTION_POLICY');
      } catch (err) {
        problems.push(errorMessage(err));
      }
    }
  }

  const dryRun = bool('DRY_RUN', true);
  const fractionText = get('MAX_DELETE_FRACTION');
  let maxDeleteFraction = DEFAULT_MAX_DELETE_FRACTION;
  if (fractionText !== undefined) {
    const n = Number(fractionText);
    if (DECIMAL.test(fractionText) && n >= 0 && n <= 1) maxDeleteFraction = n;
    else problems.push(`MAX_DELETE_FRACTION="${fractionText}" is not a number from 0 to 1, e.g. 0.5`);
  }
  const parameterForm = 'is not an SSM parameter name or ARN, e.g. /registry-janitor/credentials';
  const credentialsParameter = matching('CREDENTIALS_PARAMETER', PARAMETER_NAME, parameterForm);
  const caParameter = matching('CA_PARAMETER', PARAMETER_NAME, parameterForm);
  const insecureTls = bool('INSECURE_TLS', false);
  const concurrency = wholeNumber('CONCURRENCY', get('CONCURRENCY'), 1, 1024, DEFAULT_CONCURRENCY, problems);
  const cacheBucket = matching('CACHE_BUCKET', BUCKET_NAME, 'is not an S3 bucket name');
  const allowInsecureHttp = bool('ALLOW_INSECURE_HTTP', false);
  const allowManualApply = bool('ALLOW_MANUAL_APPLY', false);
  const tokenRealmHosts = (get('TOKEN_REALM_HOSTS') ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  const listCap = (name: string): number | undefined => {
    const text = get(name);
    return text === undefined ? undefined : wholeNumber(name, text, 1, Number.MAX_SAFE_INTEGER, 1, problems);
  };
  const maxListPages = listCap('MAX_LIST_PAGES');
  const maxListEntries = listCap('MAX_LIST_ENTRIES');
  const cacheHmacKeyId = matching(
    'CACHE_HMAC_KEY_ID',
    /^(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key|alias)\/[A-Za-z0-9/_-]+|[0-9a-f-]{36}|alias\/[A-Za-z0-9/_-]+)$/,
    'is not a KMS key ARN, key id or alias',
  );

  if (problems.length > 0) {
    throw new ConfigError(
      `The function's environment is invalid (it is set by the RegistryJanitor stack; fix the stack's props or ` +
        `context and deploy again):\n  - ${problems.join('\n  - ')}`,
    );
  }
  return {
    registryUrl: registryUrl!.replace(/\/+$/, ''),
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
    maxDeleteFraction,
    ...(credentialsParameter !== undefined ? { credentialsParameter } : {}),
    ...(caParameter !== undefined ? { caParameter } : {}),
    insecureTls,
    concurrency,
    ...(cacheBucket !== undefined ? { cacheBucket } : {}),
    allowInsecureHttp,
    allowManualApply,
    tokenRealmHosts,
    ...(maxListPages !== undefined ? { maxListPages } : {}),
    ...(maxListEntries !== undefined ? { maxListEntries } : {}),
    ...(cacheHmacKeyId !== undefined ? { cacheHmacKeyId } : {}),
  };
}

function registryUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'is not a URL: give the registry base URL, e.g. https://registry.internal:5000';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must start with https:// or http://';
  if (url.username !== '' || url.password !== '') {
    return 'must not contain credentials: store them in an SSM SecureString named by CREDENTIALS_PARAMETER';
  }
  if (url.pathname.replace(/\/+$/, '') !== '' || url.search !== '' || url.hash !== '') {
    return `must be the registry root without a path or query (the API lives at /v2/), e.g. ${url.origin}`;
  }
  return undefined;
}

function gcTarget(
  id: string | undefined,
  tag: string | undefined,
  problems: string[],
): SsmTarget | undefined {
  if (id !== undefined && tag !== undefined) {
    problems.push('GC_INSTANCE_ID and GC_INSTANCE_TAG are both set: set only one');
    return undefined;
  }
  if (id !== undefined) {
    if (INSTANCE_ID.test(id)) return { instanceId: id };
    problems.push(
      `GC_INSTANCE_ID="${id}" is not an instance id like i-0123456789abcdef0 (or mi-… for a hybrid node)`,
    );
    return undefined;
  }
  if (tag !== undefined) {
    try {
      return parseInstanceTag(tag, 'GC_INSTANCE_TAG');
    } catch (err) {
      problems.push(errorMessage(err));
      return undefined;
    }
  }
  problems.push(
    'neither GC_INSTANCE_ID nor GC_INSTANCE_TAG is set: set one to name the registry host, e.g. ' +
      'GC_INSTANCE_ID=i-0123456789abcdef0 or GC_INSTANCE_TAG=Role=docker-registry',
  );
  return undefined;
}

function wholeNumber(
  name: string,
  text: string | undefined,
  min: number,
  max: number,
  fallback: number,
  problems: string[],
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (WHOLE.test(text) && n >= min && n <= max) return n;
  problems.push(`${name}="${text}" is not a whole number from ${min} to ${max}`);
  return fallback;
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
        return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}; the allowed keys are ${PAYLOAD_KEYS.join(', ')}`;
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
