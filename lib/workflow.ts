// The Step Functions workflow of the janitor (engine `workflow`): a Standard state machine over one function per
// step of lambda/workflow-handler.ts, each with a role that gets only what its step reads and writes. The states
// pass the run id (the execution's name) and batch numbers; the steps keep their data in the bucket under
// workflow-runs/. Garbage-collect runs through the SSM service integration, waited for by Step Functions itself.
import { fileURLToPath } from 'node:url';
import { ArnFormat, Duration, Names, Stack } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type ILogGroup, LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import {
  Choice,
  Condition,
  DefinitionBody,
  Fail,
  JsonPath,
  LogLevel,
  Map as MapState,
  Pass,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Timeout,
  Wait,
  WaitTime,
  type IChainable,
  type CatchProps,
  type INextable,
} from 'aws-cdk-lib/aws-stepfunctions';
import { CallAwsService, LambdaInvoke, SqsSendMessage } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import {
  DEFAULT_REPORTS_PREFIX,
  DELETE_GUARD_ERROR,
  GC_WAIT_MARGIN_SECONDS,
  gcPollsFor,
  JOURNAL_PREFIX,
  MANIFEST_CACHE_PREFIX,
  OVERLAP_ERROR,
  PLAN_INCOMPLETE_ERROR,
  PLAN_OUTCOMES,
  WHOLE_RUN_STEPS,
  WORKFLOW_STEPS,
  type StorageSetting,
  type WorkflowStepName,
} from '../lambda/core/contract.ts';
import { runKeyPatterns } from '../lambda/workflow/run-store.ts';
import { bundledFunction } from './function-bundling.ts';
import type { GcDocument } from './gc-document.ts';
import {
  grantHistoryListing,
  grantNetworkInterfaces,
  grantRegistryParameters,
  instanceArn,
  UPLOAD_ACTIONS,
} from './grants.ts';

const WORKFLOW_ENTRY = fileURLToPath(new URL('../lambda/workflow-handler.ts', import.meta.url));

/** SSM command statuses that are not final yet: the GC loop waits again. */
const GC_PENDING = ['Pending', 'InProgress', 'Delayed', 'Cancelling'] as const;
/** Beyond the GC timeout, what the execution may take (probe, inventory, plan, apply and verify batches). */
const EXECUTION_TIME_BESIDES_GC = Duration.hours(12);
/** Each step function's timeout: Lambda's most. */
const STEP_FUNCTION_TIMEOUT = Duration.minutes(15);
/**
 * A Lambda task's own timeout, a little above its function's: the function's timeout ends a hung invocation, this
 * one only a lost answer (a task without one would wait as long as the execution may run).
 */
const STEP_TASK_TIMEOUT = STEP_FUNCTION_TIMEOUT.plus(Duration.minutes(1));

type RunFile = keyof ReturnType<typeof runKeyPatterns>;

/** What each step reads and writes, so its role gets only that. */
interface StepAccess {
  /** Talks to the registry: the credentials, and the VPC when there is one. */
  readonly registry: boolean;
  readonly reads: readonly RunFile[];
  readonly writes: readonly RunFile[];
  /** Reads a run file that may be missing (a failed batch's): ListBucket makes that a 404, not a 403. */
  readonly mayMiss?: boolean;
  /** The manifest cache (get, put, sign). */
  readonly cache?: boolean;
  /** Writes the run's report. */
  readonly reports?: boolean;
  /** The journal object (journal/<registry host>.json): the probe reads it, plan and collect replace it. */
  readonly journal?: 'read' | 'write';
  /** Lists untagged history (HISTORY_STORAGE): the probe for the run, each apply batch for its live re-check. */
  readonly history?: boolean;
}

/** Each step of lambda/workflow/workflow-job.ts with what it touches (the key names of run-store.ts). */
export const STEP_ACCESS: Readonly<Record<WorkflowStepName, StepAccess>> = {
  probe: {
    registry: true,
    reads: [],
    writes: ['run', 'history', 'journal'],
    journal: 'read',
    history: true,
  },
  inventory: { registry: true, reads: ['run', 'history', 'journal'], writes: ['inventory'], cache: true },
  plan: {
    // Two-phase: it reads the exact bytes of what the apply batches untag, for the journal's undo records.
    registry: true,
    reads: ['run', 'inventory', 'journal'],
    writes: ['plan', 'planPart', 'journal'],
    mayMiss: true,
    reports: true,
    journal: 'write',
  },
  apply: { registry: true, reads: ['planPart', 'journal'], writes: ['apply'], history: true },
  collect: {
    registry: false,
    reads: ['run', 'apply', 'journal', 'plan'],
    writes: ['deletions'],
    mayMiss: true,
    journal: 'write',
  },
  verify: { registry: true, reads: ['planPart'], writes: ['verify'] },
  report: {
    registry: false,
    // The plan from its batches' parts (plan.json only when there are no batches).
    reads: ['run', 'deletions', 'verify', 'plan', 'planPart'],
    writes: [],
    mayMiss: true,
    reports: true,
  },
};

export interface JanitorWorkflowProps {
  readonly registryUrl: string;
  /** The registry host garbage-collect runs on (the workflow needs the instance id to follow the command). */
  readonly instanceId: string;
  /** The functions' environment: the main function's (the same config parser reads it). */
  readonly environment: Readonly<Record<string, string>>;
  /** The functions' logs: the main function's log group, so one query reads both engines' runs. */
  readonly logGroup: ILogGroup;
  readonly logRetention: RetentionDays;
  readonly bucket: Bucket;
  readonly cacheKey: IKey;
  readonly failureQueue: IQueue;
  readonly gcDocument: GcDocument;
  /** Where untagged history is listed from (the main function's setting). */
  readonly storage: StorageSetting;
  readonly memorySize: number;
  /** The memory of the steps that hold the whole run (WHOLE_RUN_STEPS); the others get memorySize. */
  readonly wholeRunMemorySize: number;
  /** Iterations of each Map state at once. */
  readonly maxConcurrency: number;
  /** The GC timeout (the document's executionTimeout): the wait loop is bounded by it. */
  readonly gcTimeoutSeconds: number;
  /** Between two GetCommandInvocation calls. */
  readonly gcPollInterval: Duration;
  readonly credentialsParameter?: string | undefined;
  readonly caParameter?: string | undefined;
  readonly parameterKey?: IKey | undefined;
  readonly vpc?: IVpc | undefined;
  readonly vpcSubnets?: SubnetSelection | undefined;
  readonly securityGroups?: readonly ISecurityGroup[] | undefined;
}

/** The state machine, its step functions and their roles. */
export class JanitorWorkflow extends Construct {
  public readonly stateMachine: StateMachine;
  public readonly functions: Readonly<Record<WorkflowStepName, NodejsFunction>>;
  public readonly roles: Readonly<Record<WorkflowStepName, Role>>;
  /** The Wait loop's bound: polls of GetCommandInvocation before the workflow stops waiting for GC. */
  public readonly maxGcPolls: number;

  public constructor(scope: Construct, id: string, props: JanitorWorkflowProps) {
    super(scope, id);
    const functions = {} as Record<WorkflowStepName, NodejsFunction>;
    const roles = {} as Record<WorkflowStepName, Role>;
    for (const step of WORKFLOW_STEPS) {
      const name = pascal(step);
      const access = STEP_ACCESS[step];
      const role = new Role(this, `${name}Role`, {
        assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
        description: `registry-janitor workflow, ${step} step, for ${props.registryUrl}`,
      });
      props.logGroup.grantWrite(role);
      const inVpc = access.registry && props.vpc !== undefined;
      const fn = new NodejsFunction(this, `${name}Function`, {
        ...bundledFunction(WORKFLOW_ENTRY),
        description: `registry-janitor workflow: the ${step} step for ${props.registryUrl}`,
        memorySize: (WHOLE_RUN_STEPS as readonly WorkflowStepName[]).includes(step)
          ? props.wholeRunMemorySize
          : props.memorySize,
        timeout: STEP_FUNCTION_TIMEOUT,
        role,
        logGroup: props.logGroup,
        environment: { ...props.environment },
        // Step Functions retries a failed step; Lambda's own retries are for asynchronous invokes only.
        retryAttempts: 0,
        ...(inVpc
          ? {
              vpc: props.vpc,
              vpcSubnets: props.vpcSubnets,
              ...(props.securityGroups ? { securityGroups: [...props.securityGroups] } : {}),
            }
          : {}),
      });
      if (inVpc) grantNetworkInterfaces(role, props.vpc, props.vpcSubnets, fn.connections.securityGroups);
      if (access.registry) grantRegistryParameters(role, props);
      if (access.history) {
        grantHistoryListing(role, props.storage, props.bucket, {
          documentArn: props.gcDocument.documentArn,
          instanceId: props.instanceId,
        });
      }
      grantRunFiles(role, props.bucket, access);
      if (access.cache) {
        role.addToPrincipalPolicy(
          new PolicyStatement({
            sid: 'UseManifestCache',
            actions: ['s3:GetObject', 's3:PutObject'],
            resources: [props.bucket.arnForObjects(`${MANIFEST_CACHE_PREFIX}*`)],
          }),
        );
        role.addToPrincipalPolicy(
          new PolicyStatement({
            sid: 'SignManifestCache',
            actions: ['kms:GenerateMac', 'kms:VerifyMac'],
            resources: [props.cacheKey.keyArn],
          }),
        );
      }
      if (access.journal) {
        // Read once by the probe for the run; replaced whole by the plan (before any apply batch) and collect.
        role.addToPrincipalPolicy(
          new PolicyStatement({
            sid: access.journal === 'read' ? 'ReadJournal' : 'WriteJournal',
            actions: [access.journal === 'read' ? 's3:GetObject' : 's3:PutObject'],
            resources: [props.bucket.arnForObjects(`${JOURNAL_PREFIX}*`)],
          }),
        );
      }
      if (access.reports) {
        role.addToPrincipalPolicy(
          new PolicyStatement({
            sid: 'WriteRunReports',
            actions: UPLOAD_ACTIONS,
            resources: [props.bucket.arnForObjects(`${DEFAULT_REPORTS_PREFIX}*`)],
          }),
        );
      }
      if (access.mayMiss || access.cache) {
        role.addToPrincipalPolicy(
          new PolicyStatement({
            sid: 'TellMissingFromForbidden',
            actions: ['s3:ListBucket'],
            resources: [props.bucket.bucketArn],
          }),
        );
      }
      functions[step] = fn;
      roles[step] = role;
    }
    this.functions = functions;
    this.roles = roles;

    const pollSeconds = props.gcPollInterval.toSeconds();
    this.maxGcPolls = gcPollsFor(props.gcTimeoutSeconds, pollSeconds);
    // A fixed name, so the execution role's ListExecutions can name this state machine (its ARN from the
    // resource itself would be a dependency cycle).
    const stateMachineName = Names.uniqueResourceName(this, { maxLength: 80, separator: '-' });
    const stateMachineArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });

    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineName,
      stateMachineType: StateMachineType.STANDARD,
      comment: `registry-janitor for ${props.registryUrl}: probe, inventory, plan, apply, garbage-collect, verify, report`,
      definitionBody: DefinitionBody.fromChainable(this.definition(props, stateMachineArn, pollSeconds)),
      timeout: Duration.seconds(props.gcTimeoutSeconds).plus(EXECUTION_TIME_BESIDES_GC),
      tracingEnabled: true,
      logs: {
        destination: new LogGroup(this, 'ExecutionLogs', {
          logGroupName: `/aws/vendedlogs/states/${stateMachineName}`,
          retention: props.logRetention,
        }),
        level: LogLevel.ALL,
        includeExecutionData: true,
      },
    });
  }

  private definition(props: JanitorWorkflowProps, stateMachineArn: string, pollSeconds: number): IChainable {
    const runId = JsonPath.stringAt('$$.Execution.Name');
    const failed = new Fail(this, 'ExecutionFailed', {
      comment: 'A state failed: the error is its error, the cause names the state and says why.',
      errorPath: '$.failure.error',
      causePath: '$.failure.cause',
    });
    const onFailure = (state: string): Pass => {
      const pass = new Pass(this, `${state}Failed`, {
        parameters: {
          state,
          error: JsonPath.stringAt('$.error.Error'),
          cause: JsonPath.format(`the ${state} state failed: {}`, JsonPath.stringAt('$.error.Cause')),
        },
        resultPath: '$.failure',
      });
      pass.next(failed);
      return pass;
    };
    const catching = <T extends { addCatch(handler: IChainable, props?: CatchProps): unknown }>(
      state: T,
      name: string,
    ): T => {
      state.addCatch(onFailure(name), { resultPath: '$.error' });
      return state;
    };
    const invoke = (
      name: string,
      step: WorkflowStepName,
      fields: Record<string, unknown>,
      resultPath: string,
    ): LambdaInvoke => {
      const task = new LambdaInvoke(this, name, {
        lambdaFunction: this.functions[step],
        payload: TaskInput.fromObject({ step, runId, ...fields }),
        // The standard lambda:invoke integration: the step's answer is the response's Payload, kept alone (the
        // status code and SDK metadata would only grow the state).
        resultSelector: { Payload: JsonPath.objectAt('$.Payload') },
        taskTimeout: Timeout.duration(STEP_TASK_TIMEOUT),
        // Lambda's own transient errors (service, SDK client, throttled): 6 attempts, backing off from 2 s.
        retryOnServiceExceptions: true,
        resultPath,
      });
      task.addRetry({
        errors: ['Lambda.TooManyRequestsException'],
        interval: Duration.seconds(5),
        maxAttempts: 6,
        backoffRate: 2,
      });
      // A registry that answered badly once (5xx, reset): the step reads everything again, so it may run again.
      // The apply step re-reads each repository live before it deletes, so a retried batch deletes nothing the
      // re-check would not allow.
      if (STEP_ACCESS[step].registry) {
        task.addRetry({
          errors: ['RegistryError'],
          interval: Duration.seconds(10),
          maxAttempts: 2,
          backoffRate: 3,
        });
      }
      return task;
    };
    const batches = (name: string, iteration: IChainable): MapState =>
      new MapState(this, name, {
        itemsPath: '$.probe.Payload.batches',
        itemSelector: { batch: JsonPath.numberAt('$$.Map.Item.Value') },
        maxConcurrency: props.maxConcurrency,
        // Each iteration leaves its part in the bucket; the Map's results would only grow the state.
        resultPath: JsonPath.DISCARD,
      }).itemProcessor(iteration);
    const batchFailed = (name: string): Pass =>
      new Pass(this, name, {
        comment:
          'The batch failed after its retries: it wrote no part, which the next step reads as missing.',
        parameters: {
          batch: JsonPath.numberAt('$.batch'),
          error: JsonPath.stringAt('$.error.Error'),
          cause: JsonPath.stringAt('$.error.Cause'),
        },
      });

    // 1. Never two at once: a start while another execution runs is recorded in the failed-runs queue and refused.
    const refuseOverlap = new Fail(this, 'RefuseOverlap', {
      error: OVERLAP_ERROR,
      cause:
        'another execution of this state machine is running: this start was refused (and recorded in the ' +
        'failed-runs queue); start again when it has finished',
    });
    const recordOverlap = new SqsSendMessage(this, 'RecordOverlap', {
      queue: props.failureQueue,
      messageBody: TaskInput.fromObject({
        error: OVERLAP_ERROR,
        reason: 'another execution was running: this start was refused',
        execution: JsonPath.stringAt('$$.Execution.Id'),
        startTime: JsonPath.stringAt('$$.Execution.StartTime'),
        running: JsonPath.listAt('$.overlap.executions'),
      }),
      resultPath: JsonPath.DISCARD,
    });
    recordOverlap.addCatch(refuseOverlap, { resultPath: '$.error' });
    recordOverlap.next(refuseOverlap);
    const checkOverlap = catching(
      new CallAwsService(this, 'CheckOverlap', {
        comment: 'The running executions of this state machine, this one among them.',
        service: 'sfn',
        action: 'listExecutions',
        iamAction: 'states:ListExecutions',
        iamResources: [stateMachineArn],
        parameters: {
          StateMachineArn: JsonPath.stringAt('$$.StateMachine.Id'),
          StatusFilter: 'RUNNING',
          MaxResults: 10,
        },
        resultSelector: {
          running: JsonPath.arrayLength(JsonPath.listAt('$.Executions')),
          executions: JsonPath.listAt('$.Executions[*].ExecutionArn'),
        },
        resultPath: '$.overlap',
      }),
      'CheckOverlap',
    );

    // 2. Probe, then the inventory in batches (a failed batch leaves the plan incomplete), then the one plan.
    const probe = catching(
      invoke('Probe', 'probe', { input: JsonPath.objectAt('$$.Execution.Input') }, '$.probe'),
      'Probe',
    );
    const inventoryBatch = invoke(
      'InventoryBatch',
      'inventory',
      { batch: JsonPath.numberAt('$.batch') },
      '$.result',
    );
    inventoryBatch.addCatch(batchFailed('InventoryBatchFailed'), { resultPath: '$.error' });
    const inventory = catching(batches('Inventory', inventoryBatch), 'Inventory');
    const plan = catching(invoke('Plan', 'plan', {}, '$.plan'), 'Plan');

    // 3. Apply in batches (each repository re-read live first), collect, garbage-collect, verify, report.
    // A batch that fails after its retries does not stop the others: collect reports its repositories as skipped
    // (the journal keeps what they were about to delete), garbage-collect reclaims what the rest deleted, and the
    // report fails the execution naming the batch.
    const applyBatch = invoke('ApplyBatch', 'apply', { batch: JsonPath.numberAt('$.batch') }, '$.result');
    applyBatch.addCatch(batchFailed('ApplyBatchFailed'), { resultPath: '$.error' });
    const apply = catching(batches('Apply', applyBatch), 'Apply');
    const collect = catching(invoke('Collect', 'collect', {}, '$.collect'), 'Collect');
    const verifyBatch = invoke('VerifyBatch', 'verify', { batch: JsonPath.numberAt('$.batch') }, '$.result');
    verifyBatch.addCatch(batchFailed('VerifyBatchFailed'), { resultPath: '$.error' });
    const verify = catching(batches('Verify', verifyBatch), 'Verify');
    const report = catching(
      invoke('Report', 'report', { gc: JsonPath.objectAt('$.gc') }, '$.report'),
      'Report',
    );
    verify.next(report).next(new Succeed(this, 'Done', { outputPath: '$.report.Payload' }));

    const gc = this.gcLoop(props, pollSeconds, verify);
    apply.next(collect).next(
      new Choice(this, 'GcNeeded')
        .when(Condition.booleanEquals('$.collect.Payload.gc.run', true), gc)
        .otherwise(
          new Pass(this, 'GcSkipped', {
            parameters: { skipped: JsonPath.stringAt('$.collect.Payload.gc.reason') },
            resultPath: '$.gc',
          }).next(verify),
        ),
    );

    const planOutcome = new Choice(this, 'PlanOutcome')
      .when(Condition.stringEquals('$.plan.Payload.outcome', PLAN_OUTCOMES.apply), apply)
      .when(
        Condition.stringEquals('$.plan.Payload.outcome', PLAN_OUTCOMES.dryRun),
        new Succeed(this, 'DryRunDone', {
          comment: 'A dry run stops at the plan: the output is the plan step answer, with its reason.',
          outputPath: '$.plan.Payload',
        }),
      )
      .when(
        Condition.stringEquals('$.plan.Payload.outcome', PLAN_OUTCOMES.incomplete),
        new Fail(this, 'PlanIncomplete', {
          error: PLAN_INCOMPLETE_ERROR,
          causePath: '$.plan.Payload.reason',
        }),
      )
      .when(
        Condition.stringEquals('$.plan.Payload.outcome', PLAN_OUTCOMES.refused),
        new Fail(this, 'DeleteGuardTripped', {
          error: DELETE_GUARD_ERROR,
          causePath: '$.plan.Payload.reason',
        }),
      )
      .otherwise(
        new Fail(this, 'UnknownPlanOutcome', {
          error: 'RegistryJanitor.UnknownPlanOutcome',
          cause: 'the plan step answered an outcome this state machine does not know: nothing was deleted',
        }),
      );

    return checkOverlap.next(
      new Choice(this, 'OverlapCheck')
        .when(Condition.numberGreaterThan('$.overlap.running', 1), recordOverlap)
        .otherwise(probe.next(inventory).next(plan).next(planOutcome)),
    );
  }

  /**
   * SendCommand with the construct's own document on the one host, then Wait and GetCommandInvocation until the
   * command ends or the loop has polled for the GC timeout (and a margin). No Lambda waits. A failed SSM call or a
   * wait that ran out becomes a failed GC in `$.gc`, which the report records (GcFailures) after the verify.
   */
  private gcLoop(
    props: JanitorWorkflowProps,
    pollSeconds: number,
    verify: INextable & IChainable,
  ): IChainable {
    const stack = Stack.of(this);
    const gcFailed = new Pass(this, 'GcFailed', {
      parameters: {
        Status: 'Failed',
        StandardErrorContent: JsonPath.format(
          '{}: {}',
          JsonPath.stringAt('$.error.Error'),
          JsonPath.stringAt('$.error.Cause'),
        ),
      },
      resultPath: '$.gc',
    });
    gcFailed.next(verify);
    const send = new CallAwsService(this, 'SendGcCommand', {
      service: 'ssm',
      action: 'sendCommand',
      iamAction: 'ssm:SendCommand',
      // The one document on the one host.
      iamResources: [props.gcDocument.documentArn, instanceArn(stack, props.instanceId)],
      parameters: {
        DocumentName: props.gcDocument.documentName,
        InstanceIds: [props.instanceId],
        Parameters: JsonPath.objectAt('$.collect.Payload.gc.parameters'),
        Comment: JsonPath.format('registry-janitor {}', JsonPath.stringAt('$$.Execution.Name')),
      },
      resultSelector: { commandId: JsonPath.stringAt('$.Command.CommandId'), polls: 0 },
      resultPath: '$.gcCommand',
    });
    send.addCatch(gcFailed, { resultPath: '$.error' });
    const wait = new Wait(this, 'WaitForGc', { time: WaitTime.duration(Duration.seconds(pollSeconds)) });
    const get = new CallAwsService(this, 'GetGcInvocation', {
      service: 'ssm',
      action: 'getCommandInvocation',
      iamAction: 'ssm:GetCommandInvocation',
      // GetCommandInvocation has no resource-level permissions.
      iamResources: ['*'],
      parameters: { CommandId: JsonPath.stringAt('$.gcCommand.commandId'), InstanceId: props.instanceId },
      resultPath: '$.gc',
    });
    // Just after SendCommand the invocation may not exist yet.
    get.addRetry({
      errors: ['Ssm.InvocationDoesNotExistException'],
      interval: Duration.seconds(5),
      maxAttempts: 6,
      backoffRate: 2,
    });
    get.addRetry({
      errors: ['Ssm.SsmException', 'States.Timeout'],
      interval: Duration.seconds(5),
      maxAttempts: 3,
    });
    get.addCatch(gcFailed, { resultPath: '$.error' });
    const count = new Pass(this, 'CountGcPoll', {
      parameters: {
        commandId: JsonPath.stringAt('$.gcCommand.commandId'),
        polls: JsonPath.mathAdd(JsonPath.numberAt('$.gcCommand.polls'), 1),
      },
      resultPath: '$.gcCommand',
    });
    const pending = Condition.or(...GC_PENDING.map((s) => Condition.stringEquals('$.gc.Status', s)));
    const exceeded = new Pass(this, 'GcWaitExceeded', {
      parameters: {
        CommandId: JsonPath.stringAt('$.gcCommand.commandId'),
        Status: 'TimedOut',
        StatusDetails:
          `the workflow stopped waiting after ${this.maxGcPolls} polls of ${pollSeconds} s (the GC timeout, ` +
          `${props.gcTimeoutSeconds} s, and ${GC_WAIT_MARGIN_SECONDS} s more)`,
      },
      resultPath: '$.gc',
    });
    exceeded.next(verify);
    return send
      .next(wait)
      .next(get)
      .next(count)
      .next(
        new Choice(this, 'GcFinished')
          .when(
            Condition.and(pending, Condition.numberGreaterThanEquals('$.gcCommand.polls', this.maxGcPolls)),
            exceeded,
          )
          .when(pending, wait)
          .otherwise(verify),
      );
  }
}

/** Get and Put on exactly the run files the step reads and writes. */
function grantRunFiles(role: Role, bucket: Bucket, access: StepAccess): void {
  const patterns = runKeyPatterns();
  if (access.reads.length > 0) {
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ReadRunFiles',
        actions: ['s3:GetObject'],
        resources: access.reads.map((k) => bucket.arnForObjects(patterns[k])),
      }),
    );
  }
  if (access.writes.length > 0) {
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'WriteRunFiles',
        actions: UPLOAD_ACTIONS,
        resources: access.writes.map((k) => bucket.arnForObjects(patterns[k])),
      }),
    );
  }
}

const pascal = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
