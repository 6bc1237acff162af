// The RegistryJanitor construct: the scheduled Lambda that applies the retention policy to a self-hosted registry and
// runs garbage-collect on its host over SSM: function, role and grants, bucket, key, document, queue and schedule.
// Its environment and synth-time check, its monitoring and its cdk-nag acknowledgements live in rooms of their own.
import { fileURLToPath } from 'node:url';
import { Aws, Duration, RemovalPolicy, Stack, TimeZone } from 'aws-cdk-lib';
import type { Dashboard, IAlarm } from 'aws-cdk-lib/aws-cloudwatch';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import { AnyPrincipal, Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key, KeySpec, KeyUsage, type IKey } from 'aws-cdk-lib/aws-kms';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke, StepFunctionsStartExecution } from 'aws-cdk-lib/aws-scheduler-targets';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  CACHE_EXPIRATION_DAYS,
  DEFAULT_DRY_RUN,
  DEFAULT_REPORTS_PREFIX,
  HISTORY_LISTING_EXPIRATION_DAYS,
  HISTORY_LISTING_PREFIX,
  JOURNAL_PREFIX,
  MANIFEST_CACHE_PREFIX,
  REPORTS_EXPIRATION_DAYS,
  DEFAULT_SCHEDULE as DEFAULT_SCHEDULE_UTC,
  DEFAULT_ENGINE,
  DEFAULT_SERVICE_NAME,
  DEFAULT_WORKFLOW_CONCURRENCY,
  DEFAULT_WORKFLOW_WHOLE_RUN_MEMORY_MB,
  defaultGcPollSeconds,
  GC_MODES,
  WORKFLOW_ENV,
  WORKFLOW_RUNS_EXPIRATION_DAYS,
  WORKFLOW_RUNS_PREFIX,
  type Engine,
  METRIC_NAMESPACE,
  parseInstanceTag,
  type GcMode,
} from '../lambda/core/contract.ts';
import type { Policy, PolicyDocument } from '../lambda/core/policy.ts';
import { assertLocalEsbuild, bundledFunction } from './function-bundling.ts';
import {
  buildEnvironment,
  checkProps,
  gcTimeoutSecondsOf,
  loadPolicy,
  storageSettingOf,
} from './function-environment.ts';
import { GcDocument } from './gc-document.ts';
import {
  grantHistoryListing,
  grantNetworkInterfaces,
  grantRegistryParameters,
  instanceArn,
  UPLOAD_ACTIONS,
} from './grants.ts';
import { createMonitoring } from './monitoring.ts';
import { acknowledgeNagFindings } from './nag-acknowledgements.ts';
import { JanitorWorkflow } from './workflow.ts';

export { CACHE_EXPIRATION_DAYS, DEFAULT_SERVICE_NAME, GC_MODES, METRIC_NAMESPACE, type Engine, type GcMode };

/** Nightly at 03:00 UTC (the contract's DEFAULT_SCHEDULE). */
export const DEFAULT_SCHEDULE = ScheduleExpression.cron({
  ...DEFAULT_SCHEDULE_UTC,
  timeZone: TimeZone.ETC_UTC,
});

const HANDLER_ENTRY = fileURLToPath(new URL('../lambda/handler.ts', import.meta.url));

export interface RegistryJanitorProps {
  /**
   * Base URL of the registry's HTTP API (the root, without a path), e.g. `https://registry.internal:5000`.
   */
  readonly registryUrl: string;
  /**
   * EC2 instance id (`i-…`, or `mi-…` for a hybrid managed node) of the registry host, where garbage-collect runs
   * through SSM Run Command. Set this or `instanceTag`.
   * @default - none; `instanceTag` must be set
   */
  readonly instanceId?: string;
  /**
   * EC2 tag `Key=Value` that selects the registry host; it must match exactly one managed instance. Set this or
   * `instanceId`.
   * @default - none; `instanceId` must be set
   */
  readonly instanceTag?: string;
  /**
   * Name of the registry container on the host.
   * @default - the handler's default, `registry`
   */
  readonly containerName?: string;
  /**
   * Path of the registry's config file inside the container.
   * @default - the `.yml` file the container was started with, else `/etc/docker/registry/config.yml` on
   * distribution 2.8 and `/etc/distribution/config.yml` on v3
   */
  readonly configPath?: string;
  /**
   * How garbage-collect keeps pushes out while it runs: `readonly` restarts the registry read-only, `offline`
   * stops it, `online` runs with the registry serving (only safe when nobody pushes).
   * @default - the handler's default, `readonly`
   */
  readonly gcMode?: GcMode;
  /**
   * The retention policy as an object (the same schema as the policy file). Set this or `policyFile`.
   * @default - none; `policyFile` must be set
   */
  readonly policy?: PolicyDocument;
  /**
   * A YAML or JSON retention policy file, read and validated at synth time with the Lambda's own schema, so a bad
   * policy fails `cdk synth` with the Lambda's error message. Relative paths resolve against the working
   * directory. Set this or `policy`.
   * @default - none; `policy` must be set
   */
  readonly policyFile?: string;
  /**
   * When the janitor runs (EventBridge Scheduler).
   * @default - nightly at 03:00 UTC, `cron(0 3 * * ? *)`
   */
  readonly schedule?: ScheduleExpression;
  /**
   * Only log the plan (what would be deleted) without deleting anything or running garbage-collect. A fresh
   * deploy only reports; set this to false once you have read a plan you agree with.
   * @default true
   */
  readonly dryRun?: boolean;
  /**
   * Delete guard: a run that would delete more than this fraction (0..1) of a registry's tags stops instead.
   * @default - the handler's default, 0.5
   */
  readonly maxDeleteFraction?: number;
  /**
   * Name (or ARN) of an SSM SecureString holding the registry credentials, `user:password` or
   * `{"username": …, "password": …}`. The function may read only this parameter.
   * @default - no credentials (anonymous access)
   */
  readonly credentialsParameter?: string;
  /**
   * Name (or ARN) of an SSM parameter holding a PEM CA bundle for a registry with a private CA.
   * @default - the system trust store
   */
  readonly caParameter?: string;
  /**
   * The customer-managed KMS key encrypting `credentialsParameter`/`caParameter`; the function gets
   * `kms:Decrypt` on it, only through SSM.
   * @default - the AWS-managed `aws/ssm` key, which needs no grant
   */
  readonly parameterKey?: IKey;
  /**
   * VPC to run the function in, for a registry on a private network. The subnets need a route to the SSM and S3
   * APIs (a NAT gateway, or VPC endpoints for ssm and s3).
   * @default - not in a VPC
   */
  readonly vpc?: IVpc;
  /**
   * Subnets for the function; needs `vpc`.
   * @default - the VPC's private subnets
   */
  readonly vpcSubnets?: SubnetSelection;
  /**
   * Security groups for the function; needs `vpc`. They must allow outbound traffic to the registry.
   * @default - a new group allowing all outbound traffic
   */
  readonly securityGroups?: ISecurityGroup[];
  /**
   * How long the function's logs (which hold each run's plan) are kept.
   * @default RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: RetentionDays;
  /**
   * Topic the alarms notify. Give your own (e.g. one encrypted with your KMS key), or leave unset to get a new one.
   * @default - a new topic
   */
  readonly alarmTopic?: ITopic;
  /**
   * E-mail address subscribed to the new alarm topic (confirm the subscription e-mail AWS sends). Not with
   * `alarmTopic`: subscribe the address to your own topic yourself.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * Memory of the function in MB. Lambda gives CPU in proportion (1,769 MB = one vCPU), and a plan over 100,000
   * tags needs about 40 CPU-seconds besides its memory (`npm run bench -- --mode memory`: 234-242 MB peak under
   * the heap limits the runtime sets for 256 MB, 244-271 MB with a warm cache; over HTTP more). With engine
   * 'workflow', also the memory of each step function that works on one batch (the others get
   * `workflowWholeRunMemorySize`).
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * The `service` dimension of the metrics and alarms. Give each janitor its own when one account cleans
   * several registries, so their metrics stay apart.
   * @default 'registry-janitor'
   */
  readonly serviceName?: string;
  /**
   * Let a manual invoke ask for a real run (`{"dryRun": false}`) although the stack is a dry run. Without it such a
   * payload is refused and deletes nothing; a payload can always make a run safer (dry run, skip GC, fewer
   * repositories).
   * @default false
   */
  readonly allowManualApply?: boolean;
  /**
   * Hosts other than the registry's (`host` or `host:port`) whose token realm may receive the registry credentials.
   * A realm on any other host is refused, and an `http:` realm is always refused for an https registry.
   * @default - only the registry's own host
   */
  readonly tokenRealmHosts?: readonly string[];
  /**
   * Send the registry credentials to a plain-http registry URL (a network you trust). Without it, credentials with
   * an `http://` registryUrl fail the run with an error saying so.
   * @default false
   */
  readonly allowInsecureHttp?: boolean;
  /**
   * Where untagged history (the manifests no tag points at) is listed from, so that rules with
   * `untagged: { deleteAfterDays: N }` can delete it and nothing a staying untagged manifest references is deleted:
   * - `container`: the registry's filesystem storage, listed read-only inside the registry container through this
   *   construct's SSM document (the host needs `curl` or `wget`; the listing comes back gzip'd through a presigned
   *   PUT URL valid for one key under `history-listing/` in the construct's bucket, for 10 minutes);
   * - `s3://BUCKET/ROOTDIRECTORY`: the registry's S3 storage (the driver's bucket and rootdirectory), listed with
   *   ListObjectsV2; the function gets `s3:ListBucket` on that bucket for that prefix only;
   * - `none`: no listing; untagged manifests are left alone.
   * A listing that fails or is partial deletes no untagged manifest that run (the plan says why); tag deletes go
   * ahead.
   * @default 'container'
   */
  readonly storage?: string;
  /**
   * Two-phase apply, whenever `storage` is not `none`: a run removes the tags its plan deletes instead of deleting
   * their manifests, records each in the journal (`journal/<host>.json` in the construct's bucket) with its exact
   * bytes, and a later run's sweep deletes a manifest still untagged and not pushed again once this many hours have
   * passed; until then the restore payload (`{"restore":{"run":"<id>"}}`) brings it back. A promotion pushed while a
   * run applies (the same manifest under a new tag) keeps its tag. 0: the sweep runs in the same run, right after
   * the untagging. Not allowed with `storage: 'none'`: without a listing the sweep cannot see untagged manifests,
   * so such a stack deletes by digest. A whole number from 0 to 8760.
   * @default 24 (with a storage listing); none with `storage: 'none'`
   */
  readonly undoWindowHours?: number;
  /**
   * More environment variables for the function (e.g. `CONCURRENCY`, `GC_TIMEOUT_SECONDS`), merged with the ones
   * this construct sets. A variable that a prop controls must be set through that prop.
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * What the schedule starts:
   * - `lambda`: the whole run in one invocation of the main function (up to 15 minutes);
   * - `workflow`: a Step Functions state machine (created only then) that runs the same steps in batches, each
   *   its own invocation, and waits for garbage-collect through SSM for as long as the GC timeout allows. Needs
   *   `instanceId`.
   * Either way the main function stays, for a manual `aws lambda invoke` of the whole run.
   * @default 'lambda'
   */
  readonly engine?: Engine;
  /**
   * Iterations of the workflow's Map states (inventory, apply and verify batches) at once: the registry's own
   * capacity is the limit (see the README's performance section). From 1 to 40.
   * @default 4
   */
  readonly workflowConcurrency?: number;
  /**
   * The most tags in one batch of the workflow's inventory, apply and verify Maps: each batch is one invocation,
   * so it bounds each invocation's time (about 6.6 ms a tag at 20 ms round trips; see the README). A repository is
   * never split: one with more tags is a batch of its own. From 1 to 200,000.
   * @default 5000
   */
  readonly workflowBatchTags?: number;
  /**
   * The most repositories in one batch of the workflow (for registries of many small repositories). From 1 to
   * 10,000. A run that would make more than 400 batches fails at its probe (Step Functions keeps 25,000 events
   * per execution): raise the batch sizes for larger registries.
   * @default 500
   */
  readonly workflowBatchRepositories?: number;
  /**
   * Memory in MB of the workflow's steps that hold the whole run rather than one batch: the plan step (every
   * batch's part of the inventory, the plan and its page), collect (every batch's deletions) and report (the whole
   * plan and the page with the outcome). At 101,000 tags they peak at 300-350, 190 and 270 MB (`npm run bench --
   * --mode workflow-memory`), so about 3 GB at 1,000,000. The other steps hold one batch and get `memorySize`.
   * From 128 to 10240.
   * @default 3008
   */
  readonly workflowWholeRunMemorySize?: number;
  /**
   * How long the workflow waits between two looks at the garbage-collect command. It may make at most 1,000
   * looks over the GC timeout and 10 minutes more (an execution keeps at most 25,000 events).
   * @default Duration.minutes(1), or longer where the GC timeout is over 16 hours (its 1,000th part)
   */
  readonly gcPollInterval?: Duration;
}

/**
 * Cleans a self-hosted Docker registry on a schedule: lists tags, applies the retention policy, deletes what it
 * does not keep, then runs garbage-collect on the registry host through SSM Run Command. Dry run by default.
 */
export class RegistryJanitor extends Construct {
  /** The validated retention policy the function runs with. */
  public readonly policy: Policy;
  public readonly janitorFunction: NodejsFunction;
  public readonly role: Role;
  public readonly logGroup: LogGroup;
  public readonly schedule: Schedule;
  /** Failed and dropped runs (async invocations that failed, expired, or could not be delivered). */
  public readonly failureQueue: Queue;
  /**
   * The janitor's bucket: the manifest cache (facts about immutable manifests, kept between runs) under
   * `manifest-cache/`, and each run's HTML report and JSON plan under `reports/<date>/`.
   */
  public readonly cacheBucket: Bucket;
  /** Where the function writes its reports, `s3://<bucket>/reports/` (kept 90 days). */
  public readonly reportsLocation: string;
  /** HMAC key that signs the manifest cache, so nothing but the function can change what it reads back. */
  public readonly cacheKey: Key;
  public readonly alarmTopic: ITopic;
  public readonly alarms: readonly IAlarm[];
  public readonly dashboard: Dashboard;
  /** The SSM Command document with the GC script: the only one the function may run. */
  public readonly gcDocument: GcDocument;
  /** The Step Functions workflow, with engine `workflow`. */
  public readonly workflow?: JanitorWorkflow;

  public constructor(scope: Construct, id: string, props: RegistryJanitorProps) {
    super(scope, id);
    checkProps(props);
    assertLocalEsbuild();
    this.policy = loadPolicy(props);

    const serviceName = props.serviceName ?? DEFAULT_SERVICE_NAME;
    const dryRun = props.dryRun ?? DEFAULT_DRY_RUN;

    this.logGroup = new LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? RetentionDays.THREE_MONTHS,
      // The logs are the record of what was deleted and why: they outlive the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.failureQueue = new Queue(this, 'FailedRuns', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    this.cacheBucket = new Bucket(this, 'ManifestCache', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Versioned: an overwritten cache can be inspected after the fact.
      versioned: true,
      lifecycleRules: [
        {
          prefix: MANIFEST_CACHE_PREFIX,
          expiration: Duration.days(CACHE_EXPIRATION_DAYS),
          noncurrentVersionExpiration: Duration.days(CACHE_EXPIRATION_DAYS),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        {
          prefix: DEFAULT_REPORTS_PREFIX,
          expiration: Duration.days(REPORTS_EXPIRATION_DAYS),
          noncurrentVersionExpiration: Duration.days(1),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        {
          prefix: HISTORY_LISTING_PREFIX,
          expiration: Duration.days(HISTORY_LISTING_EXPIRATION_DAYS),
          noncurrentVersionExpiration: Duration.days(1),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      autoDeleteObjects: false,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Our own role: the default one carries AWSLambdaBasicExecutionRole (logs:* on every log group).
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `registry-janitor for ${props.registryUrl}`,
    });
    this.logGroup.grantWrite(this.role);

    this.cacheKey = new Key(this, 'CacheMacKey', {
      description: 'registry-janitor: HMAC over the manifest cache',
      keySpec: KeySpec.HMAC_256,
      keyUsage: KeyUsage.GENERATE_VERIFY_MAC,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.reportsLocation = `s3://${this.cacheBucket.bucketName}/${DEFAULT_REPORTS_PREFIX}`;
    this.gcDocument = new GcDocument(this, 'GcDocument');
    const environment = buildEnvironment(props, {
      cacheHmacKeyId: this.cacheKey.keyArn,
      gcDocument: this.gcDocument.documentName,
      policyJson: JSON.stringify(this.policy.document),
      dryRun,
      serviceName,
      cacheBucket: this.cacheBucket.bucketName,
    });

    this.janitorFunction = new NodejsFunction(this, 'Function', {
      description: `Cleans the registry at ${props.registryUrl} (retention policy, deletes, garbage-collect)`,
      ...bundledFunction(HANDLER_ENTRY),
      memorySize: props.memorySize ?? 1024,
      timeout: Duration.minutes(15),
      // Two runs at once could delete from a plan the other invalidated.
      reservedConcurrentExecutions: 1,
      role: this.role,
      logGroup: this.logGroup,
      environment,
      // A failed scheduled run is not retried (the next night's run starts from a fresh inventory), and a run
      // throttled behind a manual one waits at most an hour so deletes stay in quiet hours; both land in the queue.
      retryAttempts: 0,
      maxEventAge: Duration.hours(1),
      onFailure: new SqsDestination(this.failureQueue),
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
    });

    if (props.vpc)
      grantNetworkInterfaces(
        this.role,
        props.vpc,
        props.vpcSubnets,
        this.janitorFunction.connections.securityGroups,
      );
    this.grantRunCommand(props);
    grantRegistryParameters(this.role, props);
    this.grantCache();
    this.grantHistoryListing(props);

    if ((props.engine ?? DEFAULT_ENGINE) === 'workflow') {
      this.workflow = this.createWorkflow(props, environment);
    }
    const writers = [this.role.roleArn, ...Object.values(this.workflow?.roles ?? {}).map((r) => r.roleArn)];
    // Only the janitor's functions write the bucket: a Deny for every other principal, whatever their own policies allow.
    this.cacheBucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'OnlyTheJanitorWritesTheCache',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: [
          's3:PutObject',
          's3:DeleteObject',
          's3:DeleteObjectVersion',
          's3:PutObjectAcl',
          's3:PutObjectVersionAcl',
          's3:RestoreObject',
        ],
        resources: [this.cacheBucket.arnForObjects('*')],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': writers.length === 1 ? writers[0] : writers } },
      }),
    );

    // Our own role rather than the stack-wide one Scheduler targets share, so its grants stay with this janitor.
    const schedulerRole = new Role(this, 'SchedulerRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: {
            'aws:SourceAccount': Aws.ACCOUNT_ID,
            'aws:SourceArn': Stack.of(this).formatArn({
              service: 'scheduler',
              resource: 'schedule-group',
              resourceName: 'default',
            }),
          },
        },
      }),
      description: `Invokes the registry-janitor for ${props.registryUrl}`,
    });
    this.schedule = new Schedule(this, 'Schedule', {
      schedule: props.schedule ?? DEFAULT_SCHEDULE,
      description: `registry-janitor for ${props.registryUrl}${dryRun ? ' (dry run)' : ''}`,
      target: this.workflow
        ? new StepFunctionsStartExecution(this.workflow.stateMachine, {
            role: schedulerRole,
            input: ScheduleTargetInput.fromObject({}),
            retryAttempts: 0,
            deadLetterQueue: this.failureQueue,
          })
        : new LambdaInvoke(this.janitorFunction, {
            role: schedulerRole,
            input: ScheduleTargetInput.fromObject({}),
            retryAttempts: 0,
            deadLetterQueue: this.failureQueue,
          }),
    });

    const monitoring = createMonitoring(
      this,
      {
        fn: this.janitorFunction,
        failureQueue: this.failureQueue,
        logGroup: this.logGroup,
        serviceName,
        ...(this.workflow ? { stateMachine: this.workflow.stateMachine } : {}),
        queryName: `${serviceName}/${Stack.of(this).stackName}/${id}/runs`,
      },
      { alarmTopic: props.alarmTopic, alarmEmail: props.alarmEmail },
    );
    this.alarmTopic = monitoring.alarmTopic;
    this.alarms = monitoring.alarms;
    this.dashboard = monitoring.dashboard;

    acknowledgeNagFindings(this, props, schedulerRole);
  }

  private createWorkflow(props: RegistryJanitorProps, environment: Record<string, string>): JanitorWorkflow {
    this.cacheBucket.addLifecycleRule({
      prefix: WORKFLOW_RUNS_PREFIX,
      expiration: Duration.days(WORKFLOW_RUNS_EXPIRATION_DAYS),
      noncurrentVersionExpiration: Duration.days(1),
      abortIncompleteMultipartUploadAfter: Duration.days(1),
    });
    const gcTimeout = gcTimeoutSecondsOf(environment);
    return new JanitorWorkflow(this, 'Workflow', {
      registryUrl: props.registryUrl,
      // checkProps refuses engine 'workflow' without instanceId.
      instanceId: props.instanceId!,
      environment: {
        ...environment,
        ...(props.workflowBatchTags !== undefined
          ? { [WORKFLOW_ENV.batchTags]: String(props.workflowBatchTags) }
          : {}),
        ...(props.workflowBatchRepositories !== undefined
          ? { [WORKFLOW_ENV.batchRepositories]: String(props.workflowBatchRepositories) }
          : {}),
      },
      logGroup: this.logGroup,
      logRetention: props.logRetention ?? RetentionDays.THREE_MONTHS,
      bucket: this.cacheBucket,
      cacheKey: this.cacheKey,
      failureQueue: this.failureQueue,
      gcDocument: this.gcDocument,
      storage: storageSettingOf(props),
      memorySize: props.memorySize ?? 1024,
      wholeRunMemorySize: props.workflowWholeRunMemorySize ?? DEFAULT_WORKFLOW_WHOLE_RUN_MEMORY_MB,
      maxConcurrency: props.workflowConcurrency ?? DEFAULT_WORKFLOW_CONCURRENCY,
      gcTimeoutSeconds: gcTimeout,
      gcPollInterval: props.gcPollInterval ?? Duration.seconds(defaultGcPollSeconds(gcTimeout)),
      credentialsParameter: props.credentialsParameter,
      caParameter: props.caParameter,
      parameterKey: props.parameterKey,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.vpc ? this.janitorFunction.connections.securityGroups : undefined,
    });
  }

  private grantRunCommand(props: RegistryJanitorProps): void {
    const stack = Stack.of(this);
    const document = this.gcDocument.documentArn;
    if (props.instanceId !== undefined) {
      this.role.addToPrincipalPolicy(
        new PolicyStatement({
          sid: 'RunGcOnRegistryHost',
          actions: ['ssm:SendCommand'],
          resources: [document, instanceArn(stack, props.instanceId)],
        }),
      );
      this.role.addToPrincipalPolicy(
        new PolicyStatement({
          sid: 'ReadGcCommandResult',
          // GetCommandInvocation has no resource-level permissions.
          actions: ['ssm:GetCommandInvocation'],
          resources: ['*'],
        }),
      );
      return;
    }
    const { tagKey, tagValue } = parseInstanceTag(props.instanceTag!, 'instanceTag');
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'RunGcDocument',
        actions: ['ssm:SendCommand'],
        resources: [document],
      }),
    );
    // A tag condition cannot sit with the document (documents do not carry the host's tag): its own statement.
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'RunGcOnTaggedHost',
        actions: ['ssm:SendCommand'],
        resources: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
        conditions: { StringEquals: { [`ssm:resourceTag/${tagKey}`]: tagValue } },
      }),
    );
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'FollowGcCommand',
        // None of these has resource-level permissions. ListCommandInvocations finds which host the tag
        // matched; CancelCommand stops a command that reached more than one.
        actions: ['ssm:GetCommandInvocation', 'ssm:ListCommandInvocations', 'ssm:CancelCommand'],
        resources: ['*'],
      }),
    );
  }

  private grantCache(): void {
    // Get and Put only: objects expire by lifecycle, so the function never deletes. ListBucket makes a miss
    // answer 404 instead of 403.
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'UseManifestCache',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [this.cacheBucket.arnForObjects(`${MANIFEST_CACHE_PREFIX}*`)],
      }),
    );
    // The journal: read and replaced whole by every real run (never deleted, so no s3:DeleteObject).
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'UseJournal',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [this.cacheBucket.arnForObjects(`${JOURNAL_PREFIX}*`)],
      }),
    );
    // Reports are written once and read by people (or a presigned URL), never by the function.
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'WriteRunReports',
        actions: UPLOAD_ACTIONS,
        resources: [this.cacheBucket.arnForObjects(`${DEFAULT_REPORTS_PREFIX}*`)],
      }),
    );
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ListManifestCache',
        actions: ['s3:ListBucket'],
        resources: [this.cacheBucket.bucketArn],
      }),
    );
    // MAC operations only: the key can neither encrypt nor be managed from the function.
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'SignManifestCache',
        actions: ['kms:GenerateMac', 'kms:VerifyMac'],
        resources: [this.cacheKey.keyArn],
      }),
    );
  }

  /**
   * Read access to exactly where untagged history is listed from. A container listing: the function signs the
   * host's upload (a presigned PUT for one key under history-listing/, so the host needs no AWS permission of its
   * own) and reads it back. An S3 storage: ListBucket on the registry's bucket for its repositories prefix only
   * (the listing reads keys and their LastModified, never an object).
   */
  private grantHistoryListing(props: RegistryJanitorProps): void {
    grantHistoryListing(this.role, storageSettingOf(props), this.cacheBucket);
  }
}
