// The stack as the app builds it from context: the README example (with a template snapshot, hashes stripped),
// the schedule and network settings, and the VPC lookup that needs an account.
import { fileURLToPath } from 'node:url';
import type { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lambda/config.ts';
import { ConfigError } from '../../lambda/core/errors.ts';
import { parseAppContext } from '../../lib/context.ts';
import { RegistryJanitorStack } from '../../lib/registry-janitor-stack.ts';
import { assetHashSerializer } from '../support/cdk-snapshot.ts';
import { createTestApps, flatten, roleOf, statementsOf } from '../support/cfn-template.ts';

expect.addSnapshotSerializer(assetHashSerializer);

const SHIPPED_POLICY = fileURLToPath(new URL('../../retention-policy.yaml', import.meta.url));
const README_CONTEXT = { registryUrl: 'https://registry.internal:5000', instanceId: 'i-0123456789abcdef0' };

const apps = createTestApps({ bundle: true });
afterAll(() => apps.dispose());

function stackFrom(context: Record<string, unknown>, env?: { account?: string; region?: string }) {
  const app = apps.app();
  const settings = parseAppContext(context, { defaultPolicyFile: SHIPPED_POLICY });
  return new RegistryJanitorStack(app, 'RegistryJanitor', { settings, env });
}

describe('RegistryJanitorStack from the README context', () => {
  let template: Template;
  beforeAll(() => {
    template = Template.fromStack(stackFrom(README_CONTEXT));
  });

  it('matches the snapshot (asset hashes stripped)', () => {
    expect(template.toJSON()).toMatchSnapshot();
  });

  it('ships with dry run on and the repository policy', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { DRY_RUN: 'true', REGISTRY_URL: 'https://registry.internal:5000' } },
    });
    const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0] as {
      Properties: { Environment: { Variables: { RETENTION_POLICY: string } } };
    };
    expect(JSON.parse(fn.Properties.Environment.Variables.RETENTION_POLICY)).toMatchObject({
      rules: [{ repositories: ['**'], keep: { newest: 10, youngerThanDays: 30 } }],
    });
  });

  it('gives the function an environment its own loadConfig accepts', () => {
    const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0] as {
      Properties: { Environment: { Variables: Record<string, string> } };
    };
    // CACHE_BUCKET, REPORTS_BUCKET, CACHE_HMAC_KEY_ID and GC_DOCUMENT_NAME are Refs until deploy time.
    const config = loadConfig({
      ...fn.Properties.Environment.Variables,
      CACHE_BUCKET: 'registry-janitor-cache',
      REPORTS_BUCKET: 'registry-janitor-cache',
      HISTORY_LISTING_BUCKET: 'registry-janitor-cache',
      CACHE_HMAC_KEY_ID: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      GC_DOCUMENT_NAME: 'RegistryJanitor-JanitorGcDocument-AbC123',
    });
    expect(config).toMatchObject({
      registryUrl: 'https://registry.internal:5000',
      dryRun: true,
      maxDeleteFraction: 0.5,
      cacheBucket: 'registry-janitor-cache',
      reports: { bucket: 'registry-janitor-cache', prefix: 'reports/' },
      history: { kind: 'container' },
      listingBucket: 'registry-janitor-cache',
      allowManualApply: false,
      cacheHmacKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      gc: { target: { instanceId: 'i-0123456789abcdef0' }, mode: 'readonly', containerName: 'registry' },
    });
    expect(config.policy.document.rules).toHaveLength(1);
  });

  it('outputs what the README tells the user to look at', () => {
    expect(Object.keys(template.toJSON().Outputs as Record<string, unknown>).sort()).toEqual([
      'AlarmTopicArn',
      'DashboardUrl',
      'FailedRunsQueueUrl',
      'FunctionName',
      'LogGroupName',
      'ManifestCacheBucket',
      'ReportsLocation',
    ]);
    expect(flatten(template.toJSON().Outputs.ReportsLocation.Value)).toMatch(
      /^s3:\/\/\$\{JanitorManifestCache[0-9A-F]+\}\/reports\/$/,
    );
  });

  it('is environment-agnostic, so it synthesizes without credentials', () => {
    const json = JSON.stringify(template.toJSON());
    expect(json).toContain('"Ref":"AWS::Region"');
    expect(json).toContain('"Ref":"AWS::AccountId"');
  });
});

describe('RegistryJanitorStack settings', () => {
  it('passes the manual-apply and credential switches from context to the function', () => {
    const template = Template.fromStack(
      stackFrom({
        ...README_CONTEXT,
        allowManualApply: 'true',
        tokenRealmHosts: 'auth.internal,auth2.internal:5001',
        allowInsecureHttp: 'true',
      }),
    );
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          ALLOW_MANUAL_APPLY: 'true',
          TOKEN_REALM_HOSTS: 'auth.internal,auth2.internal:5001',
          ALLOW_INSECURE_HTTP: 'true',
        }),
      },
    });
  });

  it('passes the undoWindowHours context to the function, and refuses it with storage none', () => {
    const template = Template.fromStack(stackFrom({ ...README_CONTEXT, undoWindowHours: '72' }));
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ HISTORY_STORAGE: 'container', UNDO_WINDOW_HOURS: '72' }) },
    });
    expect(() => stackFrom({ ...README_CONTEXT, storage: 'none', undoWindowHours: '24' })).toThrow(
      /undoWindowHours is set, but storage is none/,
    );
  });

  it('turns the schedule context into a typed UTC cron', () => {
    const template = Template.fromStack(stackFrom({ ...README_CONTEXT, schedule: 'cron(30 1 ? * SUN *)' }));
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 1 ? * SUN *)',
      ScheduleExpressionTimezone: 'Etc/UTC',
    });
  });

  it('puts the function in the given subnets and security groups without looking anything up', () => {
    const stack = stackFrom({
      ...README_CONTEXT,
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
      securityGroupIds: 'sg-0123456789abcdef0',
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: {
        SubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
        SecurityGroupIds: ['sg-0123456789abcdef0'],
      },
    });
    template.resourceCountIs('AWS::EC2::SecurityGroup', 0);
    expect(stack.node.metadata.filter((m) => m.type === 'aws:cdk:missing')).toEqual([]);
  });

  it('creates a security group in the VPC when none is given', () => {
    const template = Template.fromStack(
      stackFrom({ ...README_CONTEXT, vpcId: 'vpc-0123456789abcdef0', subnetIds: 'subnet-0123456789abcdef0' }),
    );
    template.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: 'vpc-0123456789abcdef0' });
  });

  it('fails clearly when a VPC lookup would need an account it does not have', () => {
    expect(() => stackFrom({ ...README_CONTEXT, vpcId: 'vpc-0123456789abcdef0' })).toThrow(ConfigError);
    expect(() => stackFrom({ ...README_CONTEXT, vpcId: 'vpc-0123456789abcdef0' })).toThrow(
      /vpcId=vpc-0123456789abcdef0 without subnetIds makes the CDK look the VPC up, which needs an AWS account and region: run cdk with credentials \(--profile NAME, or AWS_PROFILE\) so it sets CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION, or pass -c subnetIds=/,
    );
  });

  it('looks the VPC up when the account and region are known', () => {
    const stack = stackFrom(
      { ...README_CONTEXT, vpcId: 'vpc-0123456789abcdef0' },
      { account: '123456789012', region: 'eu-west-1' },
    );
    const assembly = (stack.node.root as App).synth({ skipValidation: true });
    expect(assembly.manifest.missing).toEqual([
      expect.objectContaining({
        provider: 'vpc-provider',
        props: expect.objectContaining({
          account: '123456789012',
          filter: { 'vpc-id': 'vpc-0123456789abcdef0' },
        }),
      }),
    ]);
  });

  it('grants kms:Decrypt on the key from parameterKeyArn, through SSM only', () => {
    const key = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const template = Template.fromStack(
      stackFrom({
        ...README_CONTEXT,
        credentialsParameter: '/registry-janitor/credentials',
        parameterKeyArn: key,
      }),
    );
    const decrypt = statementsOf(template, roleOf(template)).filter((s) => s.Action === 'kms:Decrypt');
    expect(decrypt).toEqual([
      expect.objectContaining({
        Resource: key,
        Condition: { StringEquals: { 'kms:ViaService': 'ssm.${AWS::Region}.amazonaws.com' } },
      }),
    ]);
  });

  it('subscribes the alarmEmail context', () => {
    const template = Template.fromStack(stackFrom({ ...README_CONTEXT, alarmEmail: 'ops@example.com' }));
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
  });
});

describe('RegistryJanitorStack with the workflow from context', () => {
  it('passes the batch sizes and the plan step memory to the workflow functions', () => {
    const template = Template.fromStack(
      stackFrom({
        ...README_CONTEXT,
        engine: 'workflow',
        workflowBatchTags: '5000',
        workflowBatchRepositories: 50,
        workflowWholeRunMemorySize: '6144',
      }),
    );
    const functions = Object.values(template.findResources('AWS::Lambda::Function')) as {
      Properties: { MemorySize?: number; Environment?: { Variables?: Record<string, string> } };
    }[];
    const batched = functions.filter((f) => f.Properties.Environment?.Variables?.BATCH_TAGS !== undefined);
    expect(batched.length).toBeGreaterThan(0);
    for (const f of batched) {
      expect(f.Properties.Environment!.Variables).toMatchObject({
        BATCH_TAGS: '5000',
        BATCH_REPOSITORIES: '50',
      });
    }
    const sizes = functions.map((f) => f.Properties.MemorySize);
    expect(sizes.filter((m) => m === 6144)).toHaveLength(3);
  });
});
