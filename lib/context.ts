// Reads the app's CDK context (`-c key=value` flags or cdk.json) into typed settings for the stack, so a user
// deploys with flags alone. Pure: the caller passes the context; every problem is reported at once.
import type { CronOptions } from 'aws-cdk-lib/aws-events';
import { ConfigError } from '../lambda/core/errors.ts';
import { parseCronExpression } from './cron.ts';
import {
  DEFAULT_DRY_RUN,
  DEFAULT_MAX_DELETE_FRACTION,
  ENGINES,
  GC_MODES,
  isEngine,
  LAMBDA_MEMORY_MB,
  MAX_BATCH_REPOSITORIES,
  MAX_BATCH_TAGS,
  MAX_WORKFLOW_CONCURRENCY,
  type Engine,
  isGcMode,
  normalizeRealmHost,
  parseBoolean,
  parseHostList,
  REALM_HOST_FORM,
  parseFraction,
  parseStorageSetting,
  parseUndoWindowHours,
  UNDO_WINDOW_FORM,
  type GcMode,
} from '../lambda/core/contract.ts';

/** What the app builds the stack from. Names match the construct's props, so error messages fit both. */
export interface AppSettings {
  readonly registryUrl: string;
  readonly instanceId?: string;
  /** `Key=Value`. */
  readonly instanceTag?: string;
  readonly containerName?: string;
  readonly configPath?: string;
  readonly gcMode?: GcMode;
  /** Path of the retention policy file (relative paths resolve against the working directory). */
  readonly policyFile: string;
  readonly schedule?: CronOptions;
  readonly dryRun: boolean;
  readonly maxDeleteFraction?: number;
  readonly credentialsParameter?: string;
  readonly caParameter?: string;
  /** ARN of the KMS key encrypting the parameters, when it is not the AWS-managed aws/ssm key. */
  readonly parameterKeyArn?: string;
  readonly vpcId?: string;
  readonly subnetIds?: readonly string[];
  readonly securityGroupIds?: readonly string[];
  readonly alarmEmail?: string;
  /** A manual invoke may ask for a real run on a dry-run stack. */
  readonly allowManualApply?: boolean;
  /** Hosts besides the registry's whose token realm may get the credentials. */
  readonly tokenRealmHosts?: readonly string[];
  /** Send the credentials to a plain-http registry URL. */
  readonly allowInsecureHttp?: boolean;
  /** Where untagged history is listed from: `container`, `s3://bucket/prefix` or `none`. */
  readonly storage?: string;
  /** Two-phase apply: hours an untagged manifest can be restored before the sweep deletes it (not with storage none). */
  readonly undoWindowHours?: number;
  /** What the schedule starts: `lambda` (one invocation) or `workflow` (the Step Functions state machine). */
  readonly engine?: Engine;
  /** Iterations of the workflow's Map states at once. */
  readonly workflowConcurrency?: number;
  /** The most tags and repositories in one batch of the workflow. */
  readonly workflowBatchTags?: number;
  readonly workflowBatchRepositories?: number;
  /** Memory of the workflow's plan, collect and report steps (the ones that hold the whole run), in MB. */
  readonly workflowWholeRunMemorySize?: number;
}

/** Every context key the app reads. */
export const CONTEXT_KEYS = [
  'registryUrl',
  'instanceId',
  'instanceTag',
  'containerName',
  'configPath',
  'gcMode',
  'policyFile',
  'schedule',
  'dryRun',
  'maxDeleteFraction',
  'credentialsParameter',
  'caParameter',
  'parameterKeyArn',
  'vpcId',
  'subnetIds',
  'securityGroupIds',
  'alarmEmail',
  'allowManualApply',
  'tokenRealmHosts',
  'allowInsecureHttp',
  'storage',
  'undoWindowHours',
  'engine',
  'workflowConcurrency',
  'workflowBatchTags',
  'workflowBatchRepositories',
  'workflowWholeRunMemorySize',
] as const;

export const EXAMPLE_DEPLOY =
  'npx cdk deploy -c registryUrl=https://registry.internal:5000 -c instanceId=i-0123456789abcdef0';

export interface ParseContextOptions {
  /** The policy file used when `policyFile` is not given (the repository's retention-policy.yaml). */
  readonly defaultPolicyFile: string;
}

/**
 * Turn CDK context into AppSettings. Values given with `-c` arrive as strings; cdk.json may hold booleans,
 * numbers and lists, so both are accepted.
 * @throws ConfigError listing every missing or malformed key, each with what to pass.
 */
export function parseAppContext(
  context: Readonly<Record<string, unknown>>,
  options: ParseContextOptions,
): AppSettings {
  const problems: string[] = [];
  const text = (key: string): string | undefined => {
    const value = context[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    problems.push(`${key}: expected a string, got ${JSON.stringify(value)}`);
    return undefined;
  };

  for (const key of Object.keys(context)) {
    const known = CONTEXT_KEYS.find((k) => k !== key && k.toLowerCase() === key.toLowerCase());
    if (known) problems.push(`${key}: unknown context key; did you mean ${known}? (keys are case-sensitive)`);
  }

  const registryUrl = text('registryUrl');
  const instanceId = text('instanceId');
  const instanceTag = text('instanceTag');
  const missing: string[] = [];
  if (registryUrl === undefined) missing.push('-c registryUrl=https://<registry host>:<port>');
  if (instanceId === undefined && instanceTag === undefined) {
    missing.push('-c instanceId=i-<registry host> (or -c instanceTag=Key=Value)');
  }
  if (missing.length > 0) {
    problems.unshift(`missing context: pass ${missing.join(' and ')}, e.g. ${EXAMPLE_DEPLOY}`);
  }

  const gcModeText = text('gcMode');
  let gcMode: GcMode | undefined;
  if (gcModeText !== undefined) {
    if (isGcMode(gcModeText)) gcMode = gcModeText;
    else problems.push(`gcMode: "${gcModeText}" is not one of ${GC_MODES.join(', ')}`);
  }

  const scheduleText = text('schedule');
  let schedule: CronOptions | undefined;
  if (scheduleText !== undefined) {
    try {
      schedule = parseCronExpression(scheduleText, 'schedule');
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(err.message);
    }
  }

  const flag = (key: string, fallback: boolean): boolean => {
    const value = text(key);
    if (value === undefined) return fallback;
    const parsed = parseBoolean(value);
    if (parsed === undefined) problems.push(`${key}: "${value}" is not true or false`);
    return parsed ?? fallback;
  };
  const dryRun = flag('dryRun', DEFAULT_DRY_RUN);

  const fractionText = text('maxDeleteFraction');
  let maxDeleteFraction: number | undefined;
  if (fractionText !== undefined) {
    maxDeleteFraction = parseFraction(fractionText);
    if (maxDeleteFraction === undefined) {
      problems.push(
        `maxDeleteFraction: "${fractionText}" is not a number from 0 to 1, e.g. ${DEFAULT_MAX_DELETE_FRACTION}`,
      );
    }
  }

  const list = (key: string, pattern: RegExp, example: string): string[] | undefined => {
    const value = context[key];
    if (value === undefined || value === null || value === '') return undefined;
    const items = Array.isArray(value) ? value.map(String) : (text(key) ?? '').split(',');
    const ids = items.map((s) => s.trim()).filter((s) => s !== '');
    const bad = ids.filter((id) => !pattern.test(id));
    if (bad.length > 0) problems.push(`${key}: ${bad.map((b) => `"${b}"`).join(', ')} not like ${example}`);
    return ids.length > 0 ? ids : undefined;
  };

  const vpcId = text('vpcId');
  if (vpcId !== undefined && !/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) {
    problems.push(`vpcId: "${vpcId}" is not a VPC id like vpc-0123456789abcdef0`);
  }
  const subnetIds = list(
    'subnetIds',
    /^subnet-[0-9a-f]{8,17}$/,
    'subnet-0123456789abcdef0 (comma-separated)',
  );
  const securityGroupIds = list(
    'securityGroupIds',
    /^sg-[0-9a-f]{8,17}$/,
    'sg-0123456789abcdef0 (comma-separated)',
  );
  if (vpcId === undefined && (subnetIds !== undefined || securityGroupIds !== undefined)) {
    problems.push('subnetIds and securityGroupIds need vpcId: pass -c vpcId=vpc-... as well');
  }

  const containerName = text('containerName');
  const configPath = text('configPath');
  const policyFile = text('policyFile') ?? options.defaultPolicyFile;
  const credentialsParameter = text('credentialsParameter');
  const caParameter = text('caParameter');
  const parameterKeyArn = text('parameterKeyArn');
  const alarmEmail = text('alarmEmail');
  const optionalFlag = (key: string): boolean | undefined =>
    text(key) === undefined ? undefined : flag(key, false);
  const allowManualApply = optionalFlag('allowManualApply');
  const allowInsecureHttp = optionalFlag('allowInsecureHttp');
  const realmHostsValue = context.tokenRealmHosts;
  const realmHostItems = Array.isArray(realmHostsValue)
    ? realmHostsValue.map(String)
    : parseHostList(text('tokenRealmHosts') ?? '');
  const tokenRealmHosts = realmHostItems.map((h) => normalizeRealmHost(h) ?? h);
  const badHosts = realmHostItems.filter((h) => normalizeRealmHost(h) === undefined);
  if (badHosts.length > 0) {
    problems.push(
      `tokenRealmHosts: ${badHosts.map((h) => `"${h}"`).join(', ')} not ${REALM_HOST_FORM} (comma-separated)`,
    );
  }
  if (
    parameterKeyArn !== undefined &&
    !/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/.test(parameterKeyArn)
  ) {
    problems.push(
      `parameterKeyArn: "${parameterKeyArn}" is not a KMS key ARN like ` +
        'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab (an alias ARN cannot be granted)',
    );
  }

  const storage = text('storage');
  if (storage !== undefined) {
    const parsed = parseStorageSetting(storage);
    if ('problem' in parsed) problems.push(`storage: "${storage}" ${parsed.problem}`);
  }

  const undoText = text('undoWindowHours');
  let undoWindowHours: number | undefined;
  if (undoText !== undefined) {
    undoWindowHours = parseUndoWindowHours(undoText);
    if (undoWindowHours === undefined)
      problems.push(`undoWindowHours: "${undoText}" is not ${UNDO_WINDOW_FORM}`);
  }

  const engineText = text('engine');
  let engine: Engine | undefined;
  if (engineText !== undefined) {
    if (isEngine(engineText)) engine = engineText;
    else problems.push(`engine: "${engineText}" is not one of ${ENGINES.join(', ')}`);
  }
  const wholeNumber = (key: (typeof CONTEXT_KEYS)[number], least: number, most: number, unit = '') => {
    const raw = text(key);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (/^\d+$/.test(raw) && n >= least && n <= most) return n;
    problems.push(`${key}: "${raw}" is not a whole number ${unit}from ${least} to ${most}`);
    return undefined;
  };
  const workflowConcurrency = wholeNumber('workflowConcurrency', 1, MAX_WORKFLOW_CONCURRENCY);
  const workflowBatchTags = wholeNumber('workflowBatchTags', 1, MAX_BATCH_TAGS);
  const workflowBatchRepositories = wholeNumber('workflowBatchRepositories', 1, MAX_BATCH_REPOSITORIES);
  const workflowWholeRunMemorySize = wholeNumber(
    'workflowWholeRunMemorySize',
    LAMBDA_MEMORY_MB.least,
    LAMBDA_MEMORY_MB.most,
    'of MB ',
  );

  if (problems.length > 0) {
    throw new ConfigError(`Cannot build the stack from the CDK context:\n  - ${problems.join('\n  - ')}`);
  }

  return {
    registryUrl: registryUrl!,
    instanceId,
    instanceTag,
    containerName,
    configPath,
    gcMode,
    policyFile,
    schedule,
    dryRun,
    maxDeleteFraction,
    credentialsParameter,
    caParameter,
    parameterKeyArn,
    vpcId,
    subnetIds,
    securityGroupIds,
    alarmEmail,
    allowManualApply,
    tokenRealmHosts: tokenRealmHosts.length > 0 ? tokenRealmHosts : undefined,
    allowInsecureHttp,
    storage,
    undoWindowHours,
    engine,
    workflowConcurrency,
    workflowBatchTags,
    workflowBatchRepositories,
    workflowWholeRunMemorySize,
  };
}
