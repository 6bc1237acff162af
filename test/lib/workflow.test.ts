// The Step Functions workflow (engine 'workflow'): the states of the definition and what they pass, each step
// role's grants (only what its step reads and writes), the execution role's (the one document on the one host),
// the schedule starting the state machine, the execution alarms and dashboard row, and the props it refuses.
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DELETE_GUARD_ERROR,
  OVERLAP_ERROR,
  PLAN_INCOMPLETE_ERROR,
  WORKFLOW_STEPS,
} from '../../lambda/core/contract.ts';
import { ConfigError } from '../../lambda/core/errors.ts';
import { RegistryJanitor, type RegistryJanitorProps } from '../../lib/registry-janitor.ts';
import {
  allActions,
  asList,
  createTestApps,
  flatten,
  roleOf,
  statementsOf,
  type Statement,
} from '../support/cfn-template.ts';

const BASE: RegistryJanitorProps = {
  registryUrl: 'https://registry.internal:5000',
  instanceId: 'i-0123456789abcdef0',
  policy: { rules: [{ repositories: ['**'], keep: { newest: 5 } }] },
  engine: 'workflow',
};
const INSTANCE_ARN =
  'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/i-0123456789abcdef0';
const DOCUMENT_ARN = expect.stringMatching(
  /^arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}:document\/\$\{JanitorGcDocument[0-9A-F]+\}$/,
) as string;
const BUCKET = /^\$\{JanitorManifestCache[0-9A-F]+\.Arn\}/;
/** The default storage (`container`): the listing comes back through the bucket, by the document on the host. */
const HISTORY_LISTING = [
  's3:GetObject bucket/history-listing/*',
  's3:PutObject bucket/history-listing/*',
  'ssm:GetCommandInvocation *',
  'ssm:SendCommand document',
  'ssm:SendCommand instance',
];
/** A run file or a report: PutObject, and the abort of a multipart upload that failed half-way. */
const written = (object: string): string[] => [`s3:PutObject ${object}`, `s3:AbortMultipartUpload ${object}`];

const apps = createTestApps({ bundle: false });
afterAll(() => apps.dispose());

function synth(props: Partial<RegistryJanitorProps> = {}) {
  const stack = new Stack(apps.app(), 'Test');
  const janitor = new RegistryJanitor(stack, 'Janitor', { ...BASE, ...props });
  return { stack, janitor, template: Template.fromStack(stack) };
}

interface State {
  Type: string;
  TimeoutSeconds?: number;
  Next?: string;
  Default?: string;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  ItemProcessor?: { States: Record<string, State> };
  MaxConcurrency?: number;
  ItemsPath?: string;
  Seconds?: number;
  Catch?: { Next: string }[];
  Error?: string;
  Cause?: string;
  CausePath?: string;
  Choices?: Record<string, unknown>[];
}

function definitionOf(template: Template): {
  StartAt: string;
  States: Record<string, State>;
  TimeoutSeconds: number;
} {
  const machines = Object.values(template.findResources('AWS::StepFunctions::StateMachine')) as {
    Properties: { DefinitionString: unknown };
  }[];
  expect(machines).toHaveLength(1);
  return JSON.parse(flatten(machines[0]!.Properties.DefinitionString) as string) as never;
}

/** The statements of one step's role, without the log-group grant every role has. */
function stepStatements(template: Template, step: string): Statement[] {
  const role = roleOf(template, { Description: Match.stringLikeRegexp(`the ${step} step`) });
  return statementsOf(template, role).filter((s) => !asList(s.Action).includes('logs:PutLogEvents'));
}

/** `action resource` pairs, the bucket's ARN shortened to `bucket`. */
function grants(statements: readonly Statement[]): string[] {
  return statements
    .flatMap((s) =>
      asList(s.Action).flatMap((a) =>
        asList(s.Resource).map((r) => `${a} ${String(r).replace(BUCKET, 'bucket')}`),
      ),
    )
    .sort();
}

describe("engine 'workflow' with defaults", () => {
  let template: Template;
  let janitor: RegistryJanitor;
  let definition: ReturnType<typeof definitionOf>;
  beforeAll(() => {
    ({ template, janitor } = synth());
    definition = definitionOf(template);
  });

  it('has the states of the workflow, starting with the overlap check', () => {
    expect(definition.StartAt).toBe('CheckOverlap');
    expect(Object.keys(definition.States).sort()).toEqual(
      [
        'CheckOverlap',
        'CheckOverlapFailed',
        'OverlapCheck',
        'RecordOverlap',
        'RefuseOverlap',
        'Probe',
        'ProbeFailed',
        'Inventory',
        'InventoryFailed',
        'Plan',
        'PlanFailed',
        'PlanOutcome',
        'DryRunDone',
        'PlanIncomplete',
        'DeleteGuardTripped',
        'UnknownPlanOutcome',
        'Apply',
        'ApplyFailed',
        'Collect',
        'CollectFailed',
        'GcNeeded',
        'GcSkipped',
        'SendGcCommand',
        'WaitForGc',
        'GetGcInvocation',
        'CountGcPoll',
        'GcFinished',
        'GcWaitExceeded',
        'GcFailed',
        'Verify',
        'VerifyFailed',
        'Report',
        'ReportFailed',
        'Done',
        'ExecutionFailed',
      ].sort(),
    );
    const s = definition.States;
    expect(s.CheckOverlap!.Resource).toBe('arn:${AWS::Partition}:states:::aws-sdk:sfn:listExecutions');
    expect(s.CheckOverlap!.Parameters).toEqual({
      'StateMachineArn.$': '$$.StateMachine.Id',
      StatusFilter: 'RUNNING',
      MaxResults: 10,
    });
    expect(s.RecordOverlap!.Resource).toBe('arn:${AWS::Partition}:states:::sqs:sendMessage');
    expect(s.RecordOverlap!.Next).toBe('RefuseOverlap');
    expect(s.RefuseOverlap).toMatchObject({ Type: 'Fail', Error: OVERLAP_ERROR });
    expect(s.PlanIncomplete).toMatchObject({
      Type: 'Fail',
      Error: PLAN_INCOMPLETE_ERROR,
      CausePath: '$.plan.Payload.reason',
    });
    expect(s.DeleteGuardTripped).toMatchObject({
      Type: 'Fail',
      Error: DELETE_GUARD_ERROR,
      CausePath: '$.plan.Payload.reason',
    });
    expect(s.DryRunDone).toMatchObject({ Type: 'Succeed', OutputPath: '$.plan.Payload' });
    expect(s.Done).toMatchObject({ Type: 'Succeed', OutputPath: '$.report.Payload' });
  });

  it('invokes the step functions with lambda:invoke, passing only the run id and a batch number, keeping the Payload', () => {
    const s = definition.States;
    const fn = (step: string): string =>
      expect.stringMatching(new RegExp(`^\\$\\{JanitorWorkflow${step}Function[0-9A-F]+\\.Arn\\}$`)) as string;
    const task = (step: string, payload: Record<string, unknown>) => ({
      Type: 'Task',
      Resource: 'arn:${AWS::Partition}:states:::lambda:invoke',
      Parameters: { FunctionName: fn(step), Payload: payload },
      ResultSelector: { 'Payload.$': '$.Payload' },
      // A little above the function's 900 s.
      TimeoutSeconds: 960,
    });
    const run = { 'runId.$': '$$.Execution.Name' };
    expect(s.Probe).toMatchObject({
      ...task('Probe', { step: 'probe', ...run, 'input.$': '$$.Execution.Input' }),
      ResultPath: '$.probe',
    });
    for (const [map, inner, step] of [
      ['Inventory', 'InventoryBatch', 'inventory'],
      ['Apply', 'ApplyBatch', 'apply'],
      ['Verify', 'VerifyBatch', 'verify'],
    ] as const) {
      expect(s[map]).toMatchObject({ Type: 'Map', ItemsPath: '$.probe.Payload.batches', MaxConcurrency: 4 });
      expect(s[map]!.ItemProcessor!.States[inner]).toMatchObject(
        task(map, { step, ...run, 'batch.$': '$.batch' }),
      );
    }
    expect(s.Plan).toMatchObject({ ...task('Plan', { step: 'plan', ...run }), ResultPath: '$.plan' });
    expect(s.Collect).toMatchObject({
      ...task('Collect', { step: 'collect', ...run }),
      ResultPath: '$.collect',
    });
    expect(s.Report).toMatchObject({
      ...task('Report', { step: 'report', ...run, 'gc.$': '$.gc' }),
      ResultPath: '$.report',
    });
    expect(JSON.stringify(s.PlanOutcome!.Choices)).toContain('"Variable":"$.plan.Payload.outcome"');
    expect(JSON.stringify(s.GcNeeded!.Choices)).toContain('"Variable":"$.collect.Payload.gc.run"');
  });

  it('a failed inventory, apply or verify batch is caught in its iteration (the next step sees its part missing)', () => {
    const s = definition.States;
    expect(s.Inventory!.ItemProcessor!.States.InventoryBatch!.Catch).toEqual([
      expect.objectContaining({ Next: 'InventoryBatchFailed' }),
    ]);
    expect(s.Verify!.ItemProcessor!.States.VerifyBatch!.Catch).toEqual([
      expect.objectContaining({ Next: 'VerifyBatchFailed' }),
    ]);
    expect(s.Apply!.ItemProcessor!.States.ApplyBatch!.Catch).toEqual([
      expect.objectContaining({ Next: 'ApplyBatchFailed' }),
    ]);
  });

  it('catches every step into a Pass that names it, then one Fail with its error and cause', () => {
    const s = definition.States;
    for (const name of [
      'CheckOverlap',
      'Probe',
      'Inventory',
      'Plan',
      'Apply',
      'Collect',
      'Verify',
      'Report',
    ]) {
      expect(s[name]!.Catch, name).toEqual([expect.objectContaining({ Next: `${name}Failed` })]);
      expect(s[`${name}Failed`]).toMatchObject({
        Type: 'Pass',
        Next: 'ExecutionFailed',
        Parameters: {
          state: name,
          'cause.$': `States.Format('the ${name} state failed: {}', $.error.Cause)`,
        },
      });
    }
    expect(s.ExecutionFailed).toMatchObject({
      Type: 'Fail',
      ErrorPath: '$.failure.error',
      CausePath: '$.failure.cause',
    });
  });

  it('runs garbage-collect with the SSM integration: SendCommand, then Wait and GetCommandInvocation, bounded', () => {
    const s = definition.States;
    expect(s.SendGcCommand).toMatchObject({
      Resource: 'arn:${AWS::Partition}:states:::aws-sdk:ssm:sendCommand',
      Next: 'WaitForGc',
      Parameters: {
        DocumentName: expect.stringMatching(/^\$\{JanitorGcDocument[0-9A-F]+\}$/),
        InstanceIds: ['i-0123456789abcdef0'],
        'Parameters.$': '$.collect.Payload.gc.parameters',
      },
    });
    expect(s.WaitForGc).toEqual({ Type: 'Wait', Seconds: 60, Next: 'GetGcInvocation' });
    expect(s.GetGcInvocation).toMatchObject({
      Resource: 'arn:${AWS::Partition}:states:::aws-sdk:ssm:getCommandInvocation',
      Next: 'CountGcPoll',
    });
    expect(s.CountGcPoll!.Next).toBe('GcFinished');
    // The default GC timeout (3600 s) and 600 s more, at 60 s a poll.
    expect(JSON.stringify(s.GcFinished!.Choices)).toContain('"NumericGreaterThanEquals":70');
    expect(janitor.workflow!.maxGcPolls).toBe(70);
    expect(s.GcFinished!.Default).toBe('Verify');
    expect(s.GcWaitExceeded!.Next).toBe('Verify');
    expect(s.GcFailed!.Next).toBe('Verify');
    expect(s.GcSkipped!.Next).toBe('Verify');
    expect(definition.TimeoutSeconds).toBe(3600 + 12 * 3600);
  });

  it('one Node 22 function per step from the workflow bundle, 15 minutes each, no reserved concurrency', () => {
    const fns = template.findResources('AWS::Lambda::Function', {
      Properties: { Description: Match.stringLikeRegexp('registry-janitor workflow') },
    });
    expect(Object.keys(fns)).toHaveLength(WORKFLOW_STEPS.length);
    for (const fn of Object.values(fns) as { Properties: Record<string, unknown> }[]) {
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], Timeout: 900 });
      expect(fn.Properties.ReservedConcurrentExecutions).toBeUndefined();
    }
    const roles = new Set(
      WORKFLOW_STEPS.map((step) =>
        roleOf(template, { Description: Match.stringLikeRegexp(`the ${step} step`) }),
      ),
    );
    expect(roles.size).toBe(WORKFLOW_STEPS.length);
  });

  it.each([
    [
      'probe',
      [
        ...HISTORY_LISTING,
        's3:GetObject bucket/journal/*',
        ...written('bucket/workflow-runs/*/history.json'),
        ...written('bucket/workflow-runs/*/journal.json'),
        ...written('bucket/workflow-runs/*/run.json'),
      ],
    ],
    [
      'inventory',
      [
        'kms:GenerateMac ${JanitorCacheMacKey}',
        'kms:VerifyMac ${JanitorCacheMacKey}',
        's3:GetObject bucket/manifest-cache/*',
        's3:GetObject bucket/workflow-runs/*/history.json',
        's3:GetObject bucket/workflow-runs/*/journal.json',
        's3:GetObject bucket/workflow-runs/*/run.json',
        's3:ListBucket bucket',
        's3:PutObject bucket/manifest-cache/*',
        ...written('bucket/workflow-runs/*/inventory/*.json'),
      ],
    ],
    [
      'plan',
      [
        's3:GetObject bucket/workflow-runs/*/inventory/*.json',
        's3:GetObject bucket/workflow-runs/*/journal.json',
        's3:GetObject bucket/workflow-runs/*/run.json',
        's3:ListBucket bucket',
        's3:PutObject bucket/journal/*',
        ...written('bucket/reports/*'),
        ...written('bucket/workflow-runs/*/journal.json'),
        ...written('bucket/workflow-runs/*/plan.json'),
        ...written('bucket/workflow-runs/*/plan/*.json'),
      ],
    ],
    [
      'apply',
      [
        ...HISTORY_LISTING,
        's3:GetObject bucket/workflow-runs/*/journal.json',
        's3:GetObject bucket/workflow-runs/*/plan/*.json',
        ...written('bucket/workflow-runs/*/apply/*.json'),
      ],
    ],
    [
      'collect',
      [
        's3:GetObject bucket/workflow-runs/*/apply/*.json',
        's3:GetObject bucket/workflow-runs/*/journal.json',
        's3:GetObject bucket/workflow-runs/*/plan.json',
        's3:GetObject bucket/workflow-runs/*/run.json',
        's3:ListBucket bucket',
        's3:PutObject bucket/journal/*',
        ...written('bucket/workflow-runs/*/deletions.json'),
      ],
    ],
    [
      'verify',
      ['s3:GetObject bucket/workflow-runs/*/plan/*.json', ...written('bucket/workflow-runs/*/verify/*.json')],
    ],
    [
      'report',
      [
        's3:GetObject bucket/workflow-runs/*/deletions.json',
        's3:GetObject bucket/workflow-runs/*/plan.json',
        's3:GetObject bucket/workflow-runs/*/plan/*.json',
        's3:GetObject bucket/workflow-runs/*/run.json',
        's3:GetObject bucket/workflow-runs/*/verify/*.json',
        's3:ListBucket bucket',
        ...written('bucket/reports/*'),
      ],
    ],
  ])('the %s step role gets only what the step uses', (step, expected) => {
    const got = grants(stepStatements(template, step)).map((g) =>
      g
        .replace(/\$\{JanitorCacheMacKey[0-9A-F]+\.Arn\}/, '${JanitorCacheMacKey}')
        .replace(/ arn:\S+:document\/\$\{JanitorGcDocument[0-9A-F]+\}$/, ' document')
        .replace(INSTANCE_ARN, 'instance'),
    );
    got.sort();
    expect(got).toEqual([...expected].sort());
  });

  it('only probe and apply may run the document (the history listing), on the one host; only probe reads the journal, only plan and collect write it', () => {
    for (const step of WORKFLOW_STEPS) {
      const statements = stepStatements(template, step);
      const lists = step === 'probe' || step === 'apply';
      expect(
        allActions(statements).filter((a) => a.startsWith('ssm:')),
        step,
      ).toEqual(lists ? ['ssm:GetCommandInvocation', 'ssm:SendCommand'] : []);
      if (lists) {
        const send = statements.filter((st) => asList(st.Action).includes('ssm:SendCommand'));
        expect(send.flatMap((st) => asList(st.Resource))).toEqual([DOCUMENT_ARN, INSTANCE_ARN]);
      }
      const onJournal = grants(stepStatements(template, step)).filter((g) => g.includes(' bucket/journal/'));
      expect(onJournal, step).toEqual(
        step === 'probe'
          ? ['s3:GetObject bucket/journal/*']
          : step === 'plan' || step === 'collect'
            ? ['s3:PutObject bucket/journal/*']
            : [],
      );
    }
  });

  it('the execution role may SendCommand only the one document on the one host, and list only its own executions', () => {
    const machine = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0] as {
      Properties: { RoleArn: { 'Fn::GetAtt': [string, string] }; StateMachineName: string };
    };
    const statements = statementsOf(template, machine.Properties.RoleArn['Fn::GetAtt'][0]);
    const send = statements.filter((s) => asList(s.Action).includes('ssm:SendCommand'));
    expect(send).toHaveLength(1);
    expect(asList(send[0]!.Action)).toEqual(['ssm:SendCommand']);
    expect(asList(send[0]!.Resource)).toHaveLength(2);
    expect(asList(send[0]!.Resource)).toEqual(expect.arrayContaining([DOCUMENT_ARN, INSTANCE_ARN]));
    expect(statements.filter((s) => asList(s.Action).includes('ssm:GetCommandInvocation'))).toEqual([
      expect.objectContaining({ Action: 'ssm:GetCommandInvocation', Resource: '*' }),
    ]);
    expect(allActions(statements).filter((a) => a.startsWith('ssm:'))).toEqual([
      'ssm:GetCommandInvocation',
      'ssm:SendCommand',
    ]);
    expect(statements.filter((s) => asList(s.Action).includes('states:ListExecutions'))).toEqual([
      expect.objectContaining({
        Resource: `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:stateMachine:${machine.Properties.StateMachineName}`,
      }),
    ]);
    expect(allActions(statements)).not.toContain('s3:GetObject');
    const invoked = statements
      .filter((s) => asList(s.Action).includes('lambda:InvokeFunction'))
      .flatMap((s) => asList(s.Resource));
    expect(invoked.every((r) => /^\$\{JanitorWorkflow\w+Function[0-9A-F]+\.Arn\}(:\*)?$/.test(r))).toBe(true);
    expect(invoked).toHaveLength(2 * WORKFLOW_STEPS.length);
  });

  it('the schedule starts the state machine, not the function; the bucket lets the step roles write', () => {
    const target = template.toJSON().Resources as Record<
      string,
      { Type: string; Properties: { Target: { Arn: unknown } } }
    >;
    const schedule = Object.values(target).find((r) => r.Type === 'AWS::Scheduler::Schedule')!;
    expect(flatten(schedule.Properties.Target.Arn)).toMatch(/^\$\{JanitorWorkflowStateMachine[0-9A-F]+\}$/);
    const bucketPolicy = Object.values(template.findResources('AWS::S3::BucketPolicy'))[0] as {
      Properties: { PolicyDocument: { Statement: Statement[] } };
    };
    const deny = bucketPolicy.Properties.PolicyDocument.Statement.map((s) => flatten(s) as Statement).find(
      (s) => s.Sid === 'OnlyTheJanitorWritesTheCache',
    )!;
    expect(asList(deny.Condition!.ArnNotEquals!['aws:PrincipalArn'] as string[])).toHaveLength(
      1 + WORKFLOW_STEPS.length,
    );
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'workflow-runs/', ExpirationInDays: 7 })]),
      },
    });
  });

  it('alarms on failed, timed-out and aborted executions, and the dashboard shows executions', () => {
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/States',
        MetricName: metric,
        Threshold: 1,
        Dimensions: [
          { Name: 'StateMachineArn', Value: { Ref: Match.stringLikeRegexp('^JanitorWorkflowStateMachine') } },
        ],
        AlarmActions: Match.anyValue(),
      });
    }
    const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0] as {
      Properties: { DashboardBody: unknown };
    };
    const body = JSON.stringify(flatten(dashboard.Properties.DashboardBody));
    expect(body).toContain('Workflow executions');
    expect(body).toContain('ExecutionsStarted');
    expect(body).toContain('ExecutionsFailed');
  });
});

describe('workflow props', () => {
  it.each([
    [
      's3://registry-data/registry',
      [
        's3:GetObject arn:${AWS::Partition}:s3:::registry-data/registry/docker/registry/v2/repositories/*/_manifests/revisions/sha256/*/link',
        's3:ListBucket arn:${AWS::Partition}:s3:::registry-data',
      ],
      { StringLike: { 's3:prefix': 'registry/docker/registry/v2/repositories/*' } },
    ],
    ['none', [], undefined],
  ])('storage %s: probe and apply get only what that listing needs', (storage, expected, condition) => {
    const { template } = synth({ storage });
    for (const step of ['probe', 'apply']) {
      const statements = stepStatements(template, step).filter(
        (st) =>
          st.Sid === 'ListRegistryStorage' || st.Sid === 'LookUpRevisionLinks' || st.Sid?.includes('History'),
      );
      expect(grants(statements), step).toEqual(expected);
      if (condition)
        expect(statements.find((st) => st.Sid === 'ListRegistryStorage')!.Condition, step).toEqual(condition);
      expect(allActions(stepStatements(template, step)).filter((a) => a.startsWith('ssm:'))).toEqual([]);
    }
  });

  it('sizes the Map states and the GC loop from the props', () => {
    const { template, janitor } = synth({
      workflowConcurrency: 8,
      environment: { GC_TIMEOUT_SECONDS: '14400' },
    });
    const s = definitionOf(template).States;
    expect(s.Inventory!.MaxConcurrency).toBe(8);
    expect(s.Apply!.MaxConcurrency).toBe(8);
    expect(janitor.workflow!.maxGcPolls).toBe(Math.ceil((14400 + 600) / 60));
  });

  it('gives every step function the batch sizes the props set, and none when they are left to the default', () => {
    const stepEnvironments = (t: Template) =>
      Object.values(
        t.findResources('AWS::Lambda::Function', {
          Properties: { Description: Match.stringLikeRegexp('registry-janitor workflow') },
        }),
      ).map(
        (fn) =>
          (fn as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties
            .Environment.Variables,
      );
    const set = stepEnvironments(synth({ workflowBatchTags: 5000, workflowBatchRepositories: 50 }).template);
    expect(set).toHaveLength(WORKFLOW_STEPS.length);
    for (const env of set) expect(env).toMatchObject({ BATCH_TAGS: '5000', BATCH_REPOSITORIES: '50' });
    for (const env of stepEnvironments(synth().template)) {
      expect(env.BATCH_TAGS).toBeUndefined();
      expect(env.BATCH_REPOSITORIES).toBeUndefined();
    }
  });

  it('gives the steps that hold the whole run (plan, collect, report) their own memory (3008 MB unless set); the others memorySize', () => {
    const sizes = (t: Template) =>
      Object.fromEntries(
        WORKFLOW_STEPS.map((step) => {
          const fns = t.findResources('AWS::Lambda::Function', {
            Properties: { Description: Match.stringLikeRegexp(`the ${step} step`) },
          });
          const [fn] = Object.values(fns) as { Properties: { MemorySize: number } }[];
          return [step, fn!.Properties.MemorySize];
        }),
      );
    const wholeRun = ['plan', 'collect', 'report'];
    const byDefault = sizes(synth().template);
    for (const step of WORKFLOW_STEPS)
      expect(byDefault[step], step).toBe(wholeRun.includes(step) ? 3008 : 1024);
    const set = sizes(synth({ memorySize: 512, workflowWholeRunMemorySize: 6144 }).template);
    for (const step of WORKFLOW_STEPS) expect(set[step], step).toBe(wholeRun.includes(step) ? 6144 : 512);
  });

  it('keeps the GC loop within 1,000 looks: a long GC timeout polls less often by default', () => {
    // 48 hours (SSM's most) at a minute a look would be 2,890 looks, some 32,000 events: past the 25,000 kept.
    const { template: t, janitor } = synth({ environment: { GC_TIMEOUT_SECONDS: '172800' } });
    expect(definitionOf(t).States.WaitForGc).toMatchObject({ Seconds: 174 });
    expect(janitor.workflow!.maxGcPolls).toBe(Math.ceil((172800 + 600) / 174));
    expect(janitor.workflow!.maxGcPolls).toBeLessThanOrEqual(1000);
    // Up to 16 hours, a minute.
    expect(synth({ environment: { GC_TIMEOUT_SECONDS: '57600' } }).janitor.workflow!.maxGcPolls).toBe(970);
  });

  it("engine 'lambda' (the default) makes no state machine and the schedule invokes the function", () => {
    const { template, janitor } = synth({ engine: undefined });
    expect(janitor.workflow).toBeUndefined();
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 0);
    template.resourceCountIs('AWS::Lambda::Function', 1);
  });

  it.each([
    [{ instanceId: undefined, instanceTag: 'Role=registry' }, /engine: 'workflow' .* needs instanceId/],
    [{ workflowConcurrency: 0 }, /workflowConcurrency: 0 is not a whole number from 1 to 40/],
    [{ workflowConcurrency: 41 }, /workflowConcurrency: 41/],
    [
      { engine: undefined, workflowConcurrency: 4 },
      /workflowConcurrency is set but engine is not 'workflow'/,
    ],
    [{ engine: 'steps' as never }, /engine: "steps" is not one of lambda, workflow/],
    [{ workflowBatchTags: 0 }, /workflowBatchTags: 0 is not a whole number from 1 to 200,000/],
    [{ workflowBatchTags: 2.5 }, /workflowBatchTags: 2.5 is not a whole number/],
    [
      { workflowBatchRepositories: 10_001 },
      /workflowBatchRepositories: 10001 is not a whole number from 1 to 10,000/,
    ],
    [{ engine: undefined, workflowBatchTags: 100 }, /workflowBatchTags is set but engine is not 'workflow'/],
    [
      { workflowWholeRunMemorySize: 64 },
      /workflowWholeRunMemorySize: 64 is not a whole number of MB from 128 to 10,240/,
    ],
    [
      { engine: undefined, workflowWholeRunMemorySize: 4096 },
      /workflowWholeRunMemorySize is set but engine is not 'workflow'/,
    ],
    [
      { environment: { BATCH_TAGS: '100' } },
      /environment.BATCH_TAGS: set by the construct; use workflowBatchTags instead/,
    ],
    [
      { gcPollInterval: Duration.seconds(10), environment: { GC_TIMEOUT_SECONDS: '14400' } },
      /gcPollInterval: 10 s makes 1500 looks .* over the 1000 .* set it to at least 15 s, or leave it unset/,
    ],
  ])('refuses %o', (props, message) => {
    expect(() => synth(props)).toThrow(ConfigError);
    expect(() => synth(props)).toThrow(message);
  });
});
