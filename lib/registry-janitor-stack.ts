// The deployable stack: turns the app's settings (from CDK context) into a RegistryJanitor, importing the VPC,
// subnets, security groups and KMS key by id so that synth needs no AWS lookups unless a VPC must be discovered.
import { CfnOutput, Fn, Stack, type StackProps, TimeZone, Token } from 'aws-cdk-lib';
import {
  type ISecurityGroup,
  type IVpc,
  SecurityGroup,
  Subnet,
  type SubnetSelection,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { Key } from 'aws-cdk-lib/aws-kms';
import { ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import type { Construct } from 'constructs';
import { ConfigError } from '../lambda/core/errors.ts';
import type { AppSettings } from './context.ts';
import { RegistryJanitor } from './registry-janitor.ts';

export interface RegistryJanitorStackProps extends StackProps {
  /** What to clean and how, usually from `parseAppContext`. */
  readonly settings: AppSettings;
}

export class RegistryJanitorStack extends Stack {
  public readonly janitor: RegistryJanitor;

  public constructor(scope: Construct, id: string, props: RegistryJanitorStackProps) {
    super(scope, id, props);
    const s = props.settings;
    const network = this.network(s);
    this.janitor = new RegistryJanitor(this, 'Janitor', {
      registryUrl: s.registryUrl,
      instanceId: s.instanceId,
      instanceTag: s.instanceTag,
      containerName: s.containerName,
      configPath: s.configPath,
      gcMode: s.gcMode,
      policyFile: s.policyFile,
      schedule: s.schedule && ScheduleExpression.cron({ ...s.schedule, timeZone: TimeZone.ETC_UTC }),
      dryRun: s.dryRun,
      maxDeleteFraction: s.maxDeleteFraction,
      credentialsParameter: s.credentialsParameter,
      caParameter: s.caParameter,
      parameterKey:
        s.parameterKeyArn === undefined ? undefined : Key.fromKeyArn(this, 'ParameterKey', s.parameterKeyArn),
      ...network,
      alarmEmail: s.alarmEmail,
      allowManualApply: s.allowManualApply,
      tokenRealmHosts: s.tokenRealmHosts,
      allowInsecureHttp: s.allowInsecureHttp,
      storage: s.storage,
      undoWindowHours: s.undoWindowHours,
      engine: s.engine,
      workflowConcurrency: s.workflowConcurrency,
      workflowBatchTags: s.workflowBatchTags,
      workflowBatchRepositories: s.workflowBatchRepositories,
      workflowWholeRunMemorySize: s.workflowWholeRunMemorySize,
    });

    // What the README's next steps need: the function to invoke, the log to read, where alarms and failures go.
    const j = this.janitor;
    new CfnOutput(this, 'FunctionName', { value: j.janitorFunction.functionName });
    new CfnOutput(this, 'LogGroupName', { value: j.logGroup.logGroupName });
    new CfnOutput(this, 'AlarmTopicArn', { value: j.alarmTopic.topicArn });
    new CfnOutput(this, 'FailedRunsQueueUrl', { value: j.failureQueue.queueUrl });
    new CfnOutput(this, 'ManifestCacheBucket', { value: j.cacheBucket.bucketName });
    new CfnOutput(this, 'ReportsLocation', {
      value: j.reportsLocation,
      description: "Each run's HTML report and JSON plan, under <date>/ (kept 90 days)",
    });
    if (j.workflow) {
      new CfnOutput(this, 'StateMachineArn', {
        value: j.workflow.stateMachine.stateMachineArn,
        description:
          'The workflow the schedule starts (aws stepfunctions start-execution --state-machine-arn …)',
      });
    }
    new CfnOutput(this, 'DashboardUrl', {
      value:
        `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}` +
        `#dashboards:name=${j.dashboard.dashboardName}`,
    });
  }

  private network(s: AppSettings): {
    vpc?: IVpc;
    vpcSubnets?: SubnetSelection;
    securityGroups?: ISecurityGroup[];
  } {
    if (s.vpcId === undefined) return {};
    const securityGroups = s.securityGroupIds?.map((sgId, i) =>
      SecurityGroup.fromSecurityGroupId(this, `SecurityGroup${i}`, sgId, { mutable: false }),
    );
    if (s.subnetIds !== undefined) {
      // Subnets given by id: the function needs only their ids, so no lookup (and no credentials) is needed.
      // The zones are never read; a token keeps them from triggering an availability-zone lookup.
      const vpc = Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: s.vpcId, availabilityZones: Fn.getAzs() });
      const subnets = s.subnetIds.map((subnetId, i) => Subnet.fromSubnetId(this, `Subnet${i}`, subnetId));
      return { vpc, vpcSubnets: { subnets }, securityGroups };
    }
    if (Token.isUnresolved(this.account) || Token.isUnresolved(this.region)) {
      throw new ConfigError(
        `vpcId=${s.vpcId} without subnetIds makes the CDK look the VPC up, which needs an AWS account and region: ` +
          'run cdk with credentials (--profile NAME, or AWS_PROFILE) so it sets CDK_DEFAULT_ACCOUNT and ' +
          'CDK_DEFAULT_REGION, or pass -c subnetIds=subnet-…,subnet-… (and -c securityGroupIds=sg-…) to skip the lookup.',
      );
    }
    return { vpc: Vpc.fromLookup(this, 'Vpc', { vpcId: s.vpcId }), securityGroups };
  }
}
