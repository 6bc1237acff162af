// The app's context parser: what `-c` flags (strings) and cdk.json (typed values) turn into, and one message per
// kind of bad or missing context, each saying what to pass.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lambda/core/errors.ts';
import { CONTEXT_KEYS, parseAppContext } from '../../lib/context.ts';

const DEFAULT_POLICY = '/repo/retention-policy.yaml';
const parse = (context: Record<string, unknown>) =>
  parseAppContext(context, { defaultPolicyFile: DEFAULT_POLICY });
const README = { registryUrl: 'https://registry.internal:5000', instanceId: 'i-0123456789abcdef0' };

describe('parseAppContext', () => {
  it('takes the README example with safe defaults: dry run on, the shipped policy, no schedule override', () => {
    expect(parse(README)).toEqual({
      registryUrl: 'https://registry.internal:5000',
      instanceId: 'i-0123456789abcdef0',
      policyFile: DEFAULT_POLICY,
      dryRun: true,
    });
  });

  it('reads every key given as strings, the way -c passes them', () => {
    const settings = parse({
      registryUrl: 'https://registry.internal:5000',
      instanceTag: 'Role=docker-registry',
      containerName: 'registry',
      configPath: '/etc/distribution/config.yml',
      gcMode: 'offline',
      policyFile: 'policies/prod.yaml',
      schedule: 'cron(30 2 ? * SUN *)',
      dryRun: 'false',
      maxDeleteFraction: '0.25',
      credentialsParameter: '/registry-janitor/credentials',
      caParameter: '/registry-janitor/ca',
      parameterKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: 'subnet-0123456789abcdef0, subnet-0123456789abcdef1',
      securityGroupIds: 'sg-0123456789abcdef0',
      alarmEmail: 'ops@example.com',
    });
    expect(settings).toEqual({
      registryUrl: 'https://registry.internal:5000',
      instanceTag: 'Role=docker-registry',
      containerName: 'registry',
      configPath: '/etc/distribution/config.yml',
      gcMode: 'offline',
      policyFile: 'policies/prod.yaml',
      schedule: { minute: '30', hour: '2', month: '*', weekDay: 'SUN', year: '*' },
      dryRun: false,
      maxDeleteFraction: 0.25,
      credentialsParameter: '/registry-janitor/credentials',
      caParameter: '/registry-janitor/ca',
      parameterKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
      securityGroupIds: ['sg-0123456789abcdef0'],
      alarmEmail: 'ops@example.com',
    });
  });

  it('accepts typed values from cdk.json (booleans, numbers, lists)', () => {
    const settings = parse({
      ...README,
      dryRun: false,
      maxDeleteFraction: 1,
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: ['subnet-0123456789abcdef0'],
    });
    expect(settings).toMatchObject({
      dryRun: false,
      maxDeleteFraction: 1,
      subnetIds: ['subnet-0123456789abcdef0'],
    });
  });

  it.each([
    { dryRun: 'true', expected: true },
    { dryRun: 'false', expected: false },
    { dryRun: '', expected: true },
    { dryRun: undefined, expected: true },
  ])('dryRun=$dryRun means $expected', ({ dryRun, expected }) => {
    expect(parse({ ...README, dryRun }).dryRun).toBe(expected);
  });

  it('reads the credential and manual-apply switches, from -c strings or cdk.json values', () => {
    expect(
      parse({
        ...README,
        allowManualApply: 'true',
        tokenRealmHosts: 'Auth.Internal, auth2.internal:5001',
        allowInsecureHttp: 'false',
      }),
    ).toMatchObject({
      allowManualApply: true,
      tokenRealmHosts: ['auth.internal', 'auth2.internal:5001'],
      allowInsecureHttp: false,
    });
    expect(
      parse({
        ...README,
        allowManualApply: false,
        tokenRealmHosts: ['auth.internal'],
        allowInsecureHttp: true,
      }),
    ).toMatchObject({
      allowManualApply: false,
      tokenRealmHosts: ['auth.internal'],
      allowInsecureHttp: true,
    });
    expect(parse(README)).not.toHaveProperty('allowManualApply', expect.anything());
  });

  it.each([
    { context: { allowManualApply: 'yes' }, why: /allowManualApply: "yes" is not true or false/ },
    { context: { allowInsecureHttp: '1' }, why: /allowInsecureHttp: "1" is not true or false/ },
    {
      context: { tokenRealmHosts: 'https://auth.internal,ok.internal' },
      why: /tokenRealmHosts: "https:\/\/auth\.internal" not a host name: give it as host or host:port/,
    },
  ])('refuses $context', ({ context, why }) => {
    expect(() => parse({ ...README, ...context })).toThrow(why);
  });

  it.each(['container', 'none', 's3://registry-data/registry', 's3://registry-data'])(
    'takes storage=%s as given, for the construct to parse once',
    (storage) => {
      expect(parse({ ...README, storage }).storage).toBe(storage);
      expect(parse(README).storage).toBeUndefined();
    },
  );

  it('takes undoWindowHours as whole hours, and refuses what the construct would', () => {
    expect(parse({ ...README, undoWindowHours: '48' }).undoWindowHours).toBe(48);
    expect(parse({ ...README, undoWindowHours: 0 }).undoWindowHours).toBe(0);
    expect(parse(README).undoWindowHours).toBeUndefined();
    expect(() => parse({ ...README, undoWindowHours: 'a day' })).toThrow(
      /undoWindowHours: "a day" is not a whole number of hours from 0 to 8760, e\.g\. 24/,
    );
  });

  it('ignores context it does not own (CDK feature flags and the like)', () => {
    expect(() =>
      parse({
        ...README,
        '@aws-cdk/core:newStyleStackSynthesis': true,
        'aws:cdk:enable-path-metadata': true,
      }),
    ).not.toThrow();
  });

  it('lists the context keys the README documents', () => {
    expect([...CONTEXT_KEYS].sort()).toEqual(
      [
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
      ].sort(),
    );
  });

  it('takes engine and workflowConcurrency, and refuses what the construct would', () => {
    expect(parse({ ...README, engine: 'workflow', workflowConcurrency: '8' })).toMatchObject({
      engine: 'workflow',
      workflowConcurrency: 8,
    });
    expect(parse(README).engine).toBeUndefined();
    expect(() => parse({ ...README, engine: 'steps', workflowConcurrency: '0' })).toThrow(
      /engine: "steps" is not one of lambda, workflow[\s\S]*workflowConcurrency: "0" is not a whole number from 1 to 40/,
    );
  });

  it('takes the workflow batch sizes as whole numbers in range, from -c strings or cdk.json numbers', () => {
    expect(
      parse({ ...README, engine: 'workflow', workflowBatchTags: '5000', workflowBatchRepositories: 50 }),
    ).toMatchObject({ workflowBatchTags: 5000, workflowBatchRepositories: 50 });
    expect(parse(README).workflowBatchTags).toBeUndefined();
    expect(() => parse({ ...README, workflowBatchTags: '1e4', workflowBatchRepositories: '10001' })).toThrow(
      /workflowBatchTags: "1e4" is not a whole number from 1 to 200000[\s\S]*workflowBatchRepositories: "10001" is not a whole number from 1 to 10000/,
    );
    expect(() => parse({ ...README, workflowBatchTags: '0' })).toThrow(/workflowBatchTags: "0"/);
  });

  it('takes workflowWholeRunMemorySize as whole MB from 128 to 10240', () => {
    expect(parse({ ...README, engine: 'workflow', workflowWholeRunMemorySize: '6144' })).toMatchObject({
      workflowWholeRunMemorySize: 6144,
    });
    expect(parse(README).workflowWholeRunMemorySize).toBeUndefined();
    for (const bad of ['64', '10241', '3008.5', '3GB']) {
      expect(() => parse({ ...README, workflowWholeRunMemorySize: bad })).toThrow(
        new RegExp(`workflowWholeRunMemorySize: "${bad}" is not a whole number of MB from 128 to 10240`),
      );
    }
  });

  it.each([
    {
      name: 'no context at all',
      context: {},
      why: /missing context: pass -c registryUrl=https:\/\/<registry host>:<port> and -c instanceId=i-<registry host> \(or -c instanceTag=Key=Value\), e\.g\. npx cdk deploy -c registryUrl=https:\/\/registry\.internal:5000 -c instanceId=i-0123456789abcdef0/,
    },
    {
      name: 'no registryUrl',
      context: { instanceId: 'i-0123456789abcdef0' },
      why: /missing context: pass -c registryUrl=https:\/\/<registry host>:<port>, e\.g\./,
    },
    {
      name: 'no host',
      context: { registryUrl: 'https://registry.internal:5000' },
      why: /missing context: pass -c instanceId=i-<registry host> \(or -c instanceTag=Key=Value\)/,
    },
    { name: 'an empty registryUrl', context: { ...README, registryUrl: '  ' }, why: /pass -c registryUrl=/ },
    {
      name: 'a key in the wrong case',
      context: { registryUrl: 'https://r:5000', instanceid: 'i-0123456789abcdef0' },
      why: /instanceid: unknown context key; did you mean instanceId\? \(keys are case-sensitive\)/,
    },
    {
      name: 'a bad gcMode',
      context: { ...README, gcMode: 'fast' },
      why: /gcMode: "fast" is not one of readonly, offline, online/,
    },
    {
      name: 'a storage that is a host path',
      context: { ...README, storage: '/var/lib/registry' },
      why: /storage: "\/var\/lib\/registry" is not one of container \(the default: .*\), s3:\/\/BUCKET\/ROOTDIRECTORY .* or none \(no listing\)/,
    },
    {
      name: 'an s3 storage without a bucket',
      context: { ...README, storage: 's3:///registry' },
      why: /storage: "s3:\/\/\/registry" the bucket name is missing; give the S3 driver's bucket and rootdirectory as s3:\/\/BUCKET\/ROOTDIRECTORY/,
    },
    {
      name: 'a bad dryRun',
      context: { ...README, dryRun: 'yes' },
      why: /dryRun: "yes" is not true or false/,
    },
    {
      name: 'a fraction above 1',
      context: { ...README, maxDeleteFraction: '1.5' },
      why: /maxDeleteFraction: "1.5" is not a number from 0 to 1, e\.g\. 0\.5/,
    },
    {
      name: 'a percentage',
      context: { ...README, maxDeleteFraction: '50%' },
      why: /maxDeleteFraction: "50%"/,
    },
    {
      name: 'a bad schedule',
      context: { ...README, schedule: 'cron(0 3 * * *)' },
      why: /schedule: "cron\(0 3 \* \* \*\)" has 5 field/,
    },
    {
      name: 'a bad vpcId',
      context: { ...README, vpcId: 'my-vpc' },
      why: /vpcId: "my-vpc" is not a VPC id like vpc-/,
    },
    {
      name: 'a bad subnet id',
      context: {
        ...README,
        vpcId: 'vpc-0123456789abcdef0',
        subnetIds: 'subnet-0123456789abcdef0,10.0.1.0/24',
      },
      why: /subnetIds: "10\.0\.1\.0\/24" not like subnet-0123456789abcdef0 \(comma-separated\)/,
    },
    {
      name: 'a bad security group id',
      context: { ...README, vpcId: 'vpc-0123456789abcdef0', securityGroupIds: 'default' },
      why: /securityGroupIds: "default" not like sg-/,
    },
    {
      name: 'subnets without a VPC',
      context: { ...README, subnetIds: 'subnet-0123456789abcdef0' },
      why: /subnetIds and securityGroupIds need vpcId: pass -c vpcId=vpc-\.\.\. as well/,
    },
    {
      name: 'an alias instead of a key ARN',
      context: { ...README, parameterKeyArn: 'arn:aws:kms:eu-west-1:123456789012:alias/registry' },
      why: /parameterKeyArn: .* is not a KMS key ARN/,
    },
    {
      name: 'an object where a string belongs',
      context: { ...README, containerName: { name: 'registry' } },
      why: /containerName: expected a string, got \{"name":"registry"\}/,
    },
  ])('fails on $name', ({ context, why }) => {
    const attempt = () => parse(context);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(why);
  });

  it('reports every problem at once', () => {
    const attempt = () => parse({ gcMode: 'fast', dryRun: 'yes' });
    expect(attempt).toThrow(/missing context[\s\S]*gcMode: "fast"[\s\S]*dryRun: "yes"/);
  });
});
