// cdk-nag AwsSolutionsChecks over the stack in its main shapes: no unacknowledged finding, and every
// acknowledgement the construct makes is one we reviewed and carries its reason.
import { fileURLToPath } from 'node:url';
import { Validations, type Stack } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAppContext } from '../../lib/context.ts';
import { RegistryJanitorStack } from '../../lib/registry-janitor-stack.ts';
import { createTestApps } from '../support/cfn-template.ts';

const SHIPPED_POLICY = fileURLToPath(new URL('../../retention-policy.yaml', import.meta.url));
const README_CONTEXT = { registryUrl: 'https://registry.internal:5000', instanceId: 'i-0123456789abcdef0' };
const FULL_CONTEXT = {
  registryUrl: 'https://registry.internal:5000',
  instanceTag: 'Role=docker-registry',
  credentialsParameter: '/registry-janitor/credentials',
  caParameter: '/registry-janitor/ca',
  parameterKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  vpcId: 'vpc-0123456789abcdef0',
  subnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
  alarmEmail: 'ops@example.com',
  dryRun: 'false',
};

/** The findings we accept, logical-id hashes left out; a new one must be reviewed and added here. */
const ALWAYS = [
  'AwsSolutions-IAM5[Resource::*]',
  'AwsSolutions-IAM5[Resource::<JanitorManifestCache.Arn>/journal/*]',
  'AwsSolutions-IAM5[Resource::<JanitorManifestCache.Arn>/manifest-cache/*]',
  'AwsSolutions-IAM5[Resource::<JanitorManifestCache.Arn>/reports/*]',
  'AwsSolutions-IAM5[Resource::<JanitorFunction.Arn>:*]',
  'AwsSolutions-L1',
  'AwsSolutions-S1',
  'AwsSolutions-SNS2',
  'AwsSolutions-SQS3',
];
/** The default storage setting (container): the host's listing comes back under history-listing/. */
const CONTAINER_LISTING = ['AwsSolutions-IAM5[Resource::<JanitorManifestCache.Arn>/history-listing/*]'];
const WITH_TAG_AND_VPC = [
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]',
];

/** The workflow's: each step role's run files, the state machine invoking its step functions. */
const WORKFLOW = [
  ...[
    'run.json',
    'history.json',
    'journal.json',
    'inventory/*.json',
    'plan.json',
    'plan/*.json',
    'apply/*.json',
    'deletions.json',
    'verify/*.json',
  ].map((file) => `AwsSolutions-IAM5[Resource::<JanitorManifestCache.Arn>/workflow-runs/*/${file}]`),
  ...['Probe', 'Inventory', 'Plan', 'Apply', 'Collect', 'Verify', 'Report'].map(
    (step) => `AwsSolutions-IAM5[Resource::<JanitorWorkflow${step}Function.Arn>:*]`,
  ),
];

const apps = createTestApps({ bundle: false });
afterAll(() => apps.dispose());

function checked(context: Record<string, unknown>): { stack: Stack; findings: string[] } {
  const app = apps.app();
  const settings = parseAppContext(context, { defaultPolicyFile: SHIPPED_POLICY });
  const stack = new RegistryJanitorStack(app, 'RegistryJanitor', { settings });
  app.synth({ skipValidation: true });
  const report = new AwsSolutionsChecks(app, { verbose: true }).validateScope(stack);
  const findings = report.violations.flatMap((v) =>
    v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}: ${v.description}`),
  );
  return { stack, findings };
}

/** Every acknowledgement recorded in the construct tree: rule id → reason. */
function acknowledgements(stack: Stack): Map<string, string> {
  const found = new Map<string, string>();
  for (const construct of stack.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        // Logical ids end in a hash of the construct path; the test names resources without it.
        found.set(id.replace(/^annotation::/i, '').replace(/<(\w+?)[0-9A-F]{8}\.Arn>/g, '<$1.Arn>'), reason);
      }
    }
  }
  return found;
}

describe.each([
  { name: 'the README deploy', context: README_CONTEXT, expected: [...ALWAYS, ...CONTAINER_LISTING] },
  {
    name: 'a tag target in a VPC with parameters and a key',
    context: FULL_CONTEXT,
    expected: [...ALWAYS, ...WITH_TAG_AND_VPC, ...CONTAINER_LISTING],
  },
  {
    name: 'an S3 storage (ListBucket on the bucket itself, for one prefix; GetObject on its revision links)',
    context: { ...README_CONTEXT, storage: 's3://registry-data/registry' },
    expected: [
      ...ALWAYS,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::registry-data/registry/docker/registry/v2/repositories/*/_manifests/revisions/sha256/*/link]',
    ],
  },
  { name: 'no listing', context: { ...README_CONTEXT, storage: 'none' }, expected: ALWAYS },
  {
    name: 'the workflow engine in a VPC with parameters and a key',
    context: {
      ...FULL_CONTEXT,
      instanceTag: undefined,
      instanceId: 'i-0123456789abcdef0',
      engine: 'workflow',
    },
    expected: [
      ...ALWAYS.filter((id) => id !== 'AwsSolutions-IAM5[Resource::<JanitorFunction.Arn>:*]'),
      ...CONTAINER_LISTING,
      WITH_TAG_AND_VPC[1]!,
      ...WORKFLOW,
    ],
  },
])('AwsSolutionsChecks on $name', ({ context, expected }) => {
  let stack: Stack;
  let findings: string[];
  beforeAll(() => {
    ({ stack, findings } = checked(context));
  });

  it('reports no unacknowledged finding', () => {
    expect(findings).toEqual([]);
  });

  it('acknowledges exactly the reviewed findings, each with a reason', () => {
    const acks = acknowledgements(stack);
    expect([...acks.keys()].sort()).toEqual([...expected].sort());
    for (const [id, reason] of acks) {
      expect(reason.length, `reason for ${id}`).toBeGreaterThan(40);
    }
  });
});

it('reports findings the construct did not acknowledge (the check can fail)', () => {
  const app = apps.app();
  const settings = parseAppContext(README_CONTEXT, { defaultPolicyFile: SHIPPED_POLICY });
  const stack = new RegistryJanitorStack(app, 'RegistryJanitor', { settings });
  new Queue(stack, 'Unreviewed');
  const report = new AwsSolutionsChecks(app).validateScope(stack);
  expect(report.violations.map((v) => v.ruleName)).toEqual(
    expect.arrayContaining(['AwsSolutions-SQS3', 'AwsSolutions-SQS4']),
  );
  expect(report.violations.flatMap((v) => v.violatingResources.map((r) => r.constructPath))).toEqual(
    report.violations.map(() => 'RegistryJanitor/Unreviewed/Resource'),
  );
});
