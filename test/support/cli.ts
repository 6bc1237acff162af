// The CLI in-process (lambda/cli/main.ts) with in-memory streams: what a user would see on stdout and stderr,
// and the exit code. `tty` makes stderr look like a terminal (the progress line only shows there).
import { PassThrough } from 'node:stream';
import { main } from '../../lambda/cli/main.ts';

export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

export interface CliOptions {
  readonly env?: Record<string, string>;
  readonly stdin?: string;
  readonly tty?: boolean;
}

export async function cli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), { isTTY: options.tty ?? false });
  const stdin = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  stdin.end(options.stdin ?? '');
  const code = await main(args, { stdout, stderr, stdin, env: options.env ?? {} });
  return { code, out, err };
}
