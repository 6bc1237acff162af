// What every CLI command shares: the process's streams and environment, the exit codes, where relative paths
// point, and the progress line.
import { resolve } from 'node:path';

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** `interrupted`: 128 + SIGINT, as shells report a process stopped by Ctrl-C. */
export const EXIT = { ok: 0, failed: 1, badInput: 2, refused: 3, interrupted: 130 } as const;

/**
 * A path the user typed, made absolute: relative to the directory the command was run from. `npm run` starts
 * scripts in the package root and names the user's directory in INIT_CWD.
 */
export function userPath(io: CliIo, path: string): string {
  return resolve(io.env.INIT_CWD ?? process.cwd(), path);
}

/** A progress line: redrawn in place on a terminal, nothing elsewhere. */
export interface Progress {
  /** `done` of `total` units (e.g. repositories); `detail` adds counts, e.g. "5,400 tags". */
  update(done: number, total: number, detail?: string): void;
  /** Draw the last state and end the line with a newline; idempotent. Call it on every way out, SIGINT's too. */
  finish(): void;
}

const NO_PROGRESS: Progress = { update: () => undefined, finish: () => undefined };

/** Redraws at most five times a second. */
const REDRAW_MS = 200;

/** The line on the terminal now, so that an interrupt (or an error) can end it: see finishProgress. */
const active = new WeakMap<CliIo, Progress>();

/**
 * A progress line for `label` ("scanning", "deleting") with the count, the rate and an ETA, on stderr when it is a
 * terminal. `now` is for tests.
 */
export function progress(io: CliIo, label: string, unit: string, now: () => number = Date.now): Progress {
  if (!io.stderr.isTTY) return NO_PROGRESS;
  const started = now();
  let last = -Infinity;
  let drawn = false;
  let finished = false;
  let state: { done: number; total: number; detail?: string } | undefined;
  const draw = (): void => {
    if (!state) return;
    const { done, total, detail } = state;
    const seconds = (now() - started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = done > 0 && done < total ? formatDuration((seconds * (total - done)) / done) : undefined;
    const parts = [
      `${label} ${done}/${total} ${unit}`,
      ...(detail ? [detail] : []),
      `${rate.toFixed(rate < 10 ? 1 : 0)} ${unit}/s`,
      ...(eta ? [`ETA ${eta}`] : done >= total ? [`done in ${formatDuration(seconds)}`] : []),
    ];
    io.stderr.write(`\r\x1b[K${parts.join(', ')}`);
    drawn = true;
  };
  const line: Progress = {
    update(done, total, detail) {
      if (finished) return;
      state = { done, total, ...(detail !== undefined ? { detail } : {}) };
      active.set(io, line);
      const t = now();
      if (t - last < REDRAW_MS && done < total) return;
      last = t;
      draw();
    },
    finish() {
      if (finished) return;
      finished = true;
      if (active.get(io) === line) active.delete(io);
      draw();
      if (drawn) io.stderr.write('\n');
    },
  };
  return line;
}

/** End whatever progress line is on the terminal (from a signal handler or before an error is printed). */
export function finishProgress(io: CliIo): void {
  active.get(io)?.finish();
}

/** 75 → "1:15", 3725 → "1:02:05". */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}
