// Ctrl-C (or SIGTERM) during apply: the first signal stops the deletes (no new DELETE, those in flight finish) so
// the report can say exactly what was done; before the deletes, and on a second signal, the process exits at once.
import type { CliIo } from './io.ts';
import { EXIT, finishProgress } from './io.ts';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export interface Interrupt {
  /** Aborted, with a sentence saying why, on the first signal once the deletes have begun. */
  readonly signal: AbortSignal;
  /** The deletes have begun: from now on the first signal stops them instead of exiting. */
  deletesBegin(): void;
  /** Remove the handlers. */
  dispose(): void;
}

export function interruptOnSignals(
  io: CliIo,
  exit: (code: number) => void = (c) => process.exit(c),
): Interrupt {
  const controller = new AbortController();
  let deleting = false;
  const handler = (name: NodeJS.Signals): void => {
    finishProgress(io);
    if (controller.signal.aborted || !deleting) {
      io.stderr.write(
        controller.signal.aborted
          ? `\n${name} again: exiting now; DELETEs in flight may or may not have been carried out (plan again to see).\n`
          : `\nInterrupted by ${name} before anything was deleted.\n`,
      );
      exit(EXIT.interrupted);
      return;
    }
    io.stderr.write(
      `\nInterrupted by ${name}: no new DELETE is sent; waiting for those in flight (${name} again exits now).\n`,
    );
    controller.abort(`interrupted by ${name}`);
  };
  for (const s of SIGNALS) process.on(s, handler);
  return {
    signal: controller.signal,
    deletesBegin: () => {
      deleting = true;
    },
    dispose: () => {
      for (const s of SIGNALS) process.off(s, handler);
    },
  };
}
