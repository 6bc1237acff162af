// The RegistryJanitor construct: the scheduled Lambda that applies the retention policy to a self-hosted registry
// and runs garbage-collect on its host over SSM, with least-privilege IAM, a failure queue, alarms and a dashboard.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ArnFormat,
  Aws,
  CfnElement,
  Duration,
  RemovalPolicy,
  Stack,
  TimeZone,
  Token,
  Validations,
} from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IAlarm,
  type IMetric,
  Metric,
  SingleValueWidget,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import {
  AnyPrincipal,
  Effect,
  ManagedPolicy,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import { Key, KeySpec, KeyUsage, type IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, QueryDefinition, QueryString, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { checkConfig, type ProblemNames } from '../lambda/config.ts';
import {
  CACHE_EXPIRATION_DAYS,
  DEFAULT_DRY_RUN,
  DEFAULT_SCHEDULE as DEFAULT_SCHEDULE_UTC,
  DEFAULT_SERVICE_NAME,
  ENV,
  GC_MODES,
  METRICS,
  METRIC_NAMESPACE,
  normalizeRegistryUrl,
  parseInstanceTag,
  registryUrlProblem,
  type GcMode,
} from '../lambda/core/contract.ts';
import { ConfigError, errorMessage } from '../lambda/core/errors.ts';
import { GcDocument } from './gc-document.ts';
import { parsePolicy, validatePolicy, type Policy, type PolicyDocument } from '../lambda/core/policy.ts';

export { CACHE_EXPIRATION_DAYS, DEFAULT_SERVICE_NAME, GC_MODES, METRIC_NAMESPACE, type GcMode };

/** Nightly at 03:00 UTC (the contract's DEFAULT_SCHEDULE). */
export const DEFAULT_SCHEDULE = ScheduleExpression.cron({
  ...DEFAULT_SCHEDULE_UTC,
  timeZone: TimeZone.ETC_UTC,
});

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const HANDLER_ENTRY = fileURLToPath(new URL('../lambda/handler.ts', import.meta.url));
const LOCK_FILE = fileURLToPath(new URL('../package-lock.json', import.meta.url));
/** Lambda's limit on the total size of a function's environment variables. */
const ENVIRONMENT_LIMIT_BYTES = 4096;
/** Size assumed for a value only known at deploy time (a bucket name is at most 63 characters). */
const TOKEN_SIZE_ESTIMATE = 64;

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
   * tags needs about 100 CPU-seconds besides its memory (`npm run bench -- --mode memory`: 232 MB peak under the
   * heap limits the runtime sets for 256 MB, 275 MB with a warm cache; over HTTP more).
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
   * More environment variables for the function (e.g. `CONCURRENCY`, `GC_TIMEOUT_SECONDS`), merged with the ones
   * this construct sets. A variable that a prop controls must be set through that prop.
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
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
  [ENV.serviceName]: 'serviceName',
  [ENV.metricsNamespace]: `(fixed: ${METRIC_NAMESPACE})`,
};

/** The function's parser at synth time names each problem by the prop behind it (`environment.X` for the rest). */
const PROP_NAMES: ProblemNames = {
  name: (variable) => CONTROLLED_VARIABLES[variable] ?? `environment.${variable}`,
  subject: (variable, value) => {
    const prop = PROP_NAMES.name(variable);
    return value === undefined ? `${prop}:` : `${prop}: "${value}"`;
  },
};

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
  /** The manifest cache (facts about immutable manifests, kept between runs). */
  public readonly cacheBucket: Bucket;
  /** HMAC key that signs the manifest cache, so nothing but the function can change what it reads back. */
  public readonly cacheKey: Key;
  public readonly alarmTopic: ITopic;
  public readonly alarms: readonly IAlarm[];
  public readonly dashboard: Dashboard;
  /** The SSM Command document with the GC script: the only one the function may run. */
  public readonly gcDocument: GcDocument;

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
          expiration: Duration.days(CACHE_EXPIRATION_DAYS),
          noncurrentVersionExpiration: Duration.days(CACHE_EXPIRATION_DAYS),
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
    if (props.vpc) {
      this.role.addManagedPolicy(
        ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'),
      );
    }

    // Only the function writes the cache: a Deny for every other principal, whatever their own policies allow.
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
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': this.role.roleArn } },
      }),
    );
    this.cacheKey = new Key(this, 'CacheMacKey', {
      description: 'registry-janitor: HMAC over the manifest cache',
      keySpec: KeySpec.HMAC_256,
      keyUsage: KeyUsage.GENERATE_VERIFY_MAC,
      removalPolicy: RemovalPolicy.DESTROY,
    });

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
      entry: HANDLER_ENTRY,
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: LOCK_FILE,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
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
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        // ESM output has no `require`; CommonJS dependencies bundled inside still call it.
        banner:
          "import { createRequire as __janitorCreateRequire } from 'node:module'; " +
          'const require = __janitorCreateRequire(import.meta.url);',
        // Bundle the AWS SDK too: the function then runs the SDK version the tests ran, not the runtime's.
        externalModules: [],
        forceDockerBundling: false,
      },
    });

    this.grantRunCommand(props);
    this.grantParameters(props);
    this.grantCache();

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
      target: new LambdaInvoke(this.janitorFunction, {
        role: schedulerRole,
        input: ScheduleTargetInput.fromObject({}),
        retryAttempts: 0,
        deadLetterQueue: this.failureQueue,
      }),
    });

    this.alarmTopic = props.alarmTopic ?? this.createTopic(props.alarmEmail);
    this.alarms = this.createAlarms(serviceName);
    this.dashboard = this.createDashboard(serviceName);

    new QueryDefinition(this, 'PlanQuery', {
      queryDefinitionName: `${serviceName}/${Stack.of(this).stackName}/${id}/runs`,
      queryString: new QueryString({
        fields: ['@timestamp', 'function_request_id', 'level', 'message', '@message'],
        filterStatements: ['ispresent(level)'],
        sort: '@timestamp asc',
        limit: 10000,
      }),
      logGroups: [this.logGroup],
    });

    this.acknowledgeNagFindings(props, schedulerRole);
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

  private grantParameters(props: RegistryJanitorProps): void {
    const names = [props.credentialsParameter, props.caParameter].filter((n): n is string => n !== undefined);
    if (names.length === 0) return;
    const stack = Stack.of(this);
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ReadRegistryParameters',
        actions: ['ssm:GetParameter'],
        resources: names.map((name) => parameterArn(stack, name)),
      }),
    );
    if (props.parameterKey) {
      this.role.addToPrincipalPolicy(
        new PolicyStatement({
          sid: 'DecryptRegistryParameters',
          actions: ['kms:Decrypt'],
          resources: [props.parameterKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `ssm.${Aws.REGION}.amazonaws.com` } },
        }),
      );
    }
  }

  private grantCache(): void {
    // Get and Put only: objects expire by lifecycle, so the function never deletes. ListBucket makes a miss
    // answer 404 instead of 403.
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'UseManifestCache',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [this.cacheBucket.arnForObjects('*')],
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

  private createTopic(email: string | undefined): Topic {
    const topic = new Topic(this, 'AlarmTopic', { displayName: 'registry-janitor alarms', enforceSSL: true });
    if (email !== undefined) topic.addSubscription(new EmailSubscription(email));
    Validations.of(topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed SNS key, and alarm messages ' +
        'carry no secrets (alarm names and metric values). Pass alarmTopic to use a topic with your own KMS key.',
    });
    return topic;
  }

  private createAlarms(serviceName: string): IAlarm[] {
    const fn = this.janitorFunction;
    const runMetric = (metricName: string) =>
      janitorMetric(metricName, serviceName, 'Sum', Duration.minutes(5));
    const specs: { id: string; metric: IMetric; description: string }[] = [
      {
        id: 'FunctionErrors',
        metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        description: 'The registry-janitor run failed (threw or timed out); its log shows why.',
      },
      {
        id: 'GcFailures',
        metric: runMetric(METRICS.gcFailures),
        description:
          'garbage-collect failed or timed out on the registry host; the run log has its output tail.',
      },
      {
        id: 'VerifyFailures',
        metric: runMetric(METRICS.verifyFailures),
        description: 'After the run, a tag the policy keeps no longer resolves: check the registry now.',
      },
      {
        id: 'FailedRuns',
        metric: this.failureQueue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        description:
          'A scheduled run failed, expired while throttled, or could not be delivered; the failure queue holds why.',
      },
    ];
    const action = new SnsAction(this.alarmTopic);
    return specs.map(({ id, metric, description }) => {
      const alarm = new Alarm(this, `${id}Alarm`, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      alarm.addAlarmAction(action);
      return alarm;
    });
  }

  private createDashboard(serviceName: string): Dashboard {
    const daily = (metricName: string, statistic = 'Sum') =>
      janitorMetric(metricName, serviceName, statistic, Duration.days(1));
    const fn = this.janitorFunction;
    const dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(30) });
    dashboard.addWidgets(
      new TextWidget({
        markdown:
          `## registry-janitor\nMetrics per day, namespace \`${METRIC_NAMESPACE}\`, service \`${serviceName}\`. ` +
          'A dry run reports what it would delete in the function log.',
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      new SingleValueWidget({
        title: 'Last 30 days',
        metrics: [daily(METRICS.tagsDeleted), daily(METRICS.manifestsDeleted), daily(METRICS.bytesFreed)],
        period: Duration.days(30),
        width: 24,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Tags and manifests deleted',
        left: [daily(METRICS.tagsDeleted), daily(METRICS.manifestsDeleted)],
      }),
      new GraphWidget({ title: 'Bytes freed', left: [daily(METRICS.bytesFreed)] }),
      new GraphWidget({
        title: 'Duration (seconds)',
        left: [daily(METRICS.runDuration, 'Maximum'), daily(METRICS.gcDuration, 'Maximum')],
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Failures',
        left: [daily(METRICS.errors), daily(METRICS.gcFailures), daily(METRICS.verifyFailures)],
      }),
      new GraphWidget({
        title: 'Function',
        left: [
          fn.metricInvocations({ period: Duration.days(1) }),
          fn.metricErrors({ period: Duration.days(1) }),
          fn.metricThrottles({ period: Duration.days(1) }),
        ],
      }),
      new AlarmStatusWidget({ title: 'Alarms', alarms: [...this.alarms] }),
    );
    return dashboard;
  }

  /** cdk-nag AwsSolutions findings we accept, each with the reason (see test/lib/nag.test.ts). */
  private acknowledgeNagFindings(props: RegistryJanitorProps, schedulerRole: Role): void {
    const policy = this.role.node.tryFindChild('DefaultPolicy') ?? this.role;
    const ack = (id: string, reason: string) => Validations.of(policy).acknowledge({ id, reason });
    ack(
      'AwsSolutions-IAM5[Resource::*]',
      'ssm:GetCommandInvocation, ListCommandInvocations and CancelCommand have no resource-level permissions ' +
        '(Service Authorization Reference); SendCommand, the one that acts, is scoped to the document and host.',
    );
    ack(
      'AwsSolutions-IAM5[Resource::<' + logicalIdOf(this.cacheBucket) + '.Arn>/*]',
      'The function gets and puts objects only in its own manifest-cache bucket; it names the cache object at run time.',
    );
    if (props.instanceTag !== undefined) {
      ack(
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
        'The host is chosen by tag: SendCommand is allowed on instances only under an ssm:resourceTag condition.',
      );
    }
    if (props.vpc) {
      Validations.of(this.role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          'The AWS-managed policy for Lambda network interfaces in a VPC; its EC2 actions need Resource "*" anyway.',
      });
    }
    Validations.of(schedulerRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${logicalIdOf(this.janitorFunction)}.Arn>:*]`,
      reason:
        'Scheduler may invoke this one function; the :* suffix covers its versions and aliases (grantInvoke).',
    });
    Validations.of(this.janitorFunction).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Pinned to nodejs22.x, the line the bundle targets (esbuild node22) and the project is tested on; ' +
        'moving to a newer runtime is a deliberate, tested change.',
    });
    Validations.of(this.cacheBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'A cache of immutable manifest facts keyed by digest, rebuilt if lost; access logs would need a second ' +
        'bucket and carry no audit value. Deletes in the registry are logged by the function itself.',
    });
    Validations.of(this.failureQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue (Lambda on-failure destination and Scheduler DLQ).',
    });
  }
}

/** The logical id cdk-nag names a resource by in its finding ids, e.g. `AwsSolutions-IAM5[Resource::<Id.Arn>/*]`. */
function logicalIdOf(construct: Construct): string {
  const child = construct.node.defaultChild;
  if (!(child instanceof CfnElement))
    throw new Error(`${construct.node.path} has no CloudFormation resource`);
  return Stack.of(construct).getLogicalId(child);
}

function janitorMetric(metricName: string, serviceName: string, statistic: string, period: Duration): Metric {
  return new Metric({
    namespace: METRIC_NAMESPACE,
    metricName,
    dimensionsMap: { service: serviceName },
    statistic,
    period,
  });
}

function instanceArn(stack: Stack, id: string): string {
  // Hybrid managed nodes (mi-…) are SSM resources, EC2 instances are EC2 resources.
  return id.startsWith('mi-')
    ? stack.formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: id })
    : stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: id });
}

function parameterArn(stack: Stack, name: string): string {
  if (name.startsWith('arn:')) return name;
  // A name with a path (/a/b) is stored as parameter/a/b; a plain name as parameter/name.
  return stack.formatArn({
    service: 'ssm',
    resource: 'parameter',
    resourceName: name.replace(/^\//, ''),
    arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
  });
}

/** What the construct derives before building the environment (tokens for what it creates). */
interface Derived {
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
    [ENV.maxDeleteFraction]:
      props.maxDeleteFraction === undefined ? undefined : String(props.maxDeleteFraction),
    [ENV.credentialsParameter]: props.credentialsParameter,
    [ENV.caParameter]: props.caParameter,
    [ENV.cacheBucket]: derived.cacheBucket,
    [ENV.cacheHmacKeyId]: derived.cacheHmacKeyId,
    [ENV.serviceName]: derived.serviceName,
    [ENV.metricsNamespace]: METRIC_NAMESPACE,
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

function buildEnvironment(props: RegistryJanitorProps, derived: Derived): Record<string, string> {
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
function checkProps(props: RegistryJanitorProps): void {
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

  if (props.policy !== undefined && props.policyFile !== undefined) {
    problems.push(
      'policy and policyFile are both set: set only one (an object, or the path of a YAML/JSON file)',
    );
  } else if (props.policy === undefined && props.policyFile === undefined) {
    problems.push(
      'set policyFile (e.g. retention-policy.yaml) or policy (an object) to give the retention policy',
    );
  }

  if (
    known(props.memorySize) &&
    !(Number.isInteger(props.memorySize) && props.memorySize >= 128 && props.memorySize <= 10240)
  ) {
    problems.push(`memorySize: ${props.memorySize} is not a whole number of MB from 128 to 10240`);
  }

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

  if (problems.length > 0) {
    throw new ConfigError(`RegistryJanitor: invalid props:\n  - ${problems.join('\n  - ')}`);
  }
}

function loadPolicy(props: RegistryJanitorProps): Policy {
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

function assertLocalEsbuild(): void {
  try {
    createRequire(import.meta.url).resolve('esbuild/package.json');
  } catch (err) {
    throw new ConfigError(
      'esbuild is not installed: run `npm ci` in the repository. The function is bundled locally with esbuild; ' +
        'without it the CDK would try Docker, which this project does not use.',
      { cause: err },
    );
  }
}
