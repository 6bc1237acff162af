// Runs garbage-collect on the registry host through a CommandRunner and turns the outcome into a result or a
// GcError that says why, with the end of the output. Pure orchestration: no I/O of its own.

import { GcError, errorMessage } from './errors.ts';
import { gcParameters, parseGcOutput } from './gc-script.ts';
import type { GcOptions, GcSummary } from './gc-script.ts';
import type { CommandResult, CommandRunner } from './ports.ts';

export type GcResult =
  | {
      readonly status: 'Success';
      readonly summary: GcSummary;
      readonly commandId?: string;
    }
  | {
      /** The runner stopped waiting while the script still runs on the host (SSM); poll with the command id. */
      readonly status: 'InProgress';
      readonly commandId?: string;
    };

export type GcRunOptions = GcOptions & {
  /** How long the runner lets the script run before stopping it. */
  readonly timeoutSeconds?: number;
};

/** Garbage-collect failed, timed out or was cancelled; carries what the script reported. */
export class GcCommandError extends GcError {
  public override readonly name: string = 'GcCommandError';
  public constructor(
    message: string,
    public readonly status: CommandResult['status'],
    public readonly exitCode: number | null,
    public readonly summary: GcSummary,
    public readonly commandId?: string,
  ) {
    super(message);
  }
}

const TAIL_IN_MESSAGE = 8;

function describeFailure(result: CommandResult, summary: GcSummary, timeoutSeconds?: number): string {
  let head: string;
  switch (result.status) {
    case 'TimedOut':
      head =
        `garbage-collect did not finish${timeoutSeconds === undefined ? '' : ` within ${timeoutSeconds} s`} and ` +
        'was stopped; the script (or its guardian, if it was killed) brings the registry back. Raise the ' +
        'timeout for large registries';
      break;
    case 'Cancelled':
      head = 'garbage-collect was cancelled; the script (or its guardian) brings the registry back';
      break;
    default:
      head =
        `garbage-collect failed on the registry host (exit ${result.exitCode ?? 'unknown'}` +
        `${summary.errorCode === null ? '' : `, ${summary.errorCode}`})`;
  }
  const reason = summary.error ?? lastLine(result.stderr);
  const parts = [reason === undefined || reason === '' ? head : `${head}: ${reason}`];
  if (summary.restoreFailed && summary.errorCode !== 'restore-failed') {
    const restore = summary.errors.find((e) => e.code === 'restore-failed');
    parts.push(`AND THE REGISTRY IS DOWN: ${restore?.message ?? 'it could not be started again'}`);
  }
  if (summary.tail.length > 0) {
    parts.push(
      `last garbage-collect output:\n${summary.tail
        .slice(-TAIL_IN_MESSAGE)
        .map((l) => `  ${l}`)
        .join('\n')}`,
    );
  }
  if (summary.logFile !== null) parts.push(`full log on the host: ${summary.logFile}`);
  return parts.join('\n');
}

/**
 * Checks `options`, runs the GC script with them as its parameters, and parses its output. Throws ConfigError for bad options and
 * GcCommandError (a GcError) when the script fails, times out or is cancelled.
 */
export async function runGc(runner: CommandRunner, options: GcRunOptions = {}): Promise<GcResult> {
  const { timeoutSeconds, ...gcOptions } = options;
  const parameters = gcParameters(gcOptions);
  let result: CommandResult;
  try {
    result = await runner.run(parameters, timeoutSeconds === undefined ? undefined : { timeoutSeconds });
  } catch (err) {
    throw new GcError(`could not run garbage-collect on the registry host: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return gcResultOf(result, timeoutSeconds);
}

/**
 * A finished (or still running) command's result as garbage-collect's outcome: the script's summary, or a
 * GcCommandError saying why it failed. The single run's runner and the workflow's Step Functions loop share it.
 */
export function gcResultOf(result: CommandResult, timeoutSeconds?: number): GcResult {
  if (result.status === 'InProgress') {
    return { status: 'InProgress', commandId: result.commandId };
  }
  const summary = parseGcOutput(result.stdout);
  if (result.status === 'Success' && summary.status !== 'failed') {
    return { status: 'Success', summary, commandId: result.commandId };
  }
  throw new GcCommandError(
    describeFailure(result, summary, timeoutSeconds),
    result.status,
    result.exitCode,
    summary,
    result.commandId,
  );
}

/** The last non-empty line of a command's stderr: where a failing script says why. */
export function lastLine(stderr: string): string | undefined {
  return stderr
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .at(-1);
}
