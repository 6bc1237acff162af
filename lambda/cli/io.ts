// What every CLI command shares: the process's streams and environment, the exit codes, the progress line.

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** `interrupted`: 128 + SIGINT, as shells report a process stopped by Ctrl-C. */
export const EXIT = { ok: 0, failed: 1, badInput: 2, refused: 3, interrupted: 130 } as const;

/** A progress line redrawn in place on a terminal, at most five times a second; nothing otherwise. */
export function progress(io: CliIo): ((line: string) => void) | undefined {
  if (!io.stderr.isTTY) return undefined;
  let last = 0;
  return (line) => {
    const now = Date.now();
    if (now - last < 200) return;
    last = now;
    io.stderr.write(`\r\x1b[K${line}`);
  };
}

/** Clear the progress line before printing anything else. */
export function clearProgress(io: CliIo): void {
  if (io.stderr.isTTY) io.stderr.write('\r\x1b[K');
}
