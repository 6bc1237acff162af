// Grants a janitor role needs wherever it runs against the registry: its network interfaces in a VPC, the
// registry's credential and CA parameters, and the untagged-history listing. Shared by the main function's role
// and the workflow's step roles.
import { ArnFormat, Aws, Stack } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import { PolicyStatement, type Role } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { HISTORY_LISTING_PREFIX, type StorageSetting } from '../lambda/core/contract.ts';
import { REVISIONS_PATH, s3RepositoriesPrefix } from '../lambda/core/history.ts';

/**
 * What writing an object of the function's needs: a large one (a plan, a report) goes as a multipart upload, which
 * PutObject covers, and which a failed write aborts, so that its parts are not left in the bucket.
 */
export const UPLOAD_ACTIONS = ['s3:PutObject', 's3:AbortMultipartUpload'];

/**
 * What Lambda does with the function's role in a VPC: create its network interfaces in the function's subnets with
 * its security groups, and remove them again. Inline rather than AWSLambdaVPCAccessExecutionRole, which also
 * allows writing to every log group. Create is scoped to those subnets and groups; the interfaces themselves get
 * ids only at run time, so the rest is scoped to this account and region. Lambda's developer guide
 * (configuration-vpc) lists these actions; the managed policy's DescribeSubnets is kept for the checks Lambda makes.
 */
export function grantNetworkInterfaces(
  role: Role,
  vpc: IVpc,
  vpcSubnets: SubnetSelection | undefined,
  securityGroups: readonly ISecurityGroup[],
): void {
  const stack = Stack.of(role);
  const ec2 = (resource: string, resourceName: string) =>
    stack.formatArn({ service: 'ec2', resource, resourceName });
  const networkInterfaces = ec2('network-interface', '*');
  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'CreateFunctionNetworkInterfaces',
      actions: ['ec2:CreateNetworkInterface'],
      resources: [
        networkInterfaces,
        ...vpc.selectSubnets(vpcSubnets).subnetIds.map((id) => ec2('subnet', id)),
        ...securityGroups.map((g) => ec2('security-group', g.securityGroupId)),
      ],
    }),
  );
  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'ManageFunctionNetworkInterfaces',
      actions: [
        'ec2:DeleteNetworkInterface',
        'ec2:AssignPrivateIpAddresses',
        'ec2:UnassignPrivateIpAddresses',
      ],
      resources: [networkInterfaces],
    }),
  );
  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'DescribeFunctionNetwork',
      // No resource-level permissions for EC2 Describe calls.
      actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
      resources: ['*'],
    }),
  );
}

/** Read the registry's credential and CA parameters (and decrypt them through SSM with their own key). */
export function grantRegistryParameters(
  role: Role,
  props: {
    readonly credentialsParameter?: string | undefined;
    readonly caParameter?: string | undefined;
    readonly parameterKey?: IKey | undefined;
  },
): void {
  const names = [props.credentialsParameter, props.caParameter].filter((n): n is string => n !== undefined);
  if (names.length === 0) return;
  const stack = Stack.of(role);
  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'ReadRegistryParameters',
      actions: ['ssm:GetParameter'],
      resources: names.map((name) => parameterArn(stack, name)),
    }),
  );
  if (props.parameterKey) {
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'DecryptRegistryParameters',
        actions: ['kms:Decrypt'],
        resources: [props.parameterKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `ssm.${Aws.REGION}.amazonaws.com` } },
      }),
    );
  }
}

export function instanceArn(stack: Stack, id: string): string {
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

/**
 * What listing untagged history needs (HISTORY_STORAGE): from the registry container, receiving the listing in the
 * construct's bucket under history-listing/ (and, given `runCommand`, sending the construct's document to the one
 * host, for a role that has no GC grant of its own); from S3 storage, ListBucket on the driver's bucket for its
 * repositories prefix only, and GetObject on the revision links alone (the sweep's HeadObject of each right before
 * its DELETE), never on a blob.
 */
export function grantHistoryListing(
  role: Role,
  storage: StorageSetting,
  bucket: IBucket,
  runCommand?: { readonly documentArn: string; readonly instanceId: string },
): void {
  const stack = Stack.of(role);
  if (storage.kind === 'container') {
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ReceiveHistoryListing',
        actions: ['s3:PutObject', 's3:GetObject'],
        resources: [bucket.arnForObjects(`${HISTORY_LISTING_PREFIX}*`)],
      }),
    );
    if (runCommand) {
      role.addToPrincipalPolicy(
        new PolicyStatement({
          sid: 'ListHistoryOnRegistryHost',
          actions: ['ssm:SendCommand'],
          resources: [runCommand.documentArn, instanceArn(stack, runCommand.instanceId)],
        }),
      );
      role.addToPrincipalPolicy(
        new PolicyStatement({
          sid: 'ReadHistoryListingResult',
          // GetCommandInvocation has no resource-level permissions.
          actions: ['ssm:GetCommandInvocation'],
          resources: ['*'],
        }),
      );
    }
  } else if (storage.kind === 's3') {
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ListRegistryStorage',
        actions: ['s3:ListBucket'],
        resources: [
          stack.formatArn({ service: 's3', region: '', account: '', resource: storage.location.bucket }),
        ],
        conditions: { StringLike: { 's3:prefix': `${s3RepositoriesPrefix(storage.location)}*` } },
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LookUpRevisionLinks',
        actions: ['s3:GetObject'],
        resources: [
          stack.formatArn({
            service: 's3',
            region: '',
            account: '',
            resource: storage.location.bucket,
            resourceName: `${s3RepositoriesPrefix(storage.location)}*/${REVISIONS_PATH}/*/link`,
          }),
        ],
      }),
    );
  }
}
