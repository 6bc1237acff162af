// The RegistryJanitor construct: what we chose (runtime, limits, schedule, environment, IAM scoped to the host,
// document and parameters, alarms, cache bucket) and one clear error per bad or conflicting prop.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CfnParameter, Stack } from 'aws-cdk-lib';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import { SecurityGroup, Subnet, Vpc } from 'aws-cdk-lib/aws-ec2';
import { Key } from 'aws-cdk-lib/aws-kms';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS } from '../../lambda/core/contract.ts';
import { ConfigError, PolicyError } from '../../lambda/core/errors.ts';
import type { PolicyDocument } from '../../lambda/core/policy.ts';
import { gcDocumentContent } from '../../lib/gc-document.ts';
import { readGcScript } from '../../lambda/gc/registry-gc.ts';
import { RegistryJanitor, type RegistryJanitorProps } from '../../lib/registry-janitor.ts';
import {
  allActions,
  asList,
  createTestApps,
  flatten,
  roleOf,
  statementsOf,
  wildcardActions,
  type Statement,
} from '../support/cfn-template.ts';

const POLICY: PolicyDocument = {
  rules: [
    { repositories: ['base/**'], protect: true },
    { repositories: ['**'], keep: { newest: 5, tags: ['latest'] } },
  ],
};
const BASE: RegistryJanitorProps = {
  registryUrl: 'https://registry.internal:5000',
  instanceId: 'i-0123456789abcdef0',
  policy: POLICY,
};
/** The janitor's own document, by its Ref (CloudFormation names it). */
const DOCUMENT_ARN = expect.stringMatching(
  /^arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}:document\/\$\{JanitorGcDocument[0-9A-F]+\}$/,
) as string;
const INSTANCE_ARN =
  'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/i-0123456789abcdef0';

const apps = createTestApps({ bundle: false });
afterAll(() => apps.dispose());

function synth(
  props: Partial<RegistryJanitorProps> = {},
  extend?: (stack: Stack) => Partial<RegistryJanitorProps>,
) {
  const app = apps.app();
  const stack = new Stack(app, 'Test');
  const janitor = new RegistryJanitor(stack, 'Janitor', { ...BASE, ...extend?.(stack), ...props });
  const template = Template.fromStack(stack);
  return { stack, janitor, template, statements: statementsOf(template, roleOf(template)) };
}

function functionEnvironment(template: Template): Record<string, unknown> {
  const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0] as {
    Properties: { Environment: { Variables: Record<string, unknown> } };
  };
  return fn.Properties.Environment.Variables;
}

describe('RegistryJanitor with defaults', () => {
  let template: Template;
  let statements: Statement[];
  let janitor: RegistryJanitor;
  beforeAll(() => {
    ({ template, statements, janitor } = synth());
  });

  it('runs Node.js 22 on ARM64 for up to 15 minutes, one run at a time, with 1024 MB', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Timeout: 900,
      MemorySize: 1024,
      ReservedConcurrentExecutions: 1,
      Handler: 'index.handler',
    });
  });

  it('logs to its own log group, kept three months and retained with the stack gone', () => {
    const group = new Capture();
    template.hasResourceProperties('AWS::Lambda::Function', { LoggingConfig: { LogGroup: { Ref: group } } });
    expect(template.toJSON().Resources[group.asString()]).toMatchObject({
      Type: 'AWS::Logs::LogGroup',
      Properties: { RetentionInDays: 90 },
      DeletionPolicy: 'Retain',
    });
  });

  it('passes the contract environment: dry run on, the validated policy, the cache bucket, nothing unset', () => {
    const bucket = new Capture();
    const key = new Capture();
    const document = new Capture();
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectEquals({
          REGISTRY_URL: 'https://registry.internal:5000',
          GC_INSTANCE_ID: 'i-0123456789abcdef0',
          GC_DOCUMENT_NAME: { Ref: document },
          RETENTION_POLICY: JSON.stringify(POLICY),
          DRY_RUN: 'true',
          ALLOW_MANUAL_APPLY: 'false',
          CACHE_BUCKET: { Ref: bucket },
          CACHE_HMAC_KEY_ID: { 'Fn::GetAtt': [key, 'Arn'] },
          REPORTS_BUCKET: { Ref: bucket },
          REPORTS_PREFIX: 'reports/',
          HISTORY_STORAGE: 'container',
          HISTORY_LISTING_BUCKET: { Ref: bucket },
          UNDO_WINDOW_HOURS: '24',
          POWERTOOLS_SERVICE_NAME: 'registry-janitor',
          POWERTOOLS_METRICS_NAMESPACE: 'RegistryJanitor',
          NODE_OPTIONS: '--enable-source-maps',
        }),
      },
    });
    expect(template.toJSON().Resources[bucket.asString()].Type).toBe('AWS::S3::Bucket');
    expect(template.toJSON().Resources[key.asString()].Type).toBe('AWS::KMS::Key');
    expect(template.toJSON().Resources[document.asString()].Type).toBe('AWS::SSM::Document');
    expect(JSON.parse(functionEnvironment(template).RETENTION_POLICY as string)).toEqual(
      janitor.policy.document,
    );
  });

  it('runs nightly at 03:00 UTC through EventBridge Scheduler, without retries, failures to the queue', () => {
    const queue = new Capture();
    const fn = new Capture();
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Etc/UTC',
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [fn, 'Arn'] },
        Input: '{}',
        RetryPolicy: Match.objectLike({ MaximumRetryAttempts: 0 }),
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queue, 'Arn'] } },
      },
    });
    const resources = template.toJSON().Resources;
    expect(resources[fn.asString()].Type).toBe('AWS::Lambda::Function');
    expect(resources[queue.asString()].Type).toBe('AWS::SQS::Queue');
  });

  it('does not retry a failed run and sends failures (and runs throttled over an hour) to the queue', () => {
    const queue = new Capture();
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
    });
    expect(template.toJSON().Resources[queue.asString()]).toMatchObject({
      Type: 'AWS::SQS::Queue',
      Properties: { SqsManagedSseEnabled: true },
    });
  });

  it('may SendCommand only its own document, and only to the one host', () => {
    expect(statements.filter((s) => [s.Action].flat().includes('ssm:SendCommand'))).toEqual([
      expect.objectContaining({ Effect: 'Allow', Resource: [DOCUMENT_ARN, INSTANCE_ARN] }),
    ]);
  });

  it('creates its own Command document with the GC script baked in and constrained parameters', () => {
    const documents = Object.values(template.findResources('AWS::SSM::Document'));
    expect(documents).toHaveLength(1);
    const properties = (documents[0] as { Properties: Record<string, unknown> }).Properties;
    expect(properties).toEqual({
      DocumentType: 'Command',
      DocumentFormat: 'JSON',
      Content: gcDocumentContent(),
    });
    const content = properties.Content as {
      schemaVersion: string;
      parameters: Record<string, Record<string, unknown>>;
      mainSteps: { action: string; inputs: { runCommand: string[]; timeoutSeconds: string } }[];
    };
    expect(content.schemaVersion).toBe('2.2');
    expect(content.mainSteps).toHaveLength(1);
    expect(content.mainSteps[0]!.action).toBe('aws:runShellScript');
    expect(content.mainSteps[0]!.inputs.runCommand.join('\n')).toBe(readGcScript().replace(/\n$/, ''));
    // Every value reaches the script as SSM_<name>, none through text; each one constrained all the same.
    for (const [name, parameter] of Object.entries(content.parameters)) {
      if (name === 'executionTimeout') {
        expect(parameter.interpolationType).toBeUndefined();
      } else {
        expect(parameter.interpolationType, name).toBe('ENV_VAR');
      }
      expect(parameter.allowedPattern ?? parameter.allowedValues, name).toBeDefined();
    }
    expect(Object.keys(content.parameters).sort()).toEqual([
      'action',
      'configPath',
      'containerName',
      'deleteUntagged',
      'dryRun',
      'executionTimeout',
      'mode',
      'uploadUrl',
    ]);
    // The listing's URL: empty for garbage-collect, else an http(s) URL with nothing that needs quoting.
    const url = new RegExp(content.parameters.uploadUrl!.allowedPattern as string);
    expect(content.parameters.action!.allowedValues).toEqual(['gc', 'list']);
    expect(url.test('')).toBe(true);
    expect(
      url.test(
        'https://b.s3.eu-west-1.amazonaws.com/history-listing/k.gz?X-Amz-Signature=ab%2Fcd&X-Amz-Expires=600',
      ),
    ).toBe(true);
    for (const bad of [
      'ftp://h/x',
      'https://h/x y',
      'https://h/"x',
      'https://h/x\\y',
      'https://h/x`id`',
      'https://h/$(id)x\n',
    ]) {
      expect(url.test(bad), bad).toBe(false);
    }
    // The only reference SSM pastes is the step's timeout, digits only.
    expect(JSON.stringify(content).match(/\{\{[^}]*\}\}/g)).toEqual(['{{ executionTimeout }}']);
  });

  it('never names AWS-RunShellScript, which runs any command as root', () => {
    expect(JSON.stringify(template.toJSON())).not.toContain('AWS-RunShellScript');
  });

  it('grants Resource "*" only for GetCommandInvocation, which has no resource-level permissions', () => {
    expect(wildcardActions(statements)).toEqual(['ssm:GetCommandInvocation']);
  });

  it('holds no action beyond logging, the failure queue, Run Command and the cache', () => {
    expect(allActions(statements)).toEqual([
      'kms:GenerateMac',
      'kms:VerifyMac',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:AbortMultipartUpload',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
      'ssm:GetCommandInvocation',
      'ssm:SendCommand',
    ]);
    expect(statements.some((s) => [s.Action].flat().some((a) => a.startsWith('ssm:GetParameter')))).toBe(
      false,
    );
  });

  it('signs the cache with its own HMAC key, MAC operations only, and nobody but the function writes the bucket', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      KeySpec: 'HMAC_256',
      KeyUsage: 'GENERATE_VERIFY_MAC',
    });
    const mac = statements.find((s) => [s.Action].flat().includes('kms:GenerateMac'))!;
    expect([mac.Action].flat().sort()).toEqual(['kms:GenerateMac', 'kms:VerifyMac']);
    expect(JSON.stringify(mac.Resource)).toMatch(/CacheMacKey[0-9A-F]+(\.Arn|","Arn")/);
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
    });
    const policies = Object.values(template.findResources('AWS::S3::BucketPolicy')) as {
      Properties: { PolicyDocument: { Statement: Record<string, unknown>[] } };
    }[];
    const deny = policies
      .flatMap((p) => p.Properties.PolicyDocument.Statement)
      .find((s) => s.Sid === 'OnlyTheJanitorWritesTheCache')!;
    expect(deny).toMatchObject({ Effect: 'Deny', Principal: { AWS: '*' } });
    expect(deny.Action).toEqual(expect.arrayContaining(['s3:PutObject', 's3:DeleteObject']));
    expect(JSON.stringify(deny.Condition)).toMatch(
      /ArnNotEquals.*aws:PrincipalArn.*JanitorRole[0-9A-F]+","Arn"/,
    );
  });

  it('writes logs only to its own group and uses no managed policy', () => {
    const logs = statements.find((s) => [s.Action].flat().includes('logs:PutLogEvents'))!;
    expect(logs.Resource).toMatch(/^\$\{JanitorLogGroup[0-9A-F]+\.Arn\}$/);
    const role = template.toJSON().Resources[roleOf(template)];
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });

  it('keeps the manifest cache private, encrypted, TLS-only and expiring after 30 days, reports after 90', () => {
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        LifecycleConfiguration: {
          Rules: [
            Match.objectLike({ Prefix: 'manifest-cache/', ExpirationInDays: 30, Status: 'Enabled' }),
            Match.objectLike({ Prefix: 'reports/', ExpirationInDays: 90, Status: 'Enabled' }),
            Match.objectLike({ Prefix: 'history-listing/', ExpirationInDays: 1, Status: 'Enabled' }),
          ],
        },
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    // No custom resource to empty the bucket on delete.
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
    const s3 = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('s3:')));
    expect(s3.map((s) => ({ Action: s.Action, Resource: s.Resource }))).toEqual([
      {
        Action: ['s3:GetObject', 's3:PutObject'],
        Resource: expect.stringMatching(/^\$\{JanitorManifestCache[0-9A-F]+\.Arn\}\/manifest-cache\/\*$/),
      },
      // The journal: read and replaced whole, never deleted.
      {
        Action: ['s3:GetObject', 's3:PutObject'],
        Resource: expect.stringMatching(/^\$\{JanitorManifestCache[0-9A-F]+\.Arn\}\/journal\/\*$/),
      },
      // The reports: written (a large one in parts, aborted if it fails), never read or deleted by the function.
      {
        Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
        Resource: expect.stringMatching(/^\$\{JanitorManifestCache[0-9A-F]+\.Arn\}\/reports\/\*$/),
      },
      {
        Action: 's3:ListBucket',
        Resource: expect.stringMatching(/^\$\{JanitorManifestCache[0-9A-F]+\.Arn\}$/),
      },
      // The container listing: the function signs the host's upload of one key and reads it back.
      {
        Action: ['s3:PutObject', 's3:GetObject'],
        Resource: expect.stringMatching(/^\$\{JanitorManifestCache[0-9A-F]+\.Arn\}\/history-listing\/\*$/),
      },
    ]);
    expect(janitor.reportsLocation).toMatch(/^s3:\/\/\$\{Token\[TOKEN\.\d+\]\}\/reports\/$/);
  });

  it('alarms on function errors, GC failures, verify failures and failed runs, all to the topic', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => flatten((a as { Properties: unknown }).Properties) as Record<string, unknown>,
    );
    const summary = alarms.map((a) => ({
      metric: `${a.Namespace as string}/${a.MetricName as string}`,
      threshold: a.Threshold,
      comparison: a.ComparisonOperator,
      missing: a.TreatMissingData,
      actions: a.AlarmActions,
    }));
    const topic = Object.keys(template.findResources('AWS::SNS::Topic'))[0]!;
    const expected = (metric: string) => ({
      metric,
      threshold: 1,
      comparison: 'GreaterThanOrEqualToThreshold',
      missing: 'notBreaching',
      actions: [`\${${topic}}`],
    });
    expect(summary).toEqual(
      expect.arrayContaining([
        expected('AWS/Lambda/Errors'),
        expected('RegistryJanitor/GcFailures'),
        expected('RegistryJanitor/VerifyFailures'),
        expected('AWS/SQS/ApproximateNumberOfMessagesVisible'),
      ]),
    );
    expect(alarms).toHaveLength(4);
    for (const name of ['GcFailures', 'VerifyFailures']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: name,
        Dimensions: [{ Name: 'service', Value: 'registry-janitor' }],
      });
    }
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('shows the run metrics on a dashboard, untagged history apart from the tags', () => {
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(flatten((dashboards[0] as { Properties: unknown }).Properties));
    for (const metric of [
      METRICS.tagsDeleted,
      METRICS.manifestsDeleted,
      METRICS.bytesFreed,
      METRICS.runDuration,
      METRICS.gcDuration,
      METRICS.untaggedPlanned,
      METRICS.untaggedDeleted,
      METRICS.untaggedFailures,
      METRICS.untaggedBytesFreed,
      METRICS.historyListingFailures,
      METRICS.manifestsUntagged,
      METRICS.bytesPending,
      METRICS.manifestsSwept,
    ]) {
      expect(body).toContain(`\\"RegistryJanitor\\",\\"${metric}\\",\\"service\\",\\"registry-janitor\\"`);
    }
  });

  it('saves a Logs Insights query over the function log', () => {
    const group = new Capture();
    template.hasResourceProperties('AWS::Logs::QueryDefinition', {
      LogGroupNames: [{ Ref: group }],
      QueryString: Match.stringLikeRegexp('sort @timestamp asc'),
    });
    expect(template.toJSON().Resources[group.asString()].Type).toBe('AWS::Logs::LogGroup');
  });
});

describe('RegistryJanitor options', () => {
  it('targets the host by tag: SendCommand on instances only under the tag condition', () => {
    const { statements, template } = synth({ instanceId: undefined, instanceTag: 'Role=docker-registry' });
    const sendCommand = statements.filter((s) => [s.Action].flat().includes('ssm:SendCommand'));
    expect(sendCommand).toEqual([
      expect.objectContaining({ Resource: DOCUMENT_ARN }),
      expect.objectContaining({
        Resource: 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*',
        Condition: { StringEquals: { 'ssm:resourceTag/Role': 'docker-registry' } },
      }),
    ]);
    expect(sendCommand[0]!.Condition).toBeUndefined();
    expect(wildcardActions(statements)).toEqual([
      'ssm:CancelCommand',
      'ssm:GetCommandInvocation',
      'ssm:ListCommandInvocations',
    ]);
    expect(functionEnvironment(template)).toMatchObject({ GC_INSTANCE_TAG: 'Role=docker-registry' });
    expect(functionEnvironment(template)).not.toHaveProperty('GC_INSTANCE_ID');
  });

  it('scopes a hybrid managed node (mi-) to its SSM ARN', () => {
    const { statements } = synth({ instanceId: 'mi-0123456789abcdef0' });
    expect(statements.find((s) => [s.Action].flat().includes('ssm:SendCommand'))!.Resource).toEqual([
      DOCUMENT_ARN,
      'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:managed-instance/mi-0123456789abcdef0',
    ]);
  });

  it('reads only the named parameters, and decrypts with the given key only through SSM', () => {
    const { statements, template } = synth({}, (stack) => ({
      credentialsParameter: '/registry-janitor/credentials',
      caParameter: 'registry-ca',
      parameterKey: Key.fromKeyArn(
        stack,
        'Key',
        'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      ),
    }));
    expect(statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('ssm:GetParameter')))).toEqual(
      [
        expect.objectContaining({
          Action: 'ssm:GetParameter',
          Resource: [
            'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/registry-janitor/credentials',
            'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/registry-ca',
          ],
        }),
      ],
    );
    expect(statements.filter((s) => [s.Action].flat().includes('kms:Decrypt'))).toEqual([
      expect.objectContaining({
        Resource: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        Condition: { StringEquals: { 'kms:ViaService': 'ssm.${AWS::Region}.amazonaws.com' } },
      }),
    ]);
    expect(functionEnvironment(template)).toMatchObject({
      CREDENTIALS_PARAMETER: '/registry-janitor/credentials',
      CA_PARAMETER: 'registry-ca',
    });
  });

  it('takes a parameter given by ARN as is, and grants no kms:Decrypt without a key', () => {
    const arn = 'arn:aws:ssm:eu-west-1:123456789012:parameter/shared/registry-credentials';
    const { statements } = synth({ credentialsParameter: arn });
    expect(statements.find((s) => s.Action === 'ssm:GetParameter')!.Resource).toEqual(arn);
    expect(allActions(statements)).not.toContain('kms:Decrypt');
  });

  it('passes every setting through to the function and the schedule', () => {
    const { template } = synth({
      dryRun: false,
      containerName: 'registry-v3',
      configPath: '/etc/distribution/config.yml',
      gcMode: 'offline',
      maxDeleteFraction: 0.2,
      memorySize: 2048,
      logRetention: RetentionDays.ONE_YEAR,
      serviceName: 'registry-eu',
      schedule: ScheduleExpression.cron({ minute: '30', hour: '1', weekDay: 'SUN' }),
      environment: { CONCURRENCY: '8' },
    });
    expect(functionEnvironment(template)).toMatchObject({
      DRY_RUN: 'false',
      GC_CONTAINER_NAME: 'registry-v3',
      GC_CONFIG_PATH: '/etc/distribution/config.yml',
      GC_MODE: 'offline',
      MAX_DELETE_FRACTION: '0.2',
      POWERTOOLS_SERVICE_NAME: 'registry-eu',
      CONCURRENCY: '8',
      REGISTRY_URL: 'https://registry.internal:5000',
    });
    template.hasResourceProperties('AWS::Lambda::Function', { MemorySize: 2048 });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 1 ? * SUN *)',
      Description: Match.not(Match.stringLikeRegexp('dry run')),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'GcFailures',
      Dimensions: [{ Name: 'service', Value: 'registry-eu' }],
    });
  });

  it('passes the manual-apply and credential switches to the function', () => {
    const { template } = synth({
      allowManualApply: true,
      tokenRealmHosts: ['auth.internal', 'Auth2.Internal:5001'],
      allowInsecureHttp: true,
    });
    expect(functionEnvironment(template)).toMatchObject({
      ALLOW_MANUAL_APPLY: 'true',
      TOKEN_REALM_HOSTS: 'auth.internal,Auth2.Internal:5001',
      ALLOW_INSECURE_HTTP: 'true',
    });
    const defaults = functionEnvironment(synth().template);
    expect(defaults).toMatchObject({ ALLOW_MANUAL_APPLY: 'false' });
    expect(defaults).not.toHaveProperty('TOKEN_REALM_HOSTS');
    expect(defaults).not.toHaveProperty('ALLOW_INSECURE_HTTP');
  });

  describe('storage: where untagged history is listed from', () => {
    const historyStatements = (statements: Statement[]) =>
      statements.filter(
        (s) =>
          s.Sid === 'ListRegistryStorage' ||
          s.Sid === 'LookUpRevisionLinks' ||
          s.Sid === 'ReceiveHistoryListing' ||
          asList(s.Resource).some((r) => String(r).includes('history-listing')),
      );

    it('container (the default): the function may put and get only under history-listing/ of its own bucket', () => {
      const { template, statements } = synth();
      expect(functionEnvironment(template)).toMatchObject({
        HISTORY_STORAGE: 'container',
        HISTORY_LISTING_BUCKET: { Ref: expect.stringMatching(/^JanitorManifestCache/) as unknown },
      });
      const found = historyStatements(statements);
      expect(found).toEqual([
        {
          Sid: 'ReceiveHistoryListing',
          Effect: 'Allow',
          Action: ['s3:PutObject', 's3:GetObject'],
          Resource: expect.stringMatching(/^\$\{JanitorManifestCache[0-9A-F]+\.Arn\}\/history-listing\/\*$/),
        },
      ]);
    });

    it('s3://bucket/prefix: ListBucket on that bucket, only for its repositories prefix, and GetObject on the revision links alone', () => {
      const { template, statements } = synth({ storage: 's3://registry-data/registry/root/' });
      const env = functionEnvironment(template);
      expect(env).toMatchObject({ HISTORY_STORAGE: 's3://registry-data/registry/root/' });
      expect(env).not.toHaveProperty('HISTORY_LISTING_BUCKET');
      const found = historyStatements(statements);
      expect(found).toEqual([
        {
          Sid: 'ListRegistryStorage',
          Effect: 'Allow',
          Action: 's3:ListBucket',
          Resource: 'arn:${AWS::Partition}:s3:::registry-data',
          Condition: { StringLike: { 's3:prefix': 'registry/root/docker/registry/v2/repositories/*' } },
        },
        {
          Sid: 'LookUpRevisionLinks',
          Effect: 'Allow',
          Action: 's3:GetObject',
          Resource:
            'arn:${AWS::Partition}:s3:::registry-data/registry/root/docker/registry/v2/repositories/*/_manifests/revisions/sha256/*/link',
        },
      ]);
      // Nothing else in that bucket: no GetObject of a blob, no PutObject, no ListBucket without the condition.
      const onRegistryBucket = statements.filter((s) =>
        asList(s.Resource).some((r) => String(r).includes('registry-data')),
      );
      expect(onRegistryBucket).toEqual(found);
    });

    it('s3://bucket (rootdirectory "/"): the condition is the repositories prefix at the top', () => {
      const { statements } = synth({ storage: 's3://registry-data' });
      expect(historyStatements(statements)[0]?.Condition).toEqual({
        StringLike: { 's3:prefix': 'docker/registry/v2/repositories/*' },
      });
    });

    it('none: no listing and no grant for one', () => {
      const { template, statements } = synth({ storage: 'none' });
      expect(functionEnvironment(template)).toMatchObject({ HISTORY_STORAGE: 'none' });
      expect(functionEnvironment(template)).not.toHaveProperty('HISTORY_LISTING_BUCKET');
      expect(historyStatements(statements)).toEqual([]);
    });
  });

  describe('undoWindowHours: two-phase apply whenever untagged history is listed', () => {
    it.each<[string, Partial<RegistryJanitorProps>, string | undefined]>([
      ['the default storage', {}, '24'],
      ['an s3 storage', { storage: 's3://registry-data/registry' }, '24'],
      ['a window of 48 h', { undoWindowHours: 48 }, '48'],
      ['window 0 (swept in the same run)', { undoWindowHours: 0 }, '0'],
      ['storage none (delete by digest)', { storage: 'none' }, undefined],
    ])('%s: UNDO_WINDOW_HOURS=%s', (_name, props, hours) => {
      const env = functionEnvironment(synth(props).template);
      if (hours === undefined) expect(env).not.toHaveProperty('UNDO_WINDOW_HOURS');
      else expect(env).toMatchObject({ UNDO_WINDOW_HOURS: hours });
    });
  });

  it('subscribes alarmEmail to the new topic', () => {
    const { template } = synth({ alarmEmail: 'ops@example.com' });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
  });

  it('notifies a given alarmTopic instead of creating one', () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:ops';
    const { template } = synth({}, (stack) => ({ alarmTopic: Topic.fromTopicArn(stack, 'Ops', arn) }));
    template.resourceCountIs('AWS::SNS::Topic', 0);
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(
      alarms.map((a) => (a as { Properties: { AlarmActions: unknown } }).Properties.AlarmActions),
    ).toEqual(alarms.map(() => [arn]));
  });

  describe('in a VPC', () => {
    const inVpc = (stack: Stack): Partial<RegistryJanitorProps> => {
      const vpc = Vpc.fromVpcAttributes(stack, 'Vpc', {
        vpcId: 'vpc-0123456789abcdef0',
        availabilityZones: ['a'],
      });
      return {
        vpc,
        vpcSubnets: { subnets: [Subnet.fromSubnetId(stack, 'Subnet', 'subnet-0123456789abcdef0')] },
        securityGroups: [SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0')],
      };
    };
    const ENI = 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*';

    it('runs in the given subnets and security groups', () => {
      const { template } = synth({}, inVpc);
      template.hasResourceProperties('AWS::Lambda::Function', {
        VpcConfig: { SubnetIds: ['subnet-0123456789abcdef0'], SecurityGroupIds: ['sg-0123456789abcdef0'] },
      });
    });

    it('manages its network interfaces with an inline policy, not AWSLambdaVPCAccessExecutionRole', () => {
      const { template, statements } = synth({}, inVpc);
      // The managed policy adds logs:CreateLogGroup/PutLogEvents on every log group.
      expect(JSON.stringify(template.toJSON())).not.toContain('AWSLambdaVPCAccessExecutionRole');
      expect(template.toJSON().Resources[roleOf(template)].Properties.ManagedPolicyArns).toBeUndefined();
      const ec2 = statements.filter((s) => asList(s.Action).some((a) => a.startsWith('ec2:')));
      expect(ec2.map((s) => ({ Action: asList(s.Action).sort(), Resource: asList(s.Resource) }))).toEqual([
        {
          Action: ['ec2:CreateNetworkInterface'],
          Resource: [
            ENI,
            'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:subnet/subnet-0123456789abcdef0',
            'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/sg-0123456789abcdef0',
          ],
        },
        {
          Action: [
            'ec2:AssignPrivateIpAddresses',
            'ec2:DeleteNetworkInterface',
            'ec2:UnassignPrivateIpAddresses',
          ],
          Resource: [ENI],
        },
        // EC2 has no resource-level permissions for Describe calls.
        { Action: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], Resource: ['*'] },
      ]);
      expect(allActions(statements).filter((a) => a.startsWith('logs:'))).toEqual([
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ]);
    });

    it('scopes network interface creation to the security group it creates when none is given', () => {
      const { template, statements } = synth({}, (stack) => ({ ...inVpc(stack), securityGroups: undefined }));
      const groups = Object.keys(template.findResources('AWS::EC2::SecurityGroup'));
      expect(groups).toHaveLength(1);
      const create = statements.find((s) => asList(s.Action).includes('ec2:CreateNetworkInterface'))!;
      expect(asList(create.Resource)).toContain(
        'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/${' +
          groups[0]! +
          '.GroupId}',
      );
    });

    it('grants no EC2 action outside a VPC', () => {
      const { statements } = synth();
      expect(allActions(statements).filter((a) => a.startsWith('ec2:'))).toEqual([]);
    });
  });

  describe('policyFile', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'registry-janitor-policy-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('is read and validated at synth time and passed as JSON', () => {
      const file = join(dir, 'policy.yaml');
      writeFileSync(file, 'rules:\n  - repositories: ["**"]\n    keep: { newest: 3, youngerThanDays: 7 }\n');
      const { template } = synth({ policy: undefined, policyFile: file });
      expect(JSON.parse(functionEnvironment(template).RETENTION_POLICY as string)).toEqual({
        rules: [{ repositories: ['**'], keep: { newest: 3, youngerThanDays: 7 } }],
      });
    });

    it('fails synth with the Lambda’s own policy error', () => {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, 'rules:\n  - repositories: ["**"]\n    keep: { newest: -1 }\n');
      const attempt = () => synth({ policy: undefined, policyFile: file });
      expect(attempt).toThrow(PolicyError);
      expect(attempt).toThrow(`${file}: rules[0].keep.newest: expected a whole number >= 0`);
    });

    it('fails synth when the file is missing, naming the path', () => {
      const file = join(dir, 'missing.yaml');
      expect(() => synth({ policy: undefined, policyFile: file })).toThrow(
        new RegExp(`policyFile: cannot read ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} .*ENOENT`),
      );
    });
  });
});

describe('RegistryJanitor bad props', () => {
  const hugePolicy: PolicyDocument = {
    rules: Array.from({ length: 60 }, (_, i) => ({
      repositories: [`team-${i}/**`],
      keep: { newest: 10, tags: ['latest', 'stable', 'release-*'] },
    })),
  };

  it.each<{ name: string; props: Partial<RegistryJanitorProps>; why: RegExp; withTopic?: boolean }>([
    {
      name: 'no host',
      props: { instanceId: undefined },
      why: /set instanceId \(e\.g\. i-0123456789abcdef0\) or instanceTag/,
    },
    {
      name: 'a storage that is none of the three forms',
      props: { storage: '/var/lib/registry' },
      why: /storage: "\/var\/lib\/registry" is not one of container .*, s3:\/\/BUCKET\/ROOTDIRECTORY .* or none/,
    },
    {
      name: 'a malformed s3 storage',
      props: { storage: 's3://Bad_Bucket/x' },
      why: /storage: "s3:\/\/Bad_Bucket\/x" "Bad_Bucket" is not a valid bucket name/,
    },
    {
      name: 'an undo window that is not whole hours',
      props: { undoWindowHours: 1.5 },
      why: /undoWindowHours: "1.5" is not a whole number of hours from 0 to 8760, e\.g\. 24/,
    },
    {
      name: 'an undo window over a year',
      props: { undoWindowHours: 9000 },
      why: /undoWindowHours: "9000" is not a whole number of hours from 0 to 8760/,
    },
    {
      name: 'an undo window with storage none',
      props: { storage: 'none', undoWindowHours: 24 },
      why: /undoWindowHours is set, but storage is none: .*without a storage listing the sweep cannot see untagged manifests.* or unset undoWindowHours to delete by digest/,
    },
    {
      name: 'two hosts',
      props: { instanceTag: 'Role=registry' },
      why: /instanceId and instanceTag are both set: set only one/,
    },
    {
      name: 'a bad instance id',
      props: { instanceId: 'registry-1' },
      why: /instanceId: "registry-1" is not an instance id/,
    },
    {
      name: 'a tag without a value',
      props: { instanceId: undefined, instanceTag: 'Role' },
      why: /instanceTag "Role" is not Key=Value/,
    },
    {
      name: 'a URL without a scheme',
      props: { registryUrl: 'registry.internal:5000' },
      why: /registryUrl: .*must start with https:\/\/ or http:\/\//,
    },
    { name: 'not a URL', props: { registryUrl: 'not a url' }, why: /registryUrl: "not a url" is not a URL/ },
    {
      name: 'a URL with a path',
      props: { registryUrl: 'https://registry.internal/v2/' },
      why: /registryUrl: .*must be the registry root without a path or query .*e\.g\. https:\/\/registry\.internal/,
    },
    {
      name: 'a URL with credentials',
      props: { registryUrl: 'https://user:pw@registry.internal' },
      why: /registryUrl: must not contain credentials; store them in an SSM SecureString and set credentialsParameter/,
    },
    {
      name: 'a container name with shell syntax',
      props: { containerName: 'registry;reboot' },
      why: /containerName: "registry;reboot" is not a container name/,
    },
    {
      name: 'a relative config path',
      props: { configPath: 'config.yml' },
      why: /configPath: "config\.yml" is not an absolute path/,
    },
    {
      name: 'a config path with spaces',
      props: { configPath: '/etc/my config.yml' },
      why: /configPath: "\/etc\/my config\.yml"/,
    },
    {
      name: 'an unknown gcMode',
      props: { gcMode: 'fast' as never },
      why: /gcMode: "fast" is not one of readonly, offline, online/,
    },
    {
      name: 'no policy',
      props: { policy: undefined },
      why: /set policyFile \(e\.g\. retention-policy\.yaml\) or policy/,
    },
    {
      name: 'two policies',
      props: { policyFile: 'retention-policy.yaml' },
      why: /policy and policyFile are both set: set only one/,
    },
    {
      name: 'a fraction above 1',
      props: { maxDeleteFraction: 1.5 },
      why: /maxDeleteFraction: "1\.5" is not a number from 0 to 1/,
    },
    {
      name: 'too little memory',
      props: { memorySize: 64 },
      why: /memorySize: 64 is not a whole number of MB from 128 to 10,240/,
    },
    {
      name: 'a bad parameter name',
      props: { credentialsParameter: 'my credentials' },
      why: /credentialsParameter: "my credentials" is not an SSM parameter name/,
    },
    {
      name: 'subnets without a VPC',
      props: { vpcSubnets: { subnets: [] } },
      why: /vpcSubnets and securityGroups need vpc: set vpc too/,
    },
    { name: 'a bad e-mail', props: { alarmEmail: 'ops' }, why: /alarmEmail: "ops" is not an e-mail address/ },
    {
      name: 'a topic and an e-mail',
      props: { alarmEmail: 'ops@example.com' },
      withTopic: true,
      why: /alarmTopic and alarmEmail are both set: .*subscribe the address to it yourself and remove alarmEmail/,
    },
    {
      name: 'an environment override of a prop',
      props: { environment: { DRY_RUN: 'false' } },
      why: /environment\.DRY_RUN: set by the construct; use dryRun instead/,
    },
    {
      name: 'a password in the environment',
      props: { environment: { REGISTRY_PASSWORD: 'hunter2' } },
      why: /environment\.REGISTRY_PASSWORD is set, but registry credentials never come from the function's environment .* set credentialsParameter/,
    },
    {
      name: 'an extra variable the handler would reject',
      props: { environment: { CONCURRENCY: 'lots' } },
      why: /environment\.CONCURRENCY: "lots" is not a whole number from 1 to 1024/,
    },
    {
      name: 'a bad service name',
      props: { serviceName: 'registry janitor' },
      why: /serviceName: "registry janitor" must be 1-128/,
    },
    {
      name: 'a token realm given as a URL',
      props: { tokenRealmHosts: ['https://auth.internal/token'] },
      why: /tokenRealmHosts: "https:\/\/auth\.internal\/token" is not a host name: give it as host or host:port/,
    },
    {
      name: 'the manual-apply switch set through environment',
      props: { environment: { ALLOW_MANUAL_APPLY: 'true' } },
      why: /environment\.ALLOW_MANUAL_APPLY: set by the construct; use allowManualApply instead/,
    },
    {
      name: 'the reports location set through environment',
      props: { environment: { REPORTS_PREFIX: 'elsewhere/' } },
      why: /environment\.REPORTS_PREFIX: set by the construct/,
    },
  ])('fails on $name', ({ props, why, withTopic }) => {
    const attempt = () =>
      synth(props, (stack) =>
        withTopic
          ? { alarmTopic: Topic.fromTopicArn(stack, 'Ops', 'arn:aws:sns:eu-west-1:123456789012:ops') }
          : {},
      );
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(why);
  });

  it('fails on a parameter key with no parameter to decrypt', () => {
    const attempt = () =>
      synth({}, (stack) => ({
        parameterKey: Key.fromKeyArn(
          stack,
          'Key',
          'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        ),
      }));
    expect(attempt).toThrow(/parameterKey is set but neither credentialsParameter nor caParameter/);
  });

  it('reports every bad prop at once', () => {
    expect(() => synth({ instanceId: 'x', gcMode: 'fast' as never, memorySize: 1 })).toThrow(
      /instanceId: "x"[\s\S]*gcMode: "fast"[\s\S]*memorySize: 1 /,
    );
  });

  it('fails on an invalid policy object with the Lambda’s message', () => {
    const policy = { rules: [{ repositories: ['**'] }] } as PolicyDocument;
    const attempt = () => synth({ policy });
    expect(attempt).toThrow(PolicyError);
    expect(attempt).toThrow(
      /^policy: rules\[0\]: needs "protect: true" \(keep everything\) or a "keep" mapping/,
    );
  });

  it('fails when the policy would not fit in the Lambda environment, saying how to shorten it', () => {
    expect(() => synth({ policy: hugePolicy })).toThrow(
      /over Lambda's 4 KB limit; the retention policy alone is \d+ bytes as JSON\. Merge rules/,
    );
  });

  it('leaves values only known at deploy time to the handler', () => {
    const { template } = synth({}, (stack) => ({
      registryUrl: new CfnParameter(stack, 'RegistryUrl', { type: 'String' }).valueAsString,
    }));
    expect(functionEnvironment(template).REGISTRY_URL).toEqual({ Ref: 'RegistryUrl' });
  });
});
