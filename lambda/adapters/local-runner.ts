// Runs the GC script with a local shell (/bin/sh by default), its parameters as SSM_<name> variables as SSM Run
// Command sets them: the CLI on the registry host itself, and the tests. On timeout the shell gets SIGTERM (the GC
// script's trap brings the registry back), then SIGKILL after a grace.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ConfigError } from '../core/errors.ts';
import { readGcScript } from '../gc/registry-gc.ts';
import type { CommandResult, CommandRunner } from '../core/ports.ts';

export interface LocalCommandRunnerOptions {
  /** The script to run. @default the GC script, lambda/gc/registry-gc.sh */
  readonly script?: string;
  /** Shell that runs the script file. @default '/bin/sh' */
  readonly shell?: string;
  /** Added to (and overriding) this process's environment, e.g. `{ DOCKER_HOST: 'unix:///…' }`. @default {} */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** @default this process's working directory */
  readonly cwd?: string;
  /** Seconds between SIGTERM and SIGKILL when the timeout hits. @default 60 */
  readonly killGraceSeconds?: number;
  /** Each of stdout and stderr is cut to this many bytes (the script's own output is small). @default 4 MiB */
  readonly maxOutputBytes?: number;
}

/** Collects a stream up to a limit, noting that the rest was dropped. */
class Capture {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private dropped = 0;
  public constructor(private readonly limit: number) {}
  public add(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.size += kept.length;
    this.dropped += chunk.length - kept.length;
  }
  public text(): string {
    const text = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped > 0 ? `${text}\n[local-runner: ${this.dropped} more bytes dropped]\n` : text;
  }
}

export class LocalCommandRunner implements CommandRunner {
  private readonly script: string | undefined;
  private readonly shell: string;
  private readonly env: Readonly<Record<string, string | undefined>>;
  private readonly cwd: string | undefined;
  private readonly killGraceMs: number;
  private readonly maxOutputBytes: number;

  public constructor(options: LocalCommandRunnerOptions = {}) {
    this.script = options.script;
    this.shell = options.shell ?? '/bin/sh';
    this.env = options.env ?? {};
    this.cwd = options.cwd;
    this.killGraceMs = (options.killGraceSeconds ?? 60) * 1000;
    this.maxOutputBytes = options.maxOutputBytes ?? 4 * 1024 * 1024;
  }

  public async run(
    parameters: Readonly<Record<string, string>>,
    options: { timeoutSeconds?: number } = {},
  ): Promise<CommandResult> {
    const timeoutSeconds = options.timeoutSeconds;
    if (timeoutSeconds !== undefined && !(timeoutSeconds > 0)) {
      throw new ConfigError(`timeoutSeconds must be a positive number of seconds, got ${timeoutSeconds}`);
    }
    // A file, not stdin: commands in the script that read stdin would otherwise eat the rest of it.
    const dir = await mkdtemp(join(tmpdir(), 'registry-janitor-run-'));
    try {
      const file = join(dir, 'script.sh');
      await writeFile(file, this.script ?? readGcScript(), { mode: 0o700 });
      return await this.spawnScript(file, scriptEnvironment(this.env, parameters), timeoutSeconds);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private spawnScript(
    file: string,
    env: NodeJS.ProcessEnv,
    timeoutSeconds: number | undefined,
  ): Promise<CommandResult> {
    return new Promise<CommandResult>((resolve, reject) => {
      const child = spawn(this.shell, [file], {
        cwd: this.cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const stdout = new Capture(this.maxOutputBytes);
      const stderr = new Capture(this.maxOutputBytes);
      child.stdout.on('data', (chunk: Buffer) => stdout.add(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));

      let timedOut = false;
      let killTimer: NodeJS.Timeout | undefined;
      const timeoutTimer =
        timeoutSeconds === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              child.kill('SIGTERM');
              killTimer = setTimeout(() => child.kill('SIGKILL'), this.killGraceMs);
            }, timeoutSeconds * 1000);

      child.on('error', (err) => {
        clearTimeout(timeoutTimer);
        clearTimeout(killTimer);
        reject(new ConfigError(`cannot run the shell ${this.shell}: ${err.message}`, { cause: err }));
      });
      // 'close' waits for the output pipes too, so nothing the script printed last is lost; a background process
      // that kept them open must not hold the result back for long.
      let drainTimer: NodeJS.Timeout | undefined;
      child.on('exit', () => {
        drainTimer = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
        }, 5000);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timeoutTimer);
        clearTimeout(killTimer);
        clearTimeout(drainTimer);
        const status: CommandResult['status'] = timedOut ? 'TimedOut' : code === 0 ? 'Success' : 'Failed';
        let err = stderr.text();
        if (signal !== null && !timedOut) err += `\n[local-runner: the shell was killed by ${signal}]\n`;
        resolve({ status, exitCode: code, stdout: stdout.text(), stderr: err });
      });
    });
  }
}

/** The variables SSM Run Command sets for ENV_VAR parameters: one SSM_<name> per parameter. */
export function parameterEnvironment(parameters: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parameters)) {
    if (!/^[A-Za-z0-9_]+$/.test(name)) throw new ConfigError(`"${name}" is not a parameter name`);
    env[`SSM_${name}`] = value;
  }
  return env;
}

/**
 * This process's environment and `env`, without any SSM_ variable of theirs, plus the parameters' variables: the
 * script sees the parameters it was given and nothing else under that prefix.
 */
function scriptEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  parameters: Readonly<Record<string, string>>,
): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries({ ...process.env, ...env })) {
    if (!key.startsWith('SSM_') && value !== undefined) merged[key] = value;
  }
  return { ...merged, ...parameterEnvironment(parameters) };
}
