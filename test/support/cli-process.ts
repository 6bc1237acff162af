// The CLI as a user runs it, in its own process (`node --import tsx bin/cli.ts …`), with its output and exit code;
// `onRunning` gets a way to signal it (SIGINT, SIGKILL) while it runs.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `stateDir` is its XDG_STATE_HOME: the journal's default place is the user's state folder, a test keeps its own. */
export function runCli(
  args: string[],
  stateDir: string,
  onRunning?: (kill: (s: NodeJS.Signals) => void) => void,
): Promise<Finished> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bin/cli.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', XDG_STATE_HOME: stateDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  onRunning?.((s) => child.kill(s));
  return new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
}
