// The synthesized Step Functions workflow, run on this machine with aws-local-stepfunctions: the state machine's
// definition and its step functions' bundles and environments are taken from the cloud assembly of a real synth
// (no hand-written copy); each lambda:invoke task runs the bundled handler in its own Node process, as the Lambda
// runtime would; the service integrations go to local stand-ins (ListExecutions to this harness's own record of
// running executions, SQS SendMessage to a list, SSM SendCommand and GetCommandInvocation to the SSM stand-in).
import './promise-with-resolvers.ts';
import {
  GetCommandInvocationCommand,
  SendCommandCommand,
  SSMClient,
  type GetCommandInvocationCommandInput,
  type SendCommandCommandInput,
} from '@aws-sdk/client-ssm';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App, Stack } from 'aws-cdk-lib';
import { ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';

type Json = unknown;
interface Resource {
  readonly Type: string;
  readonly Properties: Record<string, Json>;
}

/** One step function of the workflow as synthesized: its bundle's entry and its environment, resolved. */
export interface StepFunction {
  readonly logicalId: string;
  readonly arn: string;
  readonly entry: string;
  readonly timeoutSeconds: number;
  readonly memorySize: number;
  readonly environment: Readonly<Record<string, string>>;
}

export interface SynthesizedWorkflow {
  readonly definition: StateMachineDefinition;
  readonly stateMachineArn: string;
  readonly functions: Readonly<Record<string, StepFunction>>;
  /** The Command documents the template holds, by the name given to them here (as CloudFormation would). */
  readonly documents: Readonly<Record<string, { readonly Content: Json }>>;
}

/**
 * Synthesizes `app` and reads `stack`'s state machine and step functions from the cloud assembly. Refs become
 * what CloudFormation would make of them here: the bucket `bucket`, a document `<stack>-<logical id>`, a queue
 * URL, a function ARN; the cache's KMS key has no stand-in, so CACHE_HMAC_KEY_ID is left out (no manifest cache).
 */
export function synthesizeWorkflow(app: App, stack: Stack, bucket: string): SynthesizedWorkflow {
  const assembly = app.synth();
  const artifact = assembly.getStackByName(stack.stackName);
  const template = artifact.template as { Resources: Record<string, Resource> };
  const resources = template.Resources;
  const assets = JSON.parse(
    readFileSync(join(assembly.directory, `${stack.stackName}.assets.json`), 'utf8'),
  ) as {
    files: Record<string, { source: { path: string } }>;
  };
  const documents: Record<string, { Content: Json }> = {};
  const resolve = (value: Json): Json => {
    if (Array.isArray(value)) return value.map(resolve);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, Json>);
    if (entries.length === 1) {
      const [key, arg] = entries[0]!;
      if (key === 'Ref' && typeof arg === 'string') return ref(arg);
      if (key === 'Fn::GetAtt' && Array.isArray(arg)) return getAtt(String(arg[0]), String(arg[1]));
      if (key === 'Fn::Join' && Array.isArray(arg)) {
        const [separator, parts] = arg as [string, Json[]];
        return parts.map((p) => String(resolve(p))).join(separator);
      }
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, resolve(v)]));
  };
  const ref = (id: string): string => {
    if (id === 'AWS::Partition') return 'aws';
    if (id === 'AWS::Region') return REGION;
    if (id === 'AWS::AccountId') return ACCOUNT;
    if (id === 'AWS::URLSuffix') return 'amazonaws.com';
    const r = resources[id];
    switch (r?.Type) {
      case 'AWS::S3::Bucket':
        return bucket;
      case 'AWS::SSM::Document': {
        const name = `${stack.stackName}-${id}`;
        documents[name] = { Content: r.Properties.Content };
        return name;
      }
      case 'AWS::SQS::Queue':
        return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${id}`;
      default:
        throw new Error(`the local workflow cannot stand in for a Ref to ${id} (${r?.Type ?? 'unknown'})`);
    }
  };
  const getAtt = (id: string, attribute: string): string => {
    const r = resources[id];
    if (r?.Type === 'AWS::Lambda::Function' && attribute === 'Arn')
      return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${id}`;
    throw new Error(`the local workflow cannot stand in for ${id}.${attribute} (${r?.Type ?? 'unknown'})`);
  };

  const machines = Object.values(resources).filter((r) => r.Type === 'AWS::StepFunctions::StateMachine');
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  const machine = machines[0]!.Properties;
  const definition = JSON.parse(String(resolve(machine.DefinitionString))) as StateMachineDefinition;
  const stateMachineArn = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${String(machine.StateMachineName)}`;

  const functions: Record<string, StepFunction> = {};
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::Lambda::Function') continue;
    if (!/^registry-janitor workflow: /.test(String(r.Properties.Description))) continue;
    const code = r.Properties.Code as { S3Key?: string };
    const hash = String(code.S3Key).replace(/\.zip$/, '');
    const asset = assets.files[hash];
    if (!asset) throw new Error(`asset ${hash} of ${id} is not in the assembly`);
    const dir = join(assembly.directory, asset.source.path);
    if (!readdirSync(dir).includes('index.mjs')) throw new Error(`no index.mjs in ${dir}`);
    const variables = (r.Properties.Environment as { Variables?: Record<string, Json> } | undefined)
      ?.Variables;
    const environment: Record<string, string> = {};
    for (const [k, v] of Object.entries(variables ?? {})) {
      if (k === 'CACHE_HMAC_KEY_ID') continue;
      environment[k] = String(resolve(v));
    }
    functions[id] = {
      logicalId: id,
      arn: getAtt(id, 'Arn'),
      entry: join(dir, 'index.mjs'),
      timeoutSeconds: Number(r.Properties.Timeout),
      memorySize: Number(r.Properties.MemorySize ?? 128),
      environment,
    };
  }
  return { definition, stateMachineArn, functions, documents };
}

/** Loads the bundled module and calls its handler as the Lambda runtime would; writes the outcome to a file. */
const INVOKER = `import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [entry, eventFile, out, budgetMs] = process.argv.slice(2);
const deadline = Date.now() + Number(budgetMs);
const context = {
  functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:${REGION}:${ACCOUNT}:function:' + process.env.AWS_LAMBDA_FUNCTION_NAME,
  memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  awsRequestId: 'local-' + process.pid,
  logGroupName: '/aws/lambda/' + process.env.AWS_LAMBDA_FUNCTION_NAME,
  logStreamName: 'local',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  done() {}, fail() {}, succeed() {},
};
let outcome;
try {
  const { handler } = await import(pathToFileURL(entry).href);
  outcome = { ok: true, result: await handler(JSON.parse(readFileSync(eventFile, 'utf8')), context) };
} catch (err) {
  outcome = {
    ok: false,
    errorType: err instanceof Error ? err.name : 'Error',
    errorMessage: err instanceof Error ? err.message : String(err),
  };
}
writeFileSync(out, JSON.stringify(outcome));
process.exit(0);
`;

/** An error as Step Functions reports a task's: its name is the Error (what Retry and Catch match), its message the Cause. */
export class TaskError extends Error {
  public constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

/** One invocation of a step function, for assertions. */
export interface Invocation {
  readonly execution: string;
  readonly step: string;
  readonly payload: Record<string, unknown>;
  readonly startedAt: number;
  endedAt?: number;
  outcome?: 'ok' | 'error' | 'crashed';
}

export interface ExecutionHooks {
  /**
   * Before a step function is invoked: may wait (hold the step), or answer 'crash' for the invocation to die as
   * a crashed runtime does (`Runtime.ExitError`, no answer).
   */
  readonly beforeInvoke?: (
    step: string,
    payload: Record<string, unknown>,
  ) => Promise<'crash' | undefined | void> | 'crash' | undefined | void;
}

export interface ExecutionResult {
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: Json;
  readonly error?: string;
  readonly cause?: string;
}

export interface LocalWorkflowOptions {
  readonly workflow: SynthesizedWorkflow;
  /** The SSM stand-in's endpoint. */
  readonly ssmEndpoint: string;
  /** Environment every invocation gets besides its function's own (the S3 stand-in's endpoint and key). */
  readonly env: Readonly<Record<string, string>>;
  /** The time each invocation is given (its context's remaining time at the start). @default the function's timeout */
  readonly budgetMs?: number;
  /** The Wait states' pause and the retriers' intervals here. @default 200 ms, 100 ms */
  readonly waitMs?: number;
  readonly retryMs?: number;
}

/** The synthesized state machine, runnable here; one instance per test file. */
export class LocalWorkflow {
  /** Every invocation of every execution, in order of start. */
  public readonly invocations: Invocation[] = [];
  /** The messages RecordOverlap sent to the failed-runs queue. */
  public readonly queued: { readonly queueUrl: string; readonly body: Json }[] = [];
  private readonly machine: StateMachine;
  private readonly running = new Map<string, string>();
  private readonly ssm: SSMClient;
  private readonly work = mkdtempSync(join(tmpdir(), 'rj-workflow-'));
  private invocationsStarted = 0;
  private readonly taskStates: Readonly<Record<string, { readonly Resource: string }>>;

  public constructor(private readonly options: LocalWorkflowOptions) {
    // Validated as the service would (ARNs and paths checked).
    this.machine = new StateMachine(options.workflow.definition);
    this.ssm = new SSMClient({
      endpoint: options.ssmEndpoint,
      region: REGION,
      credentials: { accessKeyId: 'AKIALOCALWORKFLOW', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    writeFileSync(join(this.work, 'invoke.mjs'), INVOKER);
    this.taskStates = taskStatesOf(options.workflow.definition);
  }

  /** The names of the running executions (what ListExecutions answers). */
  public get runningExecutions(): string[] {
    return [...this.running.keys()];
  }

  /** StartExecution and wait for its end. */
  public async execute(name: string, input: Json = {}, hooks: ExecutionHooks = {}): Promise<ExecutionResult> {
    const arn = this.options.workflow.stateMachineArn;
    const executionArn = `${arn.replace(':stateMachine:', ':execution:')}:${name}`;
    this.running.set(executionArn, name);
    const waitMs = this.options.waitMs ?? 200;
    const retryMs = this.options.retryMs ?? 100;
    const names = Object.keys(this.taskStates);
    try {
      const execution = this.machine.run(input as never, {
        overrides: {
          taskResourceLocalHandlers: Object.fromEntries(
            names.map((state) => [
              state,
              (taskInput: Json) => this.task(name, state, taskInput, hooks) as never,
            ]),
          ),
          waitTimeOverrides: Object.fromEntries(
            waitStatesOf(this.options.workflow.definition).map((w) => [w, waitMs]),
          ),
          retryIntervalOverrides: Object.fromEntries(names.map((state) => [state, retryMs])),
        },
        context: {
          Execution: {
            Id: executionArn,
            Name: name,
            Input: input as never,
            StartTime: new Date().toISOString(),
          },
          StateMachine: { Id: arn, Name: arn.split(':').at(-1) },
        },
      });
      return { status: 'SUCCEEDED', output: await execution.result };
    } catch (err) {
      if (err instanceof ExecutionError && err.cause instanceof Error) {
        return { status: 'FAILED', error: err.cause.name, cause: err.cause.message };
      }
      throw err;
    } finally {
      this.running.delete(executionArn);
    }
  }

  public dispose(): void {
    this.ssm.destroy();
    rmSync(this.work, { recursive: true, force: true });
  }

  private async task(execution: string, state: string, input: Json, hooks: ExecutionHooks): Promise<Json> {
    const resource = this.taskStates[state]!.Resource;
    const params = input as Record<string, unknown>;
    if (resource.endsWith(':states:::lambda:invoke')) return this.invoke(execution, params, hooks);
    if (resource.endsWith(':states:::aws-sdk:sfn:listExecutions')) {
      const arn = String(params.StateMachineArn);
      if (arn !== this.options.workflow.stateMachineArn || params.StatusFilter !== 'RUNNING')
        throw new TaskError('Sfn.InvalidArnException', `not this state machine's running executions: ${arn}`);
      return {
        Executions: [...this.running].map(([executionArn, name]) => ({
          ExecutionArn: executionArn,
          Name: name,
          StateMachineArn: arn,
          Status: 'RUNNING',
        })),
      };
    }
    if (resource.endsWith(':states:::sqs:sendMessage')) {
      this.queued.push({ queueUrl: String(params.QueueUrl), body: params.MessageBody });
      return { MessageId: `local-${this.queued.length}` };
    }
    if (resource.endsWith(':states:::aws-sdk:ssm:sendCommand'))
      return this.ssmCall(() =>
        this.ssm.send(new SendCommandCommand(params as unknown as SendCommandCommandInput)),
      );
    if (resource.endsWith(':states:::aws-sdk:ssm:getCommandInvocation'))
      return this.ssmCall(() =>
        this.ssm.send(new GetCommandInvocationCommand(params as unknown as GetCommandInvocationCommandInput)),
      );
    throw new Error(`the local workflow has no stand-in for ${resource} (state ${state})`);
  }

  /** An AWS SDK integration's answer as Step Functions gives it: the output as JSON, errors named `Ssm.<Exception>`. */
  private async ssmCall(call: () => Promise<{ $metadata?: unknown }>): Promise<Json> {
    try {
      const { $metadata: _, ...out } = await call();
      return JSON.parse(JSON.stringify(out)) as Json;
    } catch (err) {
      const name = err instanceof Error ? err.name : 'Unknown';
      throw new TaskError(`Ssm.${name.endsWith('Exception') ? name : `${name}Exception`}`, String(err));
    }
  }

  /** The lambda:invoke integration: the bundled handler in its own process; its answer as `{Payload}`. */
  private async invoke(
    execution: string,
    params: Record<string, unknown>,
    hooks: ExecutionHooks,
  ): Promise<Json> {
    const fn = Object.values(this.options.workflow.functions).find((f) => f.arn === params.FunctionName);
    if (!fn)
      throw new TaskError('Lambda.ResourceNotFoundException', `no function ${String(params.FunctionName)}`);
    const payload = params.Payload as Record<string, unknown>;
    const step = String(payload.step);
    const record: Invocation = { execution, step, payload, startedAt: Date.now() };
    this.invocations.push(record);
    const n = ++this.invocationsStarted;
    const crash = (await hooks.beforeInvoke?.(step, payload)) === 'crash';
    const eventFile = join(this.work, `event-${n}.json`);
    const outFile = join(this.work, `outcome-${n}.json`);
    writeFileSync(eventFile, JSON.stringify(payload));
    const name = fn.logicalId;
    const child = spawn(
      process.execPath,
      [
        join(this.work, 'invoke.mjs'),
        fn.entry,
        eventFile,
        outFile,
        String(this.options.budgetMs ?? fn.timeoutSeconds * 1000),
      ],
      {
        cwd: this.work,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH,
          ...fn.environment,
          ...this.options.env,
          AWS_REGION: REGION,
          AWS_LAMBDA_FUNCTION_NAME: name,
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
          AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
          TZ: 'UTC',
        },
      },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    if (crash) child.kill('SIGKILL');
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c) => resolve(c));
    });
    record.endedAt = Date.now();
    if (!existsSync(outFile)) {
      record.outcome = 'crashed';
      throw new TaskError(
        'Runtime.ExitError',
        JSON.stringify({
          errorType: 'Runtime.ExitError',
          errorMessage: `RequestId: local-${n} Error: Runtime exited without providing a reason (exit ${code ?? 'signal'})`,
        }),
      );
    }
    const outcome = JSON.parse(readFileSync(outFile, 'utf8')) as
      { ok: true; result: Json } | { ok: false; errorType: string; errorMessage: string };
    if (!outcome.ok) {
      record.outcome = 'error';
      throw new TaskError(
        outcome.errorType,
        JSON.stringify({
          errorType: outcome.errorType,
          errorMessage: outcome.errorMessage,
          log: output.slice(-2000),
        }),
      );
    }
    record.outcome = 'ok';
    return { ExecutedVersion: '$LATEST', Payload: outcome.result, StatusCode: 200 };
  }
}

type States = StateMachineDefinition['States'];

function eachState(states: States, visit: (name: string, state: States[string]) => void): void {
  for (const [name, state] of Object.entries(states)) {
    visit(name, state);
    const inner = (state as { ItemProcessor?: { States: States }; Iterator?: { States: States } })
      .ItemProcessor;
    if (inner) eachState(inner.States, visit);
  }
}

function taskStatesOf(definition: StateMachineDefinition): Record<string, { Resource: string }> {
  const tasks: Record<string, { Resource: string }> = {};
  eachState(definition.States, (name, state) => {
    if (state.Type === 'Task') tasks[name] = { Resource: (state as { Resource: string }).Resource };
  });
  return tasks;
}

function waitStatesOf(definition: StateMachineDefinition): string[] {
  const waits: string[] = [];
  eachState(definition.States, (name, state) => {
    if (state.Type === 'Wait') waits.push(name);
  });
  return waits;
}
