// The function's environment as the construct builds it from the props, and the synth-time check: the function's own
// config parser runs over it (problems named by prop), then the conflicts between props that only the construct sees.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Token } from 'aws-cdk-lib';
import { checkConfig, type ProblemNames } from '../lambda/config.ts';
import {
  DEFAULT_ALLOW_MANUAL_APPLY,
  DEFAULT_DRY_RUN,
  DEFAULT_GC_TIMEOUT_SECONDS,
  DEFAULT_REPORTS_PREFIX,
  DEFAULT_SERVICE_NAME,
  DEFAULT_STORAGE,
  DEFAULT_UNDO_WINDOW_HOURS,
  ENGINES,
  ENV,
  GC_WAIT_MARGIN_SECONDS,
  gcPollsFor,
  leastGcPollSeconds,
  isEngine,
  LAMBDA_MEMORY_MB,
  MAX_BATCH_REPOSITORIES,
  MAX_BATCH_TAGS,
  MAX_GC_POLLS,
  MAX_WORKFLOW_CONCURRENCY,
  METRIC_NAMESPACE,
  normalizeRegistryUrl,
  parseStorageSetting,
  registryUrlProblem,
  UNDO_WINDOW_FORM,
  type StorageSetting,
  WORKFLOW_ENV,
} from '../lambda/core/contract.ts';
import { ConfigError, errorMessage } from '../lambda/core/errors.ts';
import { parsePolicy, validatePolicy, type Policy } from '../lambda/core/policy.ts';
import type { RegistryJanitorProps } from './registry-janitor.ts';

/** Lambda's limit on the total size of a function's environment variables. */
const ENVIRONMENT_LIMIT_BYTES = 4096;
/** Size assumed for a value only known at deploy time (a bucket name is at most 63 characters). */
const TOKEN_SIZE_ESTIMATE = 64;

/** The props that only mean something with engine 'workflow'. */
const WORKFLOW_ONLY_PROPS = [
  'workflowConcurrency',
  'workflowBatchTags',
  'workflowBatchRepositories',
  'workflowWholeRunMemorySize',
] as const satisfies readonly (keyof RegistryJanitorProps)[];

/** The garbage-collect timeout the function will run with: its variable if `environment` sets it, else the default. */
export function gcTimeoutSecondsOf(environment: Readonly<Record<string, string>>): number {
  const text = environment[ENV.gcTimeoutSeconds];
  return text === undefined ? DEFAULT_GC_TIMEOUT_SECONDS : Number(text);
}

/** The prop that controls each variable the construct sets, for the error when `environment` sets one too. */
const CONTROLLED_VARIABLES: Readonly<Record<string, string>> = {
  [ENV.registryUrl]: 'registryUrl',
  [ENV.instanceId]: 'instanceId',
  [ENV.instanceTag]: 'instanceTag',
  [ENV.documentName]: '(the construct creates the SSM document)',
  [ENV.containerName]: 'containerName',
  [ENV.configPath]: 'configPath',
  [ENV.gcMode]: 'gcMode',
  [ENV.policy]: 'policy or policyFile',
  [ENV.dryRun]: 'dryRun',
  [ENV.maxDeleteFraction]: 'maxDeleteFraction',
  [ENV.credentialsParameter]: 'credentialsParameter',
  [ENV.caParameter]: 'caParameter',
  [ENV.cacheBucket]: '(the construct creates the cache bucket)',
  [ENV.cacheHmacKeyId]: '(the construct creates the cache key)',
  [ENV.reportsBucket]: '(the construct creates the bucket)',
  [ENV.reportsPrefix]: `(fixed: ${DEFAULT_REPORTS_PREFIX})`,
  [ENV.allowManualApply]: 'allowManualApply',
  [ENV.tokenRealmHosts]: 'tokenRealmHosts',
  [ENV.allowInsecureHttp]: 'allowInsecureHttp',
  [ENV.serviceName]: 'serviceName',
  [ENV.storage]: 'storage',
  [ENV.undoWindowHours]: 'undoWindowHours',
  [ENV.listingBucket]: '(the construct creates the bucket)',
  [ENV.metricsNamespace]: `(fixed: ${METRIC_NAMESPACE})`,
  [WORKFLOW_ENV.batchTags]: 'workflowBatchTags',
  [WORKFLOW_ENV.batchRepositories]: 'workflowBatchRepositories',
};

/** The function's parser at synth time names each problem by the prop behind it (`environment.X` for the rest). */
const PROP_NAMES: ProblemNames = {
  name: (variable) => CONTROLLED_VARIABLES[variable] ?? `environment.${variable}`,
  subject: (variable, value) => {
    const prop = PROP_NAMES.name(variable);
    return value === undefined ? `${prop}:` : `${prop}: "${value}"`;
  },
};

/** What the construct derives before building the environment (tokens for what it creates). */
export interface Derived {
  readonly policyJson: string;
  readonly dryRun: boolean;
  readonly serviceName: string;
  readonly cacheBucket: string;
  readonly cacheHmacKeyId: string;
  readonly gcDocument: string;
}

/** The function's environment: the variables the props set, merged with `environment`; unset values left out. */
function environmentOf(props: RegistryJanitorProps, derived: Derived): Record<string, string> {
  const own: Record<string, string | undefined> = {
    [ENV.registryUrl]: knownRegistryUrl(props.registryUrl),
    [ENV.instanceId]: props.instanceId,
    [ENV.instanceTag]: props.instanceTag,
    [ENV.documentName]: derived.gcDocument,
    [ENV.containerName]: props.containerName,
    [ENV.configPath]: props.configPath,
    [ENV.gcMode]: props.gcMode,
    [ENV.policy]: derived.policyJson,
    // Always explicit: the safety switch should be visible on the function, not implied by a default.
    [ENV.dryRun]: String(derived.dryRun),
    [ENV.allowManualApply]: String(props.allowManualApply ?? DEFAULT_ALLOW_MANUAL_APPLY),
    [ENV.maxDeleteFraction]:
      props.maxDeleteFraction === undefined ? undefined : String(props.maxDeleteFraction),
    [ENV.credentialsParameter]: props.credentialsParameter,
    [ENV.caParameter]: props.caParameter,
    [ENV.cacheBucket]: derived.cacheBucket,
    [ENV.cacheHmacKeyId]: derived.cacheHmacKeyId,
    [ENV.reportsBucket]: derived.cacheBucket,
    [ENV.reportsPrefix]: DEFAULT_REPORTS_PREFIX,
    [ENV.tokenRealmHosts]: props.tokenRealmHosts?.join(','),
    [ENV.allowInsecureHttp]:
      props.allowInsecureHttp === undefined ? undefined : String(props.allowInsecureHttp),
    [ENV.serviceName]: derived.serviceName,
    [ENV.metricsNamespace]: METRIC_NAMESPACE,
    // Always explicit, like DRY_RUN: where untagged history comes from decides what a run may delete.
    [ENV.storage]: props.storage ?? DEFAULT_STORAGE,
    [ENV.listingBucket]: storageSettingOf(props).kind === 'container' ? derived.cacheBucket : undefined,
    // Explicit too whenever it applies: whether apply untags or deletes by digest, and for how long it can be undone.
    [ENV.undoWindowHours]: undoWindowOf(props),
    NODE_OPTIONS: '--enable-source-maps',
  };
  const environment: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...own, ...props.environment })) {
    if (value !== undefined) environment[key] = value;
  }
  return environment;
}

/** A valid URL in its one spelling (the origin); anything else as given, for the function's parser to report. */
function knownRegistryUrl(url: string): string {
  return Token.isUnresolved(url) || registryUrlProblem(url) !== undefined ? url : normalizeRegistryUrl(url);
}

export function buildEnvironment(props: RegistryJanitorProps, derived: Derived): Record<string, string> {
  const environment = environmentOf(props, derived);
  const problems = handlerProblems(environment);
  if (problems.length > 0) {
    throw new ConfigError(
      `RegistryJanitor: the function would reject its configuration:\n  - ${problems.join('\n  - ')}`,
    );
  }
  const size = Object.entries(environment).reduce(
    (sum, [key, value]) =>
      sum + key.length + (Token.isUnresolved(value) ? TOKEN_SIZE_ESTIMATE : value.length),
    0,
  );
  if (size > ENVIRONMENT_LIMIT_BYTES) {
    throw new ConfigError(
      `RegistryJanitor: the function's environment would be about ${size} bytes, over Lambda's 4 KB limit; the ` +
        `retention policy alone is ${derived.policyJson.length} bytes as JSON. Merge rules that share ` +
        `criteria (one rule can list several repository globs) to shorten the policy.`,
    );
  }
  return environment;
}

/** Valid stand-ins for values only known at deploy time, so the function's parser can check everything else. */
const DEPLOY_TIME_STANDINS: Readonly<Record<string, string>> = {
  [ENV.registryUrl]: 'https://deploy-time.invalid',
  [ENV.instanceId]: 'i-00000000',
  [ENV.instanceTag]: 'Deploy=Time',
  [ENV.documentName]: 'deploy-time-document',
  [ENV.cacheBucket]: 'deploy-time-bucket',
  [ENV.reportsBucket]: 'deploy-time-bucket',
  [ENV.listingBucket]: 'deploy-time-bucket',
  [ENV.cacheHmacKeyId]: 'arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000',
};
/** The props' check runs before the policy is read; the policy is checked on its own (validatePolicy). */
const STANDIN_POLICY = JSON.stringify({ rules: [{ repositories: ['**'], protect: true }] });

/**
 * Run the function's own parser over the environment, so anything it would reject at run time (a bad instance id,
 * or a bad CONCURRENCY in `environment`) fails synth instead, with its message naming the prop.
 */
function handlerProblems(environment: Readonly<Record<string, string>>): readonly string[] {
  const known: Record<string, string> = {};
  for (const [key, value] of Object.entries(environment)) {
    if (!Token.isUnresolved(value)) known[key] = value;
    else if (DEPLOY_TIME_STANDINS[key] !== undefined) known[key] = DEPLOY_TIME_STANDINS[key];
  }
  return checkConfig(known, PROP_NAMES).problems;
}

/**
 * Throw one ConfigError listing every bad or conflicting prop, each with what to set: what the function's parser
 * says about the environment the props make, then the conflicts only the construct can see.
 */
export function checkProps(props: RegistryJanitorProps): void {
  const problems = [
    ...handlerProblems(
      environmentOf(props, {
        policyJson: STANDIN_POLICY,
        dryRun: props.dryRun ?? DEFAULT_DRY_RUN,
        serviceName: props.serviceName ?? DEFAULT_SERVICE_NAME,
        cacheBucket: DEPLOY_TIME_STANDINS[ENV.cacheBucket]!,
        cacheHmacKeyId: DEPLOY_TIME_STANDINS[ENV.cacheHmacKeyId]!,
        gcDocument: DEPLOY_TIME_STANDINS[ENV.documentName]!,
      }),
    ),
  ];
  const known = (value: unknown): value is string | number =>
    value !== undefined && !Token.isUnresolved(value);

  if (props.undoWindowHours !== undefined && Token.isUnresolved(props.undoWindowHours)) {
    problems.push(
      'undoWindowHours: must be known at synth time (it decides whether apply untags or deletes by digest): give ' +
        `it as a plain number, ${UNDO_WINDOW_FORM}`,
    );
  }

  if (props.storage !== undefined && Token.isUnresolved(props.storage)) {
    problems.push(
      'storage: must be known at synth time (the function is granted read access to exactly that storage): give ' +
        'container, s3://bucket/rootdirectory or none as a plain string',
    );
  }

  if (props.policy !== undefined && props.policyFile !== undefined) {
    problems.push(
      'policy and policyFile are both set: set only one (an object, or the path of a YAML/JSON file)',
    );
  } else if (props.policy === undefined && props.policyFile === undefined) {
    problems.push(
      'set policyFile (e.g. retention-policy.yaml) or policy (an object) to give the retention policy',
    );
  }

  const wholeNumber = (
    name: string,
    value: number | undefined,
    least: number,
    most: number,
    unit = '',
  ): void => {
    if (known(value) && !(Number.isInteger(value) && value >= least && value <= most)) {
      problems.push(
        `${name}: ${value} is not a whole number ${unit}from ${least} to ${most.toLocaleString('en-US')}`,
      );
    }
  };
  wholeNumber('memorySize', props.memorySize, LAMBDA_MEMORY_MB.least, LAMBDA_MEMORY_MB.most, 'of MB ');

  if (props.parameterKey && props.credentialsParameter === undefined && props.caParameter === undefined) {
    problems.push(
      'parameterKey is set but neither credentialsParameter nor caParameter: set the parameter it decrypts, ' +
        'or remove parameterKey',
    );
  }

  if (!props.vpc && (props.vpcSubnets !== undefined || props.securityGroups !== undefined)) {
    problems.push('vpcSubnets and securityGroups need vpc: set vpc too (or remove them)');
  }

  if (props.alarmTopic && props.alarmEmail !== undefined) {
    problems.push(
      'alarmTopic and alarmEmail are both set: alarmEmail subscribes to the topic this construct creates; ' +
        'with your own alarmTopic, subscribe the address to it yourself and remove alarmEmail',
    );
  }
  if (known(props.alarmEmail) && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(props.alarmEmail)) {
    problems.push(`alarmEmail: "${props.alarmEmail}" is not an e-mail address`);
  }

  if (known(props.serviceName) && !/^[A-Za-z0-9._-]{1,128}$/.test(props.serviceName)) {
    problems.push(`serviceName: "${props.serviceName}" must be 1-128 letters, digits, _ . -`);
  }

  for (const key of Object.keys(props.environment ?? {})) {
    const prop = CONTROLLED_VARIABLES[key];
    if (prop !== undefined) problems.push(`environment.${key}: set by the construct; use ${prop} instead`);
  }

  if (props.engine !== undefined && !isEngine(props.engine)) {
    problems.push(`engine: "${String(props.engine)}" is not one of ${ENGINES.join(', ')}`);
  }
  if (props.engine === 'workflow' && props.instanceId === undefined) {
    problems.push(
      "engine: 'workflow' follows the garbage-collect command on one host, so it needs instanceId (the host's " +
        "i-… or mi-… id) instead of instanceTag; or keep engine 'lambda'",
    );
  }
  wholeNumber('workflowConcurrency', props.workflowConcurrency, 1, MAX_WORKFLOW_CONCURRENCY);
  wholeNumber('workflowBatchTags', props.workflowBatchTags, 1, MAX_BATCH_TAGS);
  wholeNumber('workflowBatchRepositories', props.workflowBatchRepositories, 1, MAX_BATCH_REPOSITORIES);
  wholeNumber(
    'workflowWholeRunMemorySize',
    props.workflowWholeRunMemorySize,
    LAMBDA_MEMORY_MB.least,
    LAMBDA_MEMORY_MB.most,
    'of MB ',
  );
  if (props.engine !== 'workflow') {
    for (const name of WORKFLOW_ONLY_PROPS) {
      if (props[name] !== undefined) {
        problems.push(`${name} is set but engine is not 'workflow': set engine: 'workflow' or remove it`);
      }
    }
  }
  const poll = props.gcPollInterval;
  if (poll !== undefined && !Token.isUnresolved(poll.toSeconds())) {
    const seconds = poll.toSeconds();
    const timeout = gcTimeoutSecondsOf(props.environment ?? {});
    if (seconds < 1) problems.push('gcPollInterval: must be at least 1 second');
    else if (Number.isFinite(timeout) && gcPollsFor(timeout, seconds) > MAX_GC_POLLS) {
      problems.push(
        `gcPollInterval: ${seconds} s makes ${gcPollsFor(timeout, seconds)} looks at the garbage-collect over ` +
          `its timeout (${timeout} s) and ${GC_WAIT_MARGIN_SECONDS} s more, over the ${MAX_GC_POLLS} an ` +
          `execution has room for (Step Functions keeps 25,000 events): set it to at least ` +
          `${leastGcPollSeconds(timeout)} s, or leave it unset`,
      );
    }
  }

  if (problems.length > 0) {
    throw new ConfigError(`RegistryJanitor: invalid props:\n  - ${problems.join('\n  - ')}`);
  }
}

export function loadPolicy(props: RegistryJanitorProps): Policy {
  if (props.policyFile === undefined) return validatePolicy(props.policy, 'policy');
  const path = resolve(props.policyFile);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `policyFile: cannot read ${path} (${errorMessage(err)}); give the path of a YAML or JSON retention policy ` +
        '(relative paths resolve against the directory you run cdk in)',
      { cause: err },
    );
  }
  return parsePolicy(text, props.policyFile);
}

/**
 * The `storage` prop as the function reads it (the default `container` when unset). Only for props checkProps
 * accepted; an unparseable value falls back to `none`, which grants nothing.
 */
export function storageSettingOf(props: Pick<RegistryJanitorProps, 'storage'>): StorageSetting {
  if (props.storage === undefined || Token.isUnresolved(props.storage)) return { kind: DEFAULT_STORAGE };
  const parsed = parseStorageSetting(props.storage);
  return 'setting' in parsed ? parsed.setting : { kind: 'none' };
}

/**
 * UNDO_WINDOW_HOURS as the construct sets it: the prop, else the default whenever untagged history is listed; unset
 * with storage `none` (the function then deletes by digest; the prop set with it is refused by the parser).
 */
function undoWindowOf(props: RegistryJanitorProps): string | undefined {
  if (props.undoWindowHours !== undefined) return String(props.undoWindowHours);
  return storageSettingOf(props).kind === 'none' ? undefined : String(DEFAULT_UNDO_WINDOW_HOURS);
}
