// A local stand-in for AWS Systems Manager speaking the AWS JSON 1.1 protocol on 127.0.0.1, so the real
// @aws-sdk/client-ssm can be pointed at it: Run Command runs the registered Command documents' own scripts with
// /bin/sh, as the agent would (parameters validated, SSM_<name> variables, {{ }} references pasted in), and
// Parameter Store serves seeded values.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The real service shows at most this many characters of stdout/stderr in GetCommandInvocation (the first ones). */
export const SSM_OUTPUT_LIMIT = 24_000;
/** ListCommandInvocations with Details shows at most this many characters of output per plugin. */
export const SSM_LIST_OUTPUT_LIMIT = 2_500;

export interface StandInInstance {
  readonly instanceId: string;
  /** EC2 tags, matched by Targets=[{Key:'tag:K',Values:[V]}]. */
  readonly tags?: Readonly<Record<string, string>>;
}

export interface SsmStandInOptions {
  /** Environment for the scripts (merged over PATH/HOME from this process), e.g. DOCKER_HOST. */
  env?: Record<string, string>;
  /** Working directory of the scripts (default: this process's). */
  cwd?: string;
  /**
   * Managed instances. InstanceIds must be one of them (InvalidInstanceId otherwise) and tag Targets resolve
   * against their tags. Unset: any well-formed instance id is accepted and tag Targets match nothing.
   */
  instances?: readonly StandInInstance[];
  /** How long an invocation answers InvocationDoesNotExist after SendCommand (default 1000 ms, like the service). */
  invisibleForMs?: number;
  /** Parameter Store contents: name → value (SecureString). */
  parameters?: Record<string, string>;
  /** Shell that runs the commands (default /bin/sh). */
  shell?: string;
  /**
   * Command documents by name (their content, schema 2.2, one aws:runShellScript step). SendCommand runs only
   * these: any other name is InvalidDocument, AWS-RunShellScript included.
   */
  documents?: Readonly<Record<string, unknown>>;
}

/** The part of a Command document the stand-in reads. */
interface DocumentParameter {
  readonly type?: string;
  readonly default?: string;
  readonly allowedPattern?: string;
  readonly allowedValues?: readonly string[];
  readonly interpolationType?: string;
}
interface CommandDocument {
  readonly schemaVersion?: string;
  readonly parameters?: Readonly<Record<string, DocumentParameter>>;
  readonly mainSteps?: readonly {
    readonly action?: string;
    readonly inputs?: { readonly runCommand?: readonly string[]; readonly timeoutSeconds?: string };
  }[];
}

/** One request as received, for assertions (document name, targets, timeout, log group…). */
export interface StandInRequest {
  /** Operation from X-Amz-Target, e.g. 'SendCommand'. */
  readonly operation: string;
  /** The parsed JSON body. */
  readonly input: Record<string, unknown>;
  /** Whether the request carried a SigV4 Authorization header (the SDK always signs). */
  readonly signed: boolean;
}

export interface InjectedError {
  /** AWS error code, e.g. 'AccessDeniedException', 'ThrottlingException'. */
  readonly type: string;
  readonly message: string;
  /** HTTP status (default 400). */
  readonly statusCode?: number;
}

export type InvocationStatus = 'Pending' | 'InProgress' | 'Success' | 'Failed' | 'TimedOut' | 'Cancelled';

export interface SsmStandIn {
  /** http://127.0.0.1:PORT, for `endpoint` or AWS_ENDPOINT_URL_SSM. */
  readonly endpoint: string;
  /** Every request received, in order. */
  readonly requests: readonly StandInRequest[];
  /** The requests of one operation, in order. */
  requestsFor(operation: string): StandInRequest[];
  /** Register (or replace) a Command document, as CreateDocument would. */
  addDocument(name: string, content: unknown): void;
  /** Seed or replace a parameter (default type SecureString). */
  setParameter(name: string, value: string, type?: 'String' | 'SecureString' | 'StringList'): void;
  /** The next request for `operation` fails with `error` (queue several by calling again). */
  failNext(operation: string, error: InjectedError): void;
  /** Current status of an invocation, visible or not (undefined when unknown). */
  invocationStatus(commandId: string, instanceId: string): InvocationStatus | undefined;
  /** Resolves when every invocation of the command has reached a terminal status. */
  waitForCommand(commandId: string): Promise<void>;
  /** Kill running scripts and stop the server. */
  close(): Promise<void>;
}

interface Parameter {
  value: string;
  type: 'String' | 'SecureString' | 'StringList';
  version: number;
  modified: Date;
}

interface Invocation {
  readonly commandId: string;
  readonly instanceId: string;
  readonly requestedAt: Date;
  readonly visibleAt: number;
  status: InvocationStatus;
  statusDetails: string;
  responseCode: number;
  stdout: string;
  stderr: string;
  startedAt?: Date;
  endedAt?: Date;
  child?: ChildProcess;
  timedOut: boolean;
  cancelled: boolean;
}

interface Command {
  readonly commandId: string;
  readonly documentName: string;
  readonly comment: string;
  readonly logGroup: string | undefined;
  readonly invocations: Invocation[];
  readonly done: Promise<void>;
}

class ServiceError extends Error {
  public constructor(
    public readonly type: string,
    message: string,
    public readonly statusCode = 400,
  ) {
    super(message);
  }
}

const INSTANCE_ID = /^(i|mi)-[0-9a-f]{8,17}$/;
const TERMINAL: ReadonlySet<InvocationStatus> = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);
const MAX_EXECUTION_TIMEOUT = 172_800;

export async function startSsmStandIn(options: SsmStandInOptions = {}): Promise<SsmStandIn> {
  const invisibleForMs = options.invisibleForMs ?? 1000;
  const shell = options.shell ?? '/bin/sh';
  const requests: StandInRequest[] = [];
  const parameters = new Map<string, Parameter>();
  const injected = new Map<string, InjectedError[]>();
  const commands = new Map<string, Command>();
  const running = new Set<ChildProcess>();
  const documents = new Map(
    Object.entries(options.documents ?? {}).map(([name, content]) => [name, content as CommandDocument]),
  );
  for (const [name, value] of Object.entries(options.parameters ?? {})) {
    parameters.set(name, { value, type: 'SecureString', version: 1, modified: new Date() });
  }

  function findInvocation(commandId: string, instanceId: string): Invocation | undefined {
    return commands.get(commandId)?.invocations.find((i) => i.instanceId === instanceId);
  }

  function resolveTargets(input: Record<string, unknown>): string[] {
    const instanceIds = input.InstanceIds;
    const targets = input.Targets;
    if (Array.isArray(instanceIds) && instanceIds.length > 0) {
      if (Array.isArray(targets) && targets.length > 0) {
        throw new ServiceError('InvalidParameters', 'Specify either InstanceIds or Targets, not both.');
      }
      for (const id of instanceIds) {
        const known = options.instances
          ? options.instances.some((i) => i.instanceId === id)
          : typeof id === 'string' && INSTANCE_ID.test(id);
        if (!known)
          throw new ServiceError('InvalidInstanceId', `Instances [[${String(id)}]] not in a valid state.`);
      }
      return instanceIds as string[];
    }
    if (Array.isArray(targets) && targets.length > 0) {
      let matches = [...(options.instances ?? [])];
      for (const target of targets as { Key?: unknown; Values?: unknown }[]) {
        const key = typeof target.Key === 'string' ? target.Key : '';
        const values = Array.isArray(target.Values) ? (target.Values as string[]) : [];
        if (key === 'InstanceIds') {
          matches = matches.filter((i) => values.includes(i.instanceId));
        } else if (key.startsWith('tag:')) {
          const tag = key.slice('tag:'.length);
          matches = matches.filter((i) => i.tags?.[tag] !== undefined && values.includes(i.tags[tag]));
        } else {
          throw new ServiceError('InvalidTarget', `The stand-in does not support target key "${key}".`);
        }
      }
      return matches.map((i) => i.instanceId);
    }
    throw new ServiceError('InvalidParameters', 'Specify InstanceIds or Targets.');
  }

  function execute(
    inv: Invocation,
    script: string,
    env: Readonly<Record<string, string>>,
    timeoutSeconds: number,
  ): Promise<void> {
    if (inv.cancelled) return Promise.resolve();
    inv.status = 'InProgress';
    inv.statusDetails = 'InProgress';
    inv.startedAt = new Date();
    return new Promise((resolve) => {
      // Own process group, so a timeout or cancel kills the whole script, not only the shell.
      const child = spawn(shell, ['-c', script], {
        cwd: options.cwd,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/',
          ...options.env,
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      inv.child = child;
      running.add(child);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      const timer = setTimeout(() => {
        inv.timedOut = true;
        killGroup(child);
      }, timeoutSeconds * 1000);
      const finish = (code: number | null, spawnError?: Error): void => {
        clearTimeout(timer);
        running.delete(child);
        inv.endedAt = new Date();
        inv.stdout = Buffer.concat(out).toString('utf8');
        inv.stderr = Buffer.concat(err).toString('utf8') + (spawnError ? `${spawnError.message}\n` : '');
        if (inv.cancelled) {
          inv.status = 'Cancelled';
          inv.statusDetails = 'Cancelled';
          inv.responseCode = -1;
        } else if (inv.timedOut) {
          inv.status = 'TimedOut';
          inv.statusDetails = 'ExecutionTimedOut';
          inv.responseCode = -1;
        } else if (code === 0) {
          inv.status = 'Success';
          inv.statusDetails = 'Success';
          inv.responseCode = 0;
        } else {
          inv.status = 'Failed';
          inv.statusDetails = 'Failed';
          inv.responseCode = code ?? -1;
        }
        resolve();
      };
      child.on('error', (e) => finish(null, e));
      child.on('close', (code) => finish(code));
    });
  }

  /**
   * What the agent would run for this SendCommand: the document's parameters checked and defaulted like the
   * service does, `{{ name }}` references pasted into the step's inputs, ENV_VAR parameters as SSM_<name>.
   */
  function prepare(input: Record<string, unknown>): {
    script: string;
    env: Record<string, string>;
    timeoutSeconds: number;
  } {
    const name = str(input.DocumentName);
    const document = documents.get(name);
    if (!document)
      throw new ServiceError('InvalidDocument', `Document ${name} does not exist in your account.`);
    const declared = document.parameters ?? {};
    const sent = (input.Parameters ?? {}) as Record<string, unknown>;
    const values = new Map<string, string>();
    for (const [key, value] of Object.entries(sent)) {
      const spec = declared[key];
      if (!spec) throw new ServiceError('InvalidParameters', `Parameter "${key}" is not defined in ${name}.`);
      if (!Array.isArray(value) || value.length !== 1 || typeof value[0] !== 'string') {
        throw new ServiceError('InvalidParameters', `Parameter "${key}" must be one string.`);
      }
      values.set(key, value[0]);
    }
    for (const [key, spec] of Object.entries(declared)) {
      const value = values.get(key) ?? spec.default;
      if (value === undefined) throw new ServiceError('InvalidParameters', `Parameter "${key}" is required.`);
      if (spec.allowedValues && !spec.allowedValues.includes(value)) {
        throw new ServiceError(
          'InvalidParameters',
          `Parameter "${key}" must be one of ${spec.allowedValues.join(', ')}.`,
        );
      }
      if (spec.allowedPattern !== undefined && !new RegExp(spec.allowedPattern).test(value)) {
        throw new ServiceError(
          'InvalidParameters',
          `Parameter "${key}" does not match ${spec.allowedPattern}.`,
        );
      }
      values.set(key, value);
    }
    const steps = document.mainSteps ?? [];
    const step = steps[0];
    if (document.schemaVersion !== '2.2' || steps.length !== 1 || step?.action !== 'aws:runShellScript') {
      throw new ServiceError(
        'InvalidDocument',
        'The stand-in runs schema 2.2 documents of one aws:runShellScript step.',
      );
    }
    const paste = (text: string): string =>
      text.replace(/\{\{\s*([A-Za-z0-9_.:/-]+)\s*\}\}/g, (_m, ref: string) => {
        const value = values.get(ref);
        if (value === undefined)
          throw new ServiceError('InvalidDocument', `Reference {{ ${ref} }} is undefined.`);
        return value;
      });
    const script = (step.inputs?.runCommand ?? []).map(paste).join('\n');
    const timeoutText =
      step.inputs?.timeoutSeconds === undefined ? '3600' : paste(step.inputs.timeoutSeconds);
    const timeoutSeconds = Number(timeoutText);
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > MAX_EXECUTION_TIMEOUT) {
      throw new ServiceError(
        'InvalidParameters',
        `timeoutSeconds must be 1..${MAX_EXECUTION_TIMEOUT} seconds.`,
      );
    }
    const env: Record<string, string> = {};
    for (const [key, spec] of Object.entries(declared)) {
      if (spec.interpolationType === 'ENV_VAR') env[`SSM_${key}`] = values.get(key)!;
    }
    return { script, env, timeoutSeconds };
  }

  function sendCommand(input: Record<string, unknown>): unknown {
    const documentName = str(input.DocumentName);
    const params = (input.Parameters ?? {}) as Record<string, unknown>;
    const { script, env, timeoutSeconds: executionTimeout } = prepare(input);
    const instanceIds = resolveTargets(input);
    const commandId = randomUUID();
    const now = new Date();
    const invocations = instanceIds.map((instanceId): Invocation => ({
      commandId,
      instanceId,
      requestedAt: now,
      visibleAt: Date.now() + invisibleForMs,
      status: 'Pending',
      statusDetails: 'Pending',
      responseCode: -1,
      stdout: '',
      stderr: '',
      timedOut: false,
      cancelled: false,
    }));
    // MaxConcurrency as a number limits how many instances run at once; a percentage is treated as "all".
    const maxConcurrency = /^\d+$/.test(str(input.MaxConcurrency)) ? Number(input.MaxConcurrency) : 50;
    const queue = [...invocations];
    const worker = async (): Promise<void> => {
      for (let inv = queue.shift(); inv; inv = queue.shift())
        await execute(inv, script, env, executionTimeout);
    };
    const done = Promise.all(
      Array.from({ length: Math.max(1, Math.min(maxConcurrency, queue.length)) }, () => worker()),
    ).then(() => undefined);
    const cw = input.CloudWatchOutputConfig as { CloudWatchLogGroupName?: string } | undefined;
    commands.set(commandId, {
      commandId,
      documentName,
      comment: typeof input.Comment === 'string' ? input.Comment : '',
      logGroup: cw?.CloudWatchLogGroupName,
      invocations,
      done,
    });
    return {
      Command: {
        CommandId: commandId,
        DocumentName: documentName,
        DocumentVersion: '$DEFAULT',
        Comment: input.Comment ?? '',
        ExpiresAfter: now.getTime() / 1000 + Number(input.TimeoutSeconds ?? 3600) + executionTimeout,
        Parameters: params,
        InstanceIds: input.InstanceIds ?? [],
        Targets: input.Targets ?? [],
        RequestedDateTime: now.getTime() / 1000,
        Status: 'Pending',
        StatusDetails: 'Pending',
        MaxConcurrency: input.MaxConcurrency ?? '50',
        MaxErrors: input.MaxErrors ?? '0',
        // Like the service: known up front for instance ids, resolved later for tag targets.
        TargetCount: Array.isArray(input.InstanceIds) ? instanceIds.length : 0,
        CompletedCount: 0,
        ErrorCount: 0,
        DeliveryTimedOutCount: 0,
        TimeoutSeconds: input.TimeoutSeconds ?? 3600,
        CloudWatchOutputConfig: {
          CloudWatchLogGroupName: cw?.CloudWatchLogGroupName ?? '',
          CloudWatchOutputEnabled: Boolean(
            (input.CloudWatchOutputConfig as Record<string, unknown>)?.CloudWatchOutputEnabled,
          ),
        },
      },
    };
  }

  function visible(inv: Invocation): boolean {
    return Date.now() >= inv.visibleAt;
  }

  function cloudWatchConfig(commandId: string): unknown {
    const logGroup = commands.get(commandId)?.logGroup;
    return { CloudWatchLogGroupName: logGroup ?? '', CloudWatchOutputEnabled: logGroup !== undefined };
  }

  function getCommandInvocation(input: Record<string, unknown>): unknown {
    const commandId = str(input.CommandId);
    const instanceId = str(input.InstanceId);
    const inv = findInvocation(commandId, instanceId);
    if (!inv || !visible(inv)) throw new ServiceError('InvocationDoesNotExist', '');
    const terminal = TERMINAL.has(inv.status);
    const elapsed = inv.startedAt
      ? ((inv.endedAt ?? new Date()).getTime() - inv.startedAt.getTime()) / 1000
      : 0;
    return {
      CommandId: commandId,
      InstanceId: instanceId,
      Comment: commands.get(commandId)?.comment ?? '',
      DocumentName: commands.get(commandId)?.documentName,
      DocumentVersion: '$DEFAULT',
      PluginName: 'aws:runShellScript',
      ResponseCode: inv.responseCode,
      ExecutionStartDateTime: inv.startedAt?.toISOString() ?? '',
      ExecutionElapsedTime: `PT${elapsed.toFixed(3)}S`,
      ExecutionEndDateTime: inv.endedAt?.toISOString() ?? '',
      Status: inv.status,
      StatusDetails: inv.statusDetails,
      // The service only shows output once the plugin has finished, and then only its first 24,000 characters.
      StandardOutputContent: terminal ? inv.stdout.slice(0, SSM_OUTPUT_LIMIT) : '',
      StandardOutputUrl: '',
      StandardErrorContent: terminal ? inv.stderr.slice(0, SSM_OUTPUT_LIMIT) : '',
      StandardErrorUrl: '',
      CloudWatchOutputConfig: cloudWatchConfig(commandId),
    };
  }

  function listCommandInvocations(input: Record<string, unknown>): unknown {
    const commandId = typeof input.CommandId === 'string' ? input.CommandId : undefined;
    const instanceId = typeof input.InstanceId === 'string' ? input.InstanceId : undefined;
    const all = commandId
      ? (commands.get(commandId)?.invocations ?? [])
      : [...commands.values()].flatMap((c) => c.invocations);
    const found = all.filter((i) => visible(i) && (instanceId === undefined || i.instanceId === instanceId));
    return {
      CommandInvocations: found.map((inv) => ({
        CommandId: inv.commandId,
        InstanceId: inv.instanceId,
        InstanceName: '',
        Comment: commands.get(inv.commandId)?.comment ?? '',
        DocumentName: commands.get(inv.commandId)?.documentName,
        DocumentVersion: '$DEFAULT',
        RequestedDateTime: inv.requestedAt.getTime() / 1000,
        Status: inv.status,
        StatusDetails: inv.statusDetails,
        StandardOutputUrl: '',
        StandardErrorUrl: '',
        CommandPlugins:
          input.Details === true
            ? [
                {
                  Name: 'aws:runShellScript',
                  Status: inv.status,
                  StatusDetails: inv.statusDetails,
                  ResponseCode: inv.responseCode,
                  Output: TERMINAL.has(inv.status)
                    ? (inv.stdout + inv.stderr).slice(0, SSM_LIST_OUTPUT_LIMIT)
                    : '',
                },
              ]
            : [],
        CloudWatchOutputConfig: cloudWatchConfig(inv.commandId),
      })),
    };
  }

  function cancelCommand(input: Record<string, unknown>): unknown {
    const command = commands.get(str(input.CommandId));
    if (!command) throw new ServiceError('InvalidCommandId', '');
    const only =
      Array.isArray(input.InstanceIds) && input.InstanceIds.length > 0
        ? (input.InstanceIds as string[])
        : undefined;
    for (const inv of command.invocations) {
      if (TERMINAL.has(inv.status) || (only && !only.includes(inv.instanceId))) continue;
      inv.cancelled = true;
      if (inv.status === 'Pending') {
        inv.status = 'Cancelled';
        inv.statusDetails = 'Cancelled';
      } else if (inv.child) {
        killGroup(inv.child);
      }
    }
    return {};
  }

  function getParameter(input: Record<string, unknown>): unknown {
    const name = str(input.Name);
    const parameter = parameters.get(name);
    if (!parameter) throw new ServiceError('ParameterNotFound', '');
    // Without WithDecryption the service returns the ciphertext of a SecureString, which is useless as a password.
    const value =
      parameter.type === 'SecureString' && input.WithDecryption !== true
        ? `AQICAH${Buffer.from(randomUUID()).toString('base64')}`
        : parameter.value;
    return {
      Parameter: {
        Name: name,
        Type: parameter.type,
        Value: value,
        Version: parameter.version,
        LastModifiedDate: parameter.modified.getTime() / 1000,
        ARN: `arn:aws:ssm:us-east-1:123456789012:parameter${name.startsWith('/') ? '' : '/'}${name}`,
        DataType: 'text',
      },
    };
  }

  const operations: Record<string, (input: Record<string, unknown>) => unknown> = {
    SendCommand: sendCommand,
    GetCommandInvocation: getCommandInvocation,
    ListCommandInvocations: listCommandInvocations,
    CancelCommand: cancelCommand,
    GetParameter: getParameter,
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = req.headers['x-amz-target'];
    const operation =
      typeof target === 'string' && target.startsWith('AmazonSSM.') ? target.slice('AmazonSSM.'.length) : '';
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-requestid': randomUUID(),
      });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method !== 'POST') throw new ServiceError('UnknownOperationException', 'POST only.');
      let input: Record<string, unknown>;
      try {
        input = chunks.length
          ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>)
          : {};
      } catch {
        throw new ServiceError('SerializationException', 'Body is not JSON.');
      }
      requests.push({ operation, input, signed: typeof req.headers.authorization === 'string' });
      const handler = operations[operation];
      if (!handler)
        throw new ServiceError('UnknownOperationException', `Unsupported target ${String(target)}.`);
      const failure = injected.get(operation)?.shift();
      if (failure) throw new ServiceError(failure.type, failure.message, failure.statusCode);
      reply(200, handler(input));
    } catch (err) {
      if (err instanceof ServiceError) reply(err.statusCode, { __type: err.type, message: err.message });
      else reply(500, { __type: 'InternalServerError', message: String(err) });
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    requestsFor: (operation) => requests.filter((r) => r.operation === operation),
    addDocument(name, content) {
      documents.set(name, content as CommandDocument);
    },
    setParameter(name, value, type = 'SecureString') {
      const previous = parameters.get(name);
      parameters.set(name, { value, type, version: (previous?.version ?? 0) + 1, modified: new Date() });
    },
    failNext(operation, error) {
      injected.set(operation, [...(injected.get(operation) ?? []), error]);
    },
    invocationStatus: (commandId, instanceId) => findInvocation(commandId, instanceId)?.status,
    async waitForCommand(commandId) {
      await commands.get(commandId)?.done;
    },
    async close() {
      for (const child of running) killGroup(child);
      await Promise.all([...commands.values()].map((c) => c.done));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function killGroup(child: ChildProcess): void {
  // The group, not only the shell: a background child of the script may still hold the output pipes.
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** A Command document (schema 2.2) that runs `script` as is, with no parameters but the execution timeout. */
export function shellDocument(script: string): Record<string, unknown> {
  return {
    schemaVersion: '2.2',
    description: 'a test script',
    parameters: {
      executionTimeout: { type: 'String', default: '3600', allowedPattern: '^[0-9]{1,6}$' },
    },
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: 'run',
        inputs: { timeoutSeconds: '{{ executionTimeout }}', runCommand: script.split('\n') },
      },
    ],
  };
}
