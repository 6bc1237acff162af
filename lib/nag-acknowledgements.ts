// The cdk-nag AwsSolutions findings the janitor accepts, each with its reason. test/lib/nag.test.ts checks the
// stack against AwsSolutions, so a new finding must be reviewed and acknowledged here.
import { CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type { Role } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import {
  DEFAULT_REPORTS_PREFIX,
  HISTORY_LISTING_PREFIX,
  JOURNAL_PREFIX,
  MANIFEST_CACHE_PREFIX,
} from '../lambda/core/contract.ts';
import { runKeyPatterns } from '../lambda/workflow/run-store.ts';
import { REVISIONS_PATH, s3RepositoriesPrefix, type S3StorageLocation } from '../lambda/core/history.ts';
import type { StorageSetting } from '../lambda/core/contract.ts';
import { storageSettingOf } from './function-environment.ts';
import type { RegistryJanitor, RegistryJanitorProps } from './registry-janitor.ts';
import { STEP_ACCESS, type JanitorWorkflow } from './workflow.ts';

/** cdk-nag AwsSolutions findings we accept, each with the reason (see test/lib/nag.test.ts). */
export function acknowledgeNagFindings(
  janitor: RegistryJanitor,
  props: RegistryJanitorProps,
  schedulerRole: Role,
): void {
  const policy = janitor.role.node.tryFindChild('DefaultPolicy') ?? janitor.role;
  const ack = (id: string, reason: string) => Validations.of(policy).acknowledge({ id, reason });
  ack(
    'AwsSolutions-IAM5[Resource::*]',
    'ssm:GetCommandInvocation, ListCommandInvocations and CancelCommand, and in a VPC ec2:DescribeNetworkInterfaces ' +
      'and DescribeSubnets, have no resource-level permissions (Service Authorization Reference); SendCommand, the ' +
      'one that acts, is scoped to the document and host.',
  );
  const bucket = logicalIdOf(janitor.cacheBucket);
  ack(
    `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${MANIFEST_CACHE_PREFIX}*]`,
    "The function gets and puts objects only under its own bucket's cache prefix; it names the cache object at run time.",
  );
  ack(
    `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${JOURNAL_PREFIX}*]`,
    "The function gets and puts objects only under its own bucket's journal prefix; it names the journal object (one per registry host) at run time.",
  );
  ack(
    `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${DEFAULT_REPORTS_PREFIX}*]`,
    "The function only puts objects under its own bucket's reports prefix; each run's report gets a new key (its date).",
  );
  if (storageSettingOf(props).kind === 'container') {
    ack(
      `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${HISTORY_LISTING_PREFIX}*]`,
      "The function signs the registry host's upload of each run's storage listing (a presigned PUT for one new " +
        "key under its own bucket's listing prefix, valid 10 minutes) and reads it back; the key is made per run.",
    );
  }
  const storage = storageSettingOf(props);
  if (storage.kind === 's3') ack(revisionLinksFinding(storage.location), REVISION_LINKS_REASON);
  if (props.instanceTag !== undefined) {
    ack(
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
      'The host is chosen by tag: SendCommand is allowed on instances only under an ssm:resourceTag condition.',
    );
  }
  if (props.vpc) {
    ack(
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]',
      "Lambda creates and removes the function's network interfaces at run time, so their ids are not known at " +
        'deploy time; creating one is also limited to the subnets and security groups the function uses.',
    );
  }
  if (janitor.workflow) {
    acknowledgeWorkflowFindings(janitor.workflow, bucket, props.vpc !== undefined, storage);
  } else {
    Validations.of(schedulerRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${logicalIdOf(janitor.janitorFunction)}.Arn>:*]`,
      reason:
        'Scheduler may invoke this one function; the :* suffix covers its versions and aliases (grantInvoke).',
    });
  }
  Validations.of(janitor.janitorFunction).acknowledge({
    id: 'AwsSolutions-L1',
    reason:
      'Pinned to nodejs22.x, the line the bundle targets (esbuild node22) and the project is tested on; ' +
      'moving to a newer runtime is a deliberate, tested change.',
  });
  Validations.of(janitor.cacheBucket).acknowledge({
    id: 'AwsSolutions-S1',
    reason:
      'A cache of immutable manifest facts keyed by digest, rebuilt if lost; access logs would need a second ' +
      'bucket and carry no audit value. Deletes in the registry are logged by the function itself.',
  });
  // Only when the janitor made the topic: a topic passed in is the caller's to review.
  const topic = janitor.node.tryFindChild('AlarmTopic');
  if (topic) {
    Validations.of(topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed SNS key, and alarm messages ' +
        'carry no secrets (alarm names and metric values). Pass alarmTopic to use a topic with your own KMS key.',
    });
  }
  Validations.of(janitor.failureQueue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: 'This queue is itself the dead-letter queue (Lambda on-failure destination and Scheduler DLQ).',
  });
}

/** The workflow's findings: per step role its own run-file patterns, the step functions' runtime, the execution role. */
function acknowledgeWorkflowFindings(
  workflow: JanitorWorkflow,
  bucket: string,
  inVpc: boolean,
  storage: StorageSetting,
): void {
  const containerListing = storage.kind === 'container';
  const patterns = runKeyPatterns();
  for (const [step, access] of Object.entries(STEP_ACCESS)) {
    const role = workflow.roles[step as keyof typeof STEP_ACCESS];
    const policy = role.node.tryFindChild('DefaultPolicy') ?? role;
    const ack = (id: string, reason: string) => Validations.of(policy).acknowledge({ id, reason });
    for (const key of new Set([...access.reads, ...access.writes])) {
      ack(
        `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${patterns[key]}]`,
        `The ${step} step reads or writes only this run file of the workflow (its own bucket's workflow-runs/ ` +
          'prefix): the run id is the execution name and the batch number is known only at run time.',
      );
    }
    if (access.history === true && storage.kind === 's3')
      ack(revisionLinksFinding(storage.location), REVISION_LINKS_REASON);
    const lists = access.history === true && containerListing;
    if (lists) {
      ack(
        `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${HISTORY_LISTING_PREFIX}*]`,
        `The ${step} step signs the registry host's upload of its storage listing (a presigned PUT for one new key ` +
          "under its own bucket's listing prefix, valid 10 minutes) and reads it back; the key is made per listing.",
      );
    }
    if ((inVpc && access.registry) || lists) {
      ack(
        'AwsSolutions-IAM5[Resource::*]',
        'ssm:GetCommandInvocation (following the history listing) and, in a VPC, ec2:DescribeNetworkInterfaces and ' +
          'DescribeSubnets have no resource-level permissions (Service Authorization Reference); SendCommand is ' +
          'scoped to the document and host, creating an interface to the subnets and security groups the step uses.',
      );
    }
    if (inVpc && access.registry) {
      ack(
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]',
        "Lambda creates and removes the step function's network interfaces at run time, so their ids are not known " +
          'at deploy time; creating one is also limited to the subnets and security groups the function uses.',
      );
    }
    if (access.cache) {
      ack(
        `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${MANIFEST_CACHE_PREFIX}*]`,
        "The inventory step gets and puts objects only under its own bucket's cache prefix; it names the cache object at run time.",
      );
    }
    if (access.journal) {
      ack(
        `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${JOURNAL_PREFIX}*]`,
        `The ${step} step ${access.journal === 'read' ? 'gets' : 'puts'} only objects under its own bucket's journal prefix; it names the journal object (one per registry host) at run time.`,
      );
    }
    if (access.reports) {
      ack(
        `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${DEFAULT_REPORTS_PREFIX}*]`,
        `The ${step} step only puts objects under its own bucket's reports prefix; each run's report gets a new key (its date).`,
      );
    }
    Validations.of(workflow.functions[step as keyof typeof STEP_ACCESS]).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Pinned to nodejs22.x, the line the bundle targets (esbuild node22) and the project is tested on; ' +
        'moving to a newer runtime is a deliberate, tested change.',
    });
  }
  const sm = workflow.stateMachine.role;
  const smPolicy = sm.node.tryFindChild('DefaultPolicy') ?? sm;
  Validations.of(smPolicy).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'ssm:GetCommandInvocation, X-Ray PutTraceSegments/GetSamplingRules and the CloudWatch Logs delivery actions ' +
      'the execution log needs have no resource-level permissions; SendCommand, the one that acts, is scoped to ' +
      'the document and host.',
  });
  for (const fn of Object.values(workflow.functions)) {
    Validations.of(smPolicy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${logicalIdOf(fn)}.Arn>:*]`,
      reason:
        'The state machine may invoke its step functions only; the :* suffix covers their versions and aliases (grantInvoke).',
    });
  }
}

const REVISION_LINKS_REASON =
  'The sweep looks at one revision link right before each DELETE (a HeadObject): GetObject on the registry ' +
  "storage's revision links alone (.../_manifests/revisions/sha256/<hex>/link, 71 bytes each), never on a blob; " +
  'the repository and digest are known only at run time.';

/** The finding of the revision-link lookup's grant (lib/grants.ts), as cdk-nag names it. */
function revisionLinksFinding(location: S3StorageLocation): string {
  return (
    `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${location.bucket}/` +
    `${s3RepositoriesPrefix(location)}*/${REVISIONS_PATH}/*/link]`
  );
}

/** The logical id cdk-nag names a resource by in its finding ids, e.g. `AwsSolutions-IAM5[Resource::<Id.Arn>/*]`. */
function logicalIdOf(construct: Construct): string {
  const child = construct.node.defaultChild;
  if (!(child instanceof CfnElement))
    throw new Error(`${construct.node.path} has no CloudFormation resource`);
  return Stack.of(construct).getLogicalId(child);
}
