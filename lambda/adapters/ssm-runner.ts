// Runs the GC script on the registry host through SSM Run Command, with the janitor's own Command document (the
// script is baked into it; only constrained parameters are sent), and waits for it, giving up waiting (not the
// command) when the Lambda is about to run out of time.
import { setTimeout as delay } from 'node:timers/promises';
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  SSMClient,
  type GetCommandInvocationCommandOutput,
  type SendCommandCommandInput,
} from '@aws-sdk/client-ssm';
import { ConfigError, GcError, errorMessage } from '../core/errors.ts';
import {
  DEFAULT_GC_TIMEOUT_SECONDS,
  INSTANCE_ID_FORM,
  MAX_GC_TIMEOUT_SECONDS,
  SSM_DOCUMENT_NAME,
  isInstanceId,
  parseInstanceTag,
  type SsmTarget,
} from '../core/contract.ts';
import type { CommandResult, CommandRunner } from '../core/ports.ts';

export { parseInstanceTag, type SsmTarget };

export interface SsmCommandRunnerOptions {
  readonly client: SSMClient;
  readonly target: SsmTarget;
  /** Name of the janitor's SSM Command document (the construct creates it; GC_DOCUMENT_NAME in the function). */
  readonly documentName: string;
  /**
   * The document's `executionTimeout`: the agent kills the script after this long (1..172800).
   * `run(parameters, { timeoutSeconds })` overrides it per call.
   * @default 3600
   */
  readonly executionTimeoutSeconds?: number;
  /**
   * SendCommand `TimeoutSeconds`: if the agent has not started the script by then, it never will. Kept short so
   * a host whose agent is offline does not run garbage-collect hours later, when nobody is watching.
   * @default 600
   */
  readonly deliveryTimeoutSeconds?: number;
  /** CloudWatch Logs group for the command output (the full output, beyond SSM's 24,000 characters). */
  readonly cloudWatchLogGroup?: string;
  /** Time left in this process, e.g. `context.getRemainingTimeInMillis`. Unset: wait until the command ends. */
  readonly remainingTimeMs?: () => number;
  /**
   * Stop waiting when this little time is left, and return 'InProgress' with the command id.
   * @default 30000
   */
  readonly reserveMs?: number;
  /** @default 2000 */
  readonly pollIntervalMs?: number;
  /**
   * How long an invocation may stay invisible (InvocationDoesNotExist, or no invocation listed for a tag
   * target) before we conclude it will never appear.
   * @default 60000
   */
  readonly invocationVisibleWithinMs?: number;
  /** SendCommand `Comment` (at most 100 characters). @default 'registry-janitor' */
  readonly comment?: string;
  /** Injected for tests. @default node:timers/promises setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** A CommandResult with what SSM adds: the instance it ran on and the status details (e.g. 'ExecutionTimedOut'). */
export interface SsmCommandResult extends CommandResult {
  readonly instanceId?: string;
  readonly statusDetails?: string;
}

const TERMINAL = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);

/** An SSM client configured from the environment only (region), so AWS_ENDPOINT_URL_SSM can redirect it. */
export function createSsmClient(): SSMClient {
  const region = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new ConfigError(
      'AWS_REGION is not set: set it (Lambda sets it for you) to the region of the registry host.',
    );
  }
  return new SSMClient({ region });
}

/**
 * Runs the janitor's document on the registry host with SSM Run Command.
 *
 * Waiting: polls GetCommandInvocation until Success, Failed, TimedOut or Cancelled, retrying
 * InvocationDoesNotExist (an invocation is invisible for a moment after SendCommand). When only `reserveMs` of
 * `remainingTimeMs()` is left, it stops waiting and returns status 'InProgress' with the command id; the script
 * keeps running on the host.
 *
 * Tag targets: a registry is one host, so the tag must match exactly one managed instance. The command is sent
 * with Targets=[tag:K=V], MaxConcurrency 1 and MaxErrors 0 (so at most one host runs it at a time and a failure
 * stops the rest), and the invocations are listed with ListCommandInvocations. If more than one instance shows
 * up, the command is cancelled (CancelCommand) and a ConfigError names the instances. If none shows up within
 * `invocationVisibleWithinMs`, a ConfigError says the tag matches no managed instance.
 *
 * IAM: ssm:SendCommand (document and instance), ssm:GetCommandInvocation, and for tag targets also
 * ssm:ListCommandInvocations and ssm:CancelCommand.
 */
export class SsmCommandRunner implements CommandRunner {
  private readonly client: SSMClient;
  private readonly target: SsmTarget;
  private readonly documentName: string;
  private readonly executionTimeoutSeconds: number;
  private readonly deliveryTimeoutSeconds: number;
  private readonly cloudWatchLogGroup: string | undefined;
  private readonly remainingTimeMs: (() => number) | undefined;
  private readonly reserveMs: number;
  private readonly pollIntervalMs: number;
  private readonly invocationVisibleWithinMs: number;
  private readonly comment: string;
  private readonly sleep: (ms: number) => Promise<void>;

  public constructor(options: SsmCommandRunnerOptions) {
    this.client = options.client;
    this.target = options.target;
    this.documentName = options.documentName;
    if (!SSM_DOCUMENT_NAME.test(this.documentName)) {
      throw new ConfigError(
        `"${this.documentName}" is not an SSM document name (3-128 letters, digits, _ . -): give the name of the ` +
          `janitor's GC document (the construct passes it as GC_DOCUMENT_NAME).`,
      );
    }
    if ('instanceId' in this.target && !isInstanceId(this.target.instanceId)) {
      throw new ConfigError(`"${this.target.instanceId}" is not ${INSTANCE_ID_FORM}.`);
    }
    if ('tagKey' in this.target) parseInstanceTag(`${this.target.tagKey}=${this.target.tagValue}`);
    this.executionTimeoutSeconds = checkExecutionTimeout(
      options.executionTimeoutSeconds ?? DEFAULT_GC_TIMEOUT_SECONDS,
    );
    this.deliveryTimeoutSeconds = options.deliveryTimeoutSeconds ?? 600;
    if (!Number.isInteger(this.deliveryTimeoutSeconds) || this.deliveryTimeoutSeconds < 30) {
      throw new ConfigError(`deliveryTimeoutSeconds must be a whole number of at least 30 (SSM's minimum).`);
    }
    this.cloudWatchLogGroup = options.cloudWatchLogGroup || undefined;
    this.remainingTimeMs = options.remainingTimeMs;
    this.reserveMs = options.reserveMs ?? 30_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
    this.invocationVisibleWithinMs = options.invocationVisibleWithinMs ?? 60_000;
    this.comment = (options.comment ?? 'registry-janitor').slice(0, 100);
    this.sleep = options.sleep ?? ((ms) => delay(ms));
  }

  public async run(
    parameters: Readonly<Record<string, string>>,
    options: { timeoutSeconds?: number } = {},
  ): Promise<SsmCommandResult> {
    const timeout = checkExecutionTimeout(options.timeoutSeconds ?? this.executionTimeoutSeconds);
    const commandId = await this.send(parameters, timeout);
    const tagMode = 'tagKey' in this.target;
    let instanceId = 'instanceId' in this.target ? this.target.instanceId : undefined;
    // Counted in slept time rather than wall time, so tests with an injected sleep can reach it.
    let invisibleMs = 0;

    for (;;) {
      if (tagMode) instanceId = await this.soleInvocation(commandId);
      const invocation =
        instanceId === undefined ? undefined : await this.getInvocation(commandId, instanceId);
      if (invocation && instanceId !== undefined && TERMINAL.has(invocation.Status ?? '')) {
        // With MaxConcurrency 1 a second host would only get its invocation once the first one has finished.
        if (tagMode) await this.soleInvocation(commandId, { instanceId, status: invocation.Status ?? '' });
        return toResult(commandId, instanceId, invocation);
      }

      if (!invocation && invisibleMs >= this.invocationVisibleWithinMs) {
        throw this.neverVisible(commandId);
      }
      const left = this.remainingTimeMs ? this.remainingTimeMs() - this.reserveMs : Number.POSITIVE_INFINITY;
      if (left <= 0) {
        return {
          status: 'InProgress',
          exitCode: null,
          stdout: '',
          stderr: '',
          commandId,
          ...(instanceId !== undefined ? { instanceId } : {}),
          ...(invocation?.StatusDetails ? { statusDetails: invocation.StatusDetails } : {}),
        };
      }
      const pause = Math.min(this.pollIntervalMs, left);
      await this.sleep(pause);
      if (!invocation) invisibleMs += pause;
    }
  }

  private async send(
    parameters: Readonly<Record<string, string>>,
    executionTimeout: number,
  ): Promise<string> {
    const input: SendCommandCommandInput = {
      DocumentName: this.documentName,
      Comment: this.comment,
      TimeoutSeconds: this.deliveryTimeoutSeconds,
      Parameters: {
        ...Object.fromEntries(Object.entries(parameters).map(([name, value]) => [name, [value]])),
        executionTimeout: [String(executionTimeout)],
      },
      ...('instanceId' in this.target
        ? { InstanceIds: [this.target.instanceId] }
        : {
            Targets: [{ Key: `tag:${this.target.tagKey}`, Values: [this.target.tagValue] }],
            MaxConcurrency: '1',
            MaxErrors: '0',
          }),
      ...(this.cloudWatchLogGroup
        ? {
            CloudWatchOutputConfig: {
              CloudWatchOutputEnabled: true,
              CloudWatchLogGroupName: this.cloudWatchLogGroup,
            },
          }
        : {}),
    };
    let commandId: string | undefined;
    try {
      commandId = (await this.client.send(new SendCommandCommand(input))).Command?.CommandId;
    } catch (err) {
      throw sendError(err, this.describeTarget(), this.documentName);
    }
    if (!commandId) throw new GcError(`SSM SendCommand to ${this.describeTarget()} returned no command id.`);
    return commandId;
  }

  /** The invocation, or undefined while SSM does not show it yet. */
  private async getInvocation(
    commandId: string,
    instanceId: string,
  ): Promise<GetCommandInvocationCommandOutput | undefined> {
    try {
      return await this.client.send(
        new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
      );
    } catch (err) {
      if (err instanceof Error && err.name === 'InvocationDoesNotExist') return undefined;
      throw new GcError(
        `Could not read SSM command ${commandId} on ${instanceId}: ${errorMessage(err)}. ` +
          `The Lambda role needs ssm:GetCommandInvocation; the command may still be running on the host.`,
        { cause: err },
      );
    }
  }

  /**
   * The one instance a tag-targeted command runs on, or undefined while none is listed. More than one: cancel
   * the command and refuse.
   */
  private async soleInvocation(
    commandId: string,
    finished?: { instanceId: string; status: string },
  ): Promise<string | undefined> {
    let listed: string[];
    try {
      const out = await this.client.send(
        new ListCommandInvocationsCommand({ CommandId: commandId, MaxResults: 50 }),
      );
      listed = (out.CommandInvocations ?? []).flatMap((i) => (i.InstanceId ? [i.InstanceId] : []));
    } catch (err) {
      throw new GcError(
        `Could not list the invocations of SSM command ${commandId}: ${errorMessage(err)}. ` +
          `The Lambda role needs ssm:ListCommandInvocations when the host is given by tag.`,
        { cause: err },
      );
    }
    const instances = [...new Set(listed)].sort();
    if (instances.length <= 1) return instances[0];

    let cancelNote = 'it was cancelled';
    try {
      await this.client.send(new CancelCommandCommand({ CommandId: commandId }));
    } catch (err) {
      cancelNote = `cancelling it failed (${errorMessage(err)}): cancel it by hand`;
    }
    const ran =
      finished === undefined
        ? ''
        : ` It had already finished on ${finished.instanceId} with status ${finished.status}.`;
    throw new ConfigError(
      `The tag ${this.describeTarget()} matches ${instances.length} instances (${instances.join(', ')}), but a ` +
        `registry is one host; SSM command ${commandId} was sent and ${cancelNote}.${ran} Tag only the registry ` +
        `host, or give its instance id instead.`,
    );
  }

  private neverVisible(commandId: string): Error {
    const seconds = Math.round(this.invocationVisibleWithinMs / 1000);
    if ('tagKey' in this.target) {
      return new ConfigError(
        `No managed instance ran SSM command ${commandId} within ${seconds} s: the tag ${this.describeTarget()} ` +
          `matches no instance with a running SSM agent. Check the tag on the registry host, its SSM agent and ` +
          `its instance profile (AmazonSSMManagedInstanceCore).`,
      );
    }
    return new GcError(
      `SSM command ${commandId} never showed an invocation on ${this.target.instanceId} within ${seconds} s. ` +
        `Check the instance's SSM agent and the command in the Systems Manager console.`,
    );
  }

  private describeTarget(): string {
    return 'instanceId' in this.target
      ? this.target.instanceId
      : `${this.target.tagKey}=${this.target.tagValue}`;
  }
}

function checkExecutionTimeout(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_GC_TIMEOUT_SECONDS) {
    throw new ConfigError(
      `Execution timeout ${seconds} s is out of range: the GC document accepts 1..${MAX_GC_TIMEOUT_SECONDS} seconds.`,
    );
  }
  return seconds;
}

function toResult(
  commandId: string,
  instanceId: string,
  out: GetCommandInvocationCommandOutput,
): SsmCommandResult {
  // ResponseCode is -1 while nothing has run (and for cancelled/timed-out scripts): not an exit code.
  const code = out.ResponseCode;
  return {
    status: out.Status as CommandResult['status'],
    exitCode: code === undefined || code < 0 ? null : code,
    stdout: out.StandardOutputContent ?? '',
    stderr: out.StandardErrorContent ?? '',
    commandId,
    instanceId,
    ...(out.StatusDetails ? { statusDetails: out.StatusDetails } : {}),
  };
}

function sendError(err: unknown, target: string, document: string): Error {
  const name = err instanceof Error ? err.name : '';
  const fixes: Record<string, string> = {
    InvalidInstanceId:
      `${target} is not a managed instance that can receive commands: check the id and region, that its SSM ` +
      `agent runs and that its instance profile has AmazonSSMManagedInstanceCore.`,
    AccessDeniedException: `the Lambda role may not run ${document} on ${target}: grant ssm:SendCommand on the document and the instance.`,
    InvalidDocument: `the document ${document} is not available in this region or account: deploy the stack that creates it, and pass its name.`,
    InvalidParameters: `a parameter was refused by the document ${document} (its allowedPattern or allowedValues).`,
  };
  const fix = fixes[name];
  const message = `SSM SendCommand to ${target} failed: ${errorMessage(err)}${fix ? `; ${fix}` : ''}`;
  return name === 'InvalidInstanceId'
    ? new ConfigError(message, { cause: err })
    : new GcError(message, { cause: err });
}
