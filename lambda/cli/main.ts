// The command-line interface: the same job as the Lambda, run from a workstation or the registry host.
// Exit codes: 0 done, 1 failed, 2 bad input, 3 refused by a safety guard.
import { ConfigError, errorMessage, JanitorError, PolicyError, SafetyError } from '../core/errors.ts';
import { closest } from '../core/suggest.ts';
import { COMMANDS, GC_USAGE, parseCommandLine, RESTORE_USAGE, USAGE, type Values } from './args.ts';
import { EXIT, finishProgress, type CliIo } from './io.ts';

export { EXIT, type CliIo } from './io.ts';

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseCommandLine(argv));
  } catch (err) {
    // The message names the flag and the fix; the whole usage would bury it.
    return reportError(err, io);
  }
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    const topic = command === 'help' ? positionals[1] : command;
    io.stdout.write(topic === 'gc' ? GC_USAGE : topic === 'restore' ? RESTORE_USAGE : USAGE);
    return command === undefined && !values.help ? EXIT.badInput : EXIT.ok;
  }
  try {
    switch (command) {
      // Each command is loaded when it runs, so `--help` and a bad flag load none of them (a quick start from
      // the bundle, bin/bundle.js).
      case 'plan':
        return await (await import('./plan.ts')).planCommand(values, io);
      case 'apply':
        return await (await import('./apply.ts')).applyCommand(values, io);
      case 'gc':
        return await (await import('./gc.ts')).gcCommand(values, io);
      case 'restore':
        return await (await import('./restore.ts')).restoreCommand(values, io);
      default: {
        const guess = closest(command, COMMANDS);
        throw new ConfigError(
          `unknown command "${command}"${guess ? ` (did you mean "${guess}"?)` : ''}; use plan, apply, gc or restore (see --help)`,
        );
      }
    }
  } catch (err) {
    return reportError(err, io);
  }
}

/** An error as the user sees it, and its exit code. */
export function reportError(err: unknown, io: CliIo): number {
  finishProgress(io);
  const message = errorMessage(err);
  if (err instanceof ConfigError || err instanceof PolicyError) {
    io.stderr.write(`error: ${message}\n`);
    return EXIT.badInput;
  }
  if (err instanceof SafetyError) {
    io.stderr.write(`refused: ${message}\n`);
    return EXIT.refused;
  }
  io.stderr.write(`error: ${message}\n`);
  if (!(err instanceof JanitorError) && err instanceof Error && err.stack && io.env.DEBUG)
    io.stderr.write(err.stack + '\n');
  return EXIT.failed;
}
