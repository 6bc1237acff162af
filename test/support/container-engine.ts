// Test helpers for the real container engine (podman serving the Docker API, see container-engine.sh): start it,
// run `docker`, create uniquely named registry containers (registry:2 or, with REGISTRY_V3_BIN, registry:3 stand-ins), record what a container is made of, and pause the
// docker CLI at chosen steps of a script so a test can look at the registry mid-run.

import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RegistryKind } from './registry-kind.ts';

export const ENGINE_SCRIPT = fileURLToPath(new URL('./container-engine.sh', import.meta.url));
export const REGISTRY_IMAGE = 'localhost/registry:2';
/** Built by container-engine.sh setup only when REGISTRY_V3_BIN is set. */
export const REGISTRY_V3_IMAGE = 'localhost/registry:3';

export function registryImage(kind: RegistryKind): string {
  return kind === 'v3' ? REGISTRY_V3_IMAGE : REGISTRY_IMAGE;
}
const ENGINE_DIR = process.env.REGISTRY_JANITOR_ENGINE_DIR ?? '/run/registry-janitor';

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program and collects its output; never rejects on a non-zero exit. */
export function exec(
  program: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', (err) =>
      reject(new Error(`cannot run ${program}: ${err.message}; is it installed?`, { cause: err })),
    );
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface Engine {
  /** unix:///…/podman.sock */
  readonly dockerHost: string;
  /** process.env with DOCKER_HOST set. */
  readonly env: NodeJS.ProcessEnv;
  /** Ends this test file's use of the engine; stops the API service if a test started it and no one else uses it. */
  release(): Promise<void>;
}

function missingTools(): string[] {
  const path = (process.env.PATH ?? '').split(delimiter);
  const onPath = (tool: string): boolean => path.some((dir) => existsSync(join(dir, tool)));
  return ['bash', 'flock', 'docker', 'podman', 'runc', 'docker-registry', 'dash'].filter((t) => !onPath(t));
}

/**
 * Makes sure the engine runs (container-engine.sh setup) and holds a shared lock on it until release(), so that
 * another test file's teardown cannot stop the service under this one. Throws, naming what is missing, when the
 * engine cannot be had.
 */
export async function startEngine(): Promise<Engine> {
  const missing = missingTools();
  if (missing.length > 0) {
    throw new Error(
      `the container-engine tests need ${missing.join(', ')} on PATH: apt-get install -y podman runc ` +
        'busybox-static docker-registry dash, plus the Docker CLI (see the README, Tests)',
    );
  }
  await mkdir(ENGINE_DIR, { recursive: true });
  const holder = await holdSharedLock(join(ENGINE_DIR, 'users.lock'));
  try {
    const setup = await exec('bash', [ENGINE_SCRIPT, 'setup', 'ephemeral']);
    if (setup.code !== 0) {
      throw new Error(
        `container-engine.sh setup failed (exit ${setup.code}):\n${setup.stderr}${setup.stdout}`,
      );
    }
    const envOut = await exec('bash', [ENGINE_SCRIPT, 'env']);
    const dockerHost = /^DOCKER_HOST=(.+)$/m.exec(envOut.stdout)?.[1];
    if (dockerHost === undefined)
      throw new Error(`container-engine.sh env printed no DOCKER_HOST: ${envOut.stdout}`);
    return {
      dockerHost,
      env: { ...process.env, DOCKER_HOST: dockerHost },
      release: async () => {
        await releaseSharedLock(holder);
        await exec('bash', [ENGINE_SCRIPT, 'stop-if-idle']);
      },
    };
  } catch (err) {
    await releaseSharedLock(holder);
    throw err;
  }
}

function holdSharedLock(file: string): Promise<ChildProcessWithoutNullStreams> {
  return new Promise((resolve, reject) => {
    // flock keeps the lock while `cat` waits on our pipe; closing the pipe (or this process dying) releases it.
    const child = spawn('flock', ['-s', file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.on('error', reject);
    child.stdout.once('data', () => resolve(child));
    child.on('exit', (code) => reject(new Error(`flock -s ${file} exited early (code ${code})`)));
  });
}

function releaseSharedLock(holder: ChildProcessWithoutNullStreams): Promise<void> {
  return new Promise((resolve) => {
    if (holder.exitCode !== null || holder.signalCode !== null) {
      resolve();
      return;
    }
    holder.once('exit', () => resolve());
    holder.stdin.end();
  });
}

/** Runs the docker CLI against the engine. */
export function docker(engine: Engine, ...args: string[]): Promise<ExecResult> {
  return exec('docker', args, engine.env);
}

/** Runs the docker CLI against the engine and returns its trimmed stdout; throws with stderr on failure. */
export async function dockerOk(engine: Engine, ...args: string[]): Promise<string> {
  const result = await docker(engine, ...args);
  if (result.code !== 0) {
    throw new Error(`docker ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim()}`);
  }
  return result.stdout.trim();
}

export function uniqueName(prefix = 'rj-test'): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** A free TCP port on 127.0.0.1 (free when this returns; the caller binds it soon after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not get a free port'));
      });
    });
  });
}

export interface RegistryContainer {
  readonly name: string;
  readonly volume: string;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
}

export interface RegistryContainerOptions {
  /** Which stand-in image: registry:2 (default) or registry:3. */
  readonly kind?: RegistryKind;
  /** Extra `docker run` arguments placed before the image (e.g. a network). */
  readonly runArgs?: readonly string[];
}

/** Starts a registry the way a host runs one: restart policy, published port, named volume, deletes enabled. */
export async function createRegistryContainer(
  engine: Engine,
  options: RegistryContainerOptions = {},
): Promise<RegistryContainer> {
  const name = uniqueName();
  const port = await freePort();
  const container: RegistryContainer = { name, volume: name, port, url: `http://127.0.0.1:${port}` };
  await dockerOk(
    engine,
    'run',
    '-d',
    '--name',
    name,
    '--restart',
    'always',
    '-p',
    `127.0.0.1:${port}:5000`,
    '-v',
    `${name}:/var/lib/registry`,
    '-e',
    'REGISTRY_STORAGE_DELETE_ENABLED=true',
    ...(options.runArgs ?? []),
    registryImage(options.kind ?? '2.8'),
  );
  await waitForRegistry(container.url);
  return container;
}

/** Removes the container, anything the GC script may have left of it, and its volume. */
export async function removeRegistryContainer(engine: Engine, container: RegistryContainer): Promise<void> {
  await docker(engine, 'rm', '-f', `${container.name}-janitor-gc`);
  await docker(engine, 'rm', '-f', container.name);
  await docker(engine, 'volume', 'rm', '-f', container.volume);
}

/** Polls GET /v2/ until it answers 200. */
export async function waitForRegistry(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  throw new Error(`the registry at ${url} did not answer within ${timeoutMs} ms (last: ${last})`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `check` returns true, failing with `what` after the timeout. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
}

/** What a container is made of; equal before and after GC means the script did not modify (or recreate) it. */
export interface ContainerIdentity {
  readonly id: string;
  readonly image: string;
  readonly imageName: string;
  readonly env: readonly string[];
  readonly cmd: unknown;
  readonly entrypoint: unknown;
  readonly user: string;
  readonly labels: unknown;
  readonly portBindings: unknown;
  readonly networkMode: string;
  readonly networks: readonly string[];
  readonly restartPolicy: string;
  readonly mounts: readonly {
    type: string;
    name: string;
    source: string;
    destination: string;
    rw: boolean;
  }[];
}

/** The parts of `docker inspect` output read here. */
interface InspectedContainer {
  readonly Id: string;
  readonly Image: string;
  readonly Config: {
    readonly Image: string;
    readonly Env?: string[] | null;
    readonly Cmd?: unknown;
    readonly Entrypoint?: unknown;
    readonly User?: string;
    readonly Labels?: Record<string, string> | null;
  };
  readonly HostConfig: {
    readonly PortBindings?: unknown;
    readonly NetworkMode: string;
    readonly RestartPolicy?: { readonly Name?: string };
  };
  readonly NetworkSettings: { readonly Networks?: Record<string, unknown> | null };
  readonly Mounts: {
    readonly Type: string;
    readonly Name?: string;
    readonly Source: string;
    readonly Destination: string;
    readonly RW: boolean;
  }[];
}

export async function containerIdentity(engine: Engine, name: string): Promise<ContainerIdentity> {
  const raw = await dockerOk(engine, 'inspect', '--type', 'container', name);
  const [info] = JSON.parse(raw) as [InspectedContainer];
  const mounts = info.Mounts.map((m) => ({
    type: m.Type,
    name: m.Name ?? '',
    source: m.Source,
    destination: m.Destination,
    rw: m.RW,
  }));
  return {
    id: info.Id,
    image: info.Image,
    imageName: info.Config.Image,
    env: [...(info.Config.Env ?? [])].sort(),
    cmd: info.Config.Cmd,
    entrypoint: info.Config.Entrypoint,
    user: info.Config.User ?? '',
    labels: info.Config.Labels ?? {},
    portBindings: info.HostConfig.PortBindings,
    networkMode: info.HostConfig.NetworkMode,
    networks: Object.keys(info.NetworkSettings.Networks ?? {}).sort(),
    restartPolicy: info.HostConfig.RestartPolicy?.Name ?? '',
    mounts: mounts.sort((a, b) => a.destination.localeCompare(b.destination)),
  };
}

export interface ContainerState {
  readonly exists: boolean;
  readonly running: boolean;
  readonly startedAt: string;
}

export async function containerState(engine: Engine, name: string): Promise<ContainerState> {
  const result = await docker(
    engine,
    'inspect',
    '--type',
    'container',
    '-f',
    '{{.State.Running}}|{{.State.StartedAt}}',
    name,
  );
  if (result.code !== 0) return { exists: false, running: false, startedAt: '' };
  const [running, startedAt] = result.stdout.trim().split('|');
  return { exists: true, running: running === 'true', startedAt: startedAt ?? '' };
}

/**
 * A `docker` wrapper put first on PATH that, before chosen steps, waits for the test to release it:
 * - `gc`: the garbage-collect command (`docker exec … garbage-collect …` or `docker start -a` of the one-off);
 * - `standin-start`: `docker start <name>-janitor-gc` (the original registry is already stopped then).
 * Everything else passes straight to the real docker CLI.
 */
export class DockerPauses {
  private constructor(
    public readonly dir: string,
    public readonly binDir: string,
  ) {}

  public static async create(realDocker = 'docker'): Promise<DockerPauses> {
    const dir = await mkdtemp(join(tmpdir(), 'rj-pauses-'));
    const binDir = join(dir, 'bin');
    await mkdir(binDir);
    const real = realDocker.includes('/') ? realDocker : which(realDocker);
    const wrapper = `#!/bin/sh
# Test wrapper around ${real}: pauses before the steps named in RJ_PAUSE until the test releases them.
step=
case $1 in
  exec) case " $* " in *" garbage-collect "*) step=gc ;; esac ;;
  start)
    if [ "$2" = -a ]; then step=gc; else case $2 in *-janitor-gc) step=standin-start ;; esac; fi ;;
esac
if [ -n "$step" ]; then
  case " \${RJ_PAUSE:-} " in
    *" $step "*)
      : >"${dir}/at-$step"
      while [ -d "${dir}" ] && [ ! -e "${dir}/go-$step" ]; do sleep 0.05; done ;;
  esac
fi
exec '${real}' "$@"
`;
    await writeFile(join(binDir, 'docker'), wrapper);
    await chmod(join(binDir, 'docker'), 0o755);
    return new DockerPauses(dir, binDir);
  }

  /** Environment for the script: the wrapper first on PATH, pausing at `steps`. */
  public env(base: NodeJS.ProcessEnv, steps: readonly ('gc' | 'standin-start')[]): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
    env.PATH = `${this.binDir}${delimiter}${base.PATH ?? ''}`;
    env.RJ_PAUSE = steps.join(' ');
    return env;
  }

  /** Resolves when the script is paused at `step`. */
  public async reached(step: string, timeoutMs = 60_000): Promise<void> {
    await waitUntil(
      `the script reaches step ${step}`,
      () => Promise.resolve(existsSync(join(this.dir, `at-${step}`))),
      timeoutMs,
    );
  }

  public async release(step: string): Promise<void> {
    await writeFile(join(this.dir, `go-${step}`), '');
  }

  /** Lets every paused or future step through, then removes the wrapper. */
  public async dispose(): Promise<void> {
    await this.release('gc');
    await this.release('standin-start');
    await sleep(200);
    await rm(this.dir, { recursive: true, force: true });
  }
}

function which(program: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, program);
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  throw new Error(`${program} is not on PATH`);
}
