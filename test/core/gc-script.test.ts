// The GC script without a container engine: generated text and option checks, output parsing, runGc over a fake
// runner, and the script itself run under dash (and bash) against a fake `docker` that records every call.

import { spawn } from 'node:child_process';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ConfigError, GcError } from '../../lambda/core/errors.ts';
import { GcCommandError, runGc } from '../../lambda/core/gc.ts';
import {
  gcParameters,
  listingParameters,
  parseGcOutput,
  parseListingOutput,
} from '../../lambda/core/gc-script.ts';
import { readGcScript } from '../../lambda/gc/registry-gc.ts';
import type { GcOptions } from '../../lambda/core/gc-script.ts';
import type { CommandResult, CommandRunner } from '../../lambda/core/ports.ts';
import { LocalCommandRunner, parameterEnvironment } from '../../lambda/adapters/local-runner.ts';
import { startTemplateServer } from '../support/go-template.js';

function run(program: string, args: string[], input?: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', (err) => reject(new Error(`cannot run ${program} (${err.message}); install it`)));
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.on('error', () => undefined); // a shell run with -c does not read its input
    child.stdin.end(input ?? '');
  });
}

describe('gcParameters and the static script', () => {
  it('gives the script every parameter the document declares, with the defaults', () => {
    expect(gcParameters({})).toEqual({
      containerName: 'registry',
      configPath: '',
      mode: 'readonly',
      dryRun: 'false',
      deleteUntagged: 'false',
    });
  });

  it('passes the host settings only when given, and values exactly as given', () => {
    const configPath = `/etc/my registry/it's $HOME \`x\` "y".yml`;
    expect(
      gcParameters({
        configPath,
        containerName: 'reg.v2_a-1',
        mode: 'online',
        dryRun: true,
        deleteUntagged: true,
        logDir: '/srv/logs',
        lockPath: '/run/x.lock',
        storagePath: '/data',
        lockWaitSeconds: 0,
      }),
    ).toEqual({
      containerName: 'reg.v2_a-1',
      configPath,
      mode: 'online',
      dryRun: 'true',
      deleteUntagged: 'true',
      logDir: '/srv/logs',
      lockPath: '/run/x.lock',
      storagePath: '/data',
      lockWaitSeconds: '0',
    });
  });

  it('is one static file: nothing of a caller is in its text', () => {
    const script = readGcScript();
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(script).toBe(readFileSync(new URL('../../lambda/gc/registry-gc.sh', import.meta.url), 'utf8'));
    // SSM would read a double brace as a parameter reference and paste text into the script.
    expect(script).not.toContain('{{');
  });

  it('is valid sh for dash and bash', async () => {
    const script = readGcScript();
    expect(await run('dash', ['-n'], script)).toEqual({ code: 0, out: '' });
    expect(await run('bash', ['--posix', '-n'], script)).toEqual({ code: 0, out: '' });
  });

  it.each<[string, GcOptions, RegExp]>([
    ['a space in the container name', { containerName: 'my registry' }, /containerName "my registry" is not/],
    [
      'a quote in the container name',
      { containerName: "r';rm -rf /;'" },
      /containerName .* is not a container name/,
    ],
    ['a leading dash', { containerName: '-rf' }, /containerName "-rf"/],
    ['an empty container name', { containerName: '' }, /containerName ""/],
    [
      'a relative config path',
      { configPath: 'config.yml' },
      /configPath "config.yml" must be an absolute path/,
    ],
    ['a newline in a path', { storagePath: '/var/lib/reg\nistry' }, /storagePath .* no control characters/],
    ['an empty log dir', { logDir: '' }, /logDir "" must be an absolute path on the registry host/],
    ['a directory as lock path', { lockPath: '/var/lock/' }, /lockPath "\/var\/lock\/" names a directory/],
    ['an unknown mode', { mode: 'fast' as never }, /mode "fast" is not one of readonly, offline, online/],
    ['a string flag', { dryRun: 'yes' as never }, /dryRun must be true or false/],
    ['a fractional lock wait', { lockWaitSeconds: 1.5 }, /lockWaitSeconds must be a whole number of seconds/],
  ])('rejects %s with a ConfigError', (_name, options, message) => {
    expect(() => gcParameters(options)).toThrow(ConfigError);
    expect(() => gcParameters(options)).toThrow(message);
  });
});

const OK_OUTPUT = `registry-janitor: log=/var/log/registry-janitor/gc-registry-20250101T000000Z-42.log
registry-janitor: container=registry
registry-janitor: mode=readonly
registry-janitor: dry_run=0
registry-janitor: delete_untagged=0
registry-janitor: version=2.8.2+ds1
registry-janitor: config=/etc/docker/registry/config.yml
registry-janitor: bytes_before=1036288
registry-janitor: standin=registry-janitor-gc
registry-janitor: mode_used=readonly
registry-janitor: gc_exit=0
registry-janitor: summary=3 blobs marked, 3 blobs and 0 manifests eligible for deletion
registry-janitor: tail=3 blobs marked, 3 blobs and 0 manifests eligible for deletion
registry-janitor: tail=blob eligible for deletion: sha256:c60f
registry-janitor: restored=registry
registry-janitor: bytes_after=512000
registry-janitor: status=ok
`;

describe('the listing (action=list)', () => {
  const URL_OK =
    'https://b.s3.amazonaws.com/history-listing/2026-12-02/k.txt.gz?X-Amz-Signature=ab%2F&X-Amz-Expires=600';

  it("sends the list action and the upload URL, with the document's other parameters", () => {
    expect(listingParameters({ containerName: 'reg', uploadUrl: URL_OK })).toEqual({
      containerName: 'reg',
      configPath: '',
      mode: 'online',
      dryRun: 'false',
      deleteUntagged: 'false',
      action: 'list',
      uploadUrl: URL_OK,
    });
  });

  it.each([
    '',
    'ftp://h/x',
    'https://h/x y',
    'https://h/"x',
    'https://h/a\\b',
    `https://h/${'a'.repeat(4100)}`,
  ])('refuses the upload URL %j before anything runs', (uploadUrl) => {
    expect(() => listingParameters({ uploadUrl })).toThrow(ConfigError);
  });

  it('refuses a bad container name as garbage-collect does', () => {
    expect(() => listingParameters({ containerName: '-x', uploadUrl: URL_OK })).toThrow(
      /not a container name/,
    );
  });

  it('reads the summary, ignoring anything else', () => {
    const sha = 'a'.repeat(64);
    expect(
      parseListingOutput(
        [
          'registry-janitor: version=3.0.0',
          'registry-janitor: listing_root=/var/lib/registry',
          'noise from docker',
          'registry-janitor: listing_count=100000',
          'registry-janitor: listing_bytes=776894',
          `registry-janitor: listing_sha256=${sha}`,
          'registry-janitor: listing_count=5',
          'registry-janitor: status=ok',
        ].join('\n'),
      ),
    ).toEqual({
      status: 'ok',
      root: '/var/lib/registry',
      count: 100000,
      bytes: 776894,
      sha256: sha,
      errorCode: null,
      error: null,
      registryVersion: '3.0.0',
    });
  });

  it('reports a failure and its reason, and never a malformed hash or count', () => {
    expect(
      parseListingOutput(
        'registry-janitor: listing_sha256=XYZ\nregistry-janitor: listing_count=-1\nregistry-janitor: error_code=listing-refused\nregistry-janitor: error=the registry keeps its storage in s3\nregistry-janitor: status=failed\n',
      ),
    ).toMatchObject({
      status: 'failed',
      sha256: null,
      count: null,
      errorCode: 'listing-refused',
      error: 'the registry keeps its storage in s3',
    });
    expect(parseListingOutput('')).toMatchObject({ status: null, count: null, root: null });
  });
});

describe('parseGcOutput', () => {
  it('reads a successful read-only run', () => {
    expect(parseGcOutput(OK_OUTPUT)).toEqual({
      status: 'ok',
      container: 'registry',
      modeRequested: 'readonly',
      modeUsed: 'readonly',
      fellBack: false,
      dryRun: false,
      deleteUntagged: false,
      registryVersion: '2.8.2+ds1',
      configPath: '/etc/docker/registry/config.yml',
      blobsMarked: 3,
      blobsEligible: 3,
      manifestsEligible: 0,
      bytesBefore: 1036288,
      bytesAfter: 512000,
      bytesFreed: 524288,
      logFile: '/var/log/registry-janitor/gc-registry-20250101T000000Z-42.log',
      tail: [
        '3 blobs marked, 3 blobs and 0 manifests eligible for deletion',
        'blob eligible for deletion: sha256:c60f',
      ],
      warnings: [],
      errors: [],
      errorCode: null,
      error: null,
      restoreFailed: false,
      exitStatus: 0,
    });
  });

  it.each<[string, string, Partial<ReturnType<typeof parseGcOutput>>]>([
    [
      'a fallback to offline',
      'registry-janitor: mode=readonly\nregistry-janitor: warning=the read-only stand-in could not start (x); fell back\n' +
        'registry-janitor: mode_used=offline\nregistry-janitor: status=ok\n',
      {
        modeRequested: 'readonly',
        modeUsed: 'offline',
        fellBack: true,
        warnings: ['the read-only stand-in could not start (x); fell back'],
      },
    ],
    [
      'a missing container',
      'registry-janitor: error_code=container-missing\nregistry-janitor: error=there is no container named x\n' +
        'registry-janitor: exit_status=4\nregistry-janitor: status=failed\n',
      {
        status: 'failed',
        errorCode: 'container-missing',
        error: 'there is no container named x',
        exitStatus: 4,
      },
    ],
    [
      'a failed restore after an interruption',
      'registry-janitor: error_code=interrupted\nregistry-janitor: error=interrupted by SIGTERM\n' +
        'registry-janitor: error_code=restore-failed\nregistry-janitor: error=could not start r again\n' +
        'registry-janitor: exit_status=6\nregistry-janitor: status=failed\n',
      { errorCode: 'interrupted', restoreFailed: true, exitStatus: 6 },
    ],
    [
      'output cut off before the end',
      'registry-janitor: mode=offline\nregistry-janitor: bytes_before=4096\n',
      { status: null, bytesBefore: 4096, bytesAfter: null, bytesFreed: null, exitStatus: null },
    ],
    [
      'unknown version and size',
      'registry-janitor: version=unknown\nregistry-janitor: bytes_before=unknown\nregistry-janitor: status=ok\n',
      { registryVersion: null, bytesBefore: null },
    ],
    [
      'a v3 run with --delete-untagged',
      'registry-janitor: version=3.0.0\r\nregistry-janitor: delete_untagged=1\r\n' +
        'registry-janitor: summary=10 blobs marked, 0 blobs and 4 manifests eligible for deletion\r\n',
      {
        registryVersion: '3.0.0',
        deleteUntagged: true,
        blobsMarked: 10,
        blobsEligible: 0,
        manifestsEligible: 4,
      },
    ],
    [
      'no script output at all',
      'sh: 1: docker: not found\n',
      { status: null, modeUsed: null, tail: [], errors: [] },
    ],
  ])('reads %s', (_name, stdout, expected) => {
    expect(parseGcOutput(stdout)).toMatchObject(expected);
  });
});

class FakeRunner implements CommandRunner {
  public sent: Readonly<Record<string, string>>[] = [];
  public constructor(private readonly result: CommandResult | Error) {}
  public run(parameters: Readonly<Record<string, string>>): Promise<CommandResult> {
    this.sent.push(parameters);
    return this.result instanceof Error ? Promise.reject(this.result) : Promise.resolve(this.result);
  }
}

describe('runGc', () => {
  it('runs the script for the options and returns the summary', async () => {
    const runner = new FakeRunner({
      status: 'Success',
      exitCode: 0,
      stdout: OK_OUTPUT,
      stderr: '',
      commandId: 'c-1',
    });
    const result = await runGc(runner, { containerName: 'reg', mode: 'offline', timeoutSeconds: 60 });
    expect(runner.sent[0]).toMatchObject({ containerName: 'reg', mode: 'offline' });
    expect(result).toMatchObject({
      status: 'Success',
      commandId: 'c-1',
      summary: { blobsEligible: 3, bytesFreed: 524288 },
    });
  });

  it('hands back a command that is still running', async () => {
    const runner = new FakeRunner({
      status: 'InProgress',
      exitCode: null,
      stdout: '',
      stderr: '',
      commandId: 'c-2',
    });
    expect(await runGc(runner)).toEqual({ status: 'InProgress', commandId: 'c-2' });
  });

  it.each<[string, CommandResult, RegExp[]]>([
    [
      'a failure with its reason, tail and log',
      {
        status: 'Failed',
        exitCode: 5,
        stderr: '',
        stdout:
          'registry-janitor: log=/var/log/rj/gc.log\nregistry-janitor: tail=failed to garbage collect: boom\n' +
          'registry-janitor: error_code=gc-failed\nregistry-janitor: error=garbage-collect failed (exit 1)\n' +
          'registry-janitor: status=failed\n',
      },
      [
        /failed on the registry host \(exit 5, gc-failed\): garbage-collect failed \(exit 1\)/,
        / {2}failed to garbage collect: boom/,
        /full log on the host: \/var\/log\/rj\/gc.log/,
      ],
    ],
    [
      'a registry left down',
      {
        status: 'Failed',
        exitCode: 6,
        stderr: '',
        stdout:
          'registry-janitor: error_code=gc-failed\nregistry-janitor: error=gc broke\n' +
          'registry-janitor: error_code=restore-failed\nregistry-janitor: error=could not start r again\n',
      },
      [/gc broke/, /AND THE REGISTRY IS DOWN: could not start r again/],
    ],
    [
      'a timeout',
      { status: 'TimedOut', exitCode: null, stdout: '', stderr: '' },
      [/did not finish within 30 s/, /Raise the timeout/],
    ],
    ['a cancel', { status: 'Cancelled', exitCode: null, stdout: '', stderr: '' }, [/was cancelled/]],
    [
      'a shell error with no script output',
      { status: 'Failed', exitCode: 127, stdout: '', stderr: 'sh: 1: /bin/nope: not found\n' },
      [/exit 127\): sh: 1: \/bin\/nope: not found/],
    ],
  ])('throws a GcCommandError for %s', async (_name, result, messages) => {
    const error = await runGc(new FakeRunner(result), { timeoutSeconds: 30 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GcCommandError);
    expect(error).toBeInstanceOf(GcError);
    const gcError = error as GcCommandError;
    expect(gcError.status).toBe(result.status);
    for (const message of messages) expect(gcError.message).toMatch(message);
  });

  it('wraps a runner that cannot run the command', async () => {
    const cause = new Error('SSM: InvalidInstanceId');
    const error = await runGc(new FakeRunner(cause)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GcError);
    expect((error as GcError).message).toMatch(
      /could not run garbage-collect on the registry host: SSM: InvalidInstanceId/,
    );
    expect((error as GcError).cause).toBe(cause);
  });

  it('refuses bad options before running anything', async () => {
    const runner = new FakeRunner(new Error('not reached'));
    await expect(runGc(runner, { containerName: 'a b' })).rejects.toThrow(ConfigError);
    expect(runner.sent).toEqual([]);
  });
});

// A fake docker CLI: containers are directories under $SHIM_STATE/c; every call is appended to $SHIM_STATE/calls.
// Templates are rendered by the test's one renderer (startTemplateServer in test/support/go-template.js).
const DOCKER_SHIM = String.raw`#!/bin/sh
S=$SHIM_STATE
render() {
  r=$S/render.$$
  mkdir "$r" && mkfifo "$r/out" || exit 1
  printf '%s' "$1" >"$r/template"
  printf '%s' "$2" >"$r/file"
  if [ $# -gt 2 ]; then printf '%s' "$3" >"$r/running"; fi
  echo "$r" >"$GO_TEMPLATE_REQUESTS"
  { IFS= read -r rc; if [ "$rc" = 0 ]; then cat; else cat >&2; fi; } <"$r/out"
  rm -rf "$r"
  return "$rc"
}
# One line per call: a newline in an argument is written as \n.
{ for a in "$@"; do printf '[%s]' "$a"; done | awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'; echo; } >>"$S/calls"
gc() {
  if [ -e "$S/gc-block" ]; then
    : >"$S/gc-started"
    while [ -e "$S/gc-block" ]; do sleep 0.05; done
  fi
  cat "$S/gc-output"
  rc=$(cat "$S/gc-exit")
  case " $* " in *" --dry-run "*) ;; *) if [ "$rc" = 0 ]; then echo 40 >"$S/kib"; fi ;; esac
  return "$rc"
}
verb=$1
shift
case $verb in
  inspect)
    fmt=
    while [ $# -gt 1 ]; do
      case $1 in --type) shift 2 ;; -f) fmt=$2; shift 2 ;; *) break ;; esac
    done
    d=$S/c/$1
    if [ ! -d "$d" ]; then echo "Error: No such container: $1" >&2; exit 1; fi
    case $fmt in
      '') echo '[{}]' ;;
      '{{.State.Running}}') cat "$d/running" ;;
      # Any other template is rendered over the container's inspect JSON, as the docker CLI does.
      *) render "$fmt" "$d/inspect.json" "$(cat "$d/running")" ;;
    esac ;;
  image) render "$3" "$S/image.json" ;;
  exec)
    name=$1
    shift
    if [ "$(cat "$S/c/$name/running" 2>/dev/null)" != true ]; then echo "Error: $name is not running" >&2; exit 1; fi
    # The engine refusing the first exec after a start (seen on podman).
    if [ "$1" = du ] && [ -e "$S/c/$name/just-started" ]; then
      rm "$S/c/$name/just-started"
      echo "Error: OCI runtime exec failed: container is restarting" >&2
      exit 126
    fi
    case $1 in
      registry) if [ "$2" = --version ]; then cat "$S/version"; else gc "$@"; fi ;;
      du) printf '%s\t%s\n' "$(cat "$S/kib")" "$3" ;;
      ls) if [ -e "$S/no-config" ]; then echo "ls: $2: No such file or directory" >&2; exit 1; fi; echo "$2" ;;
    esac ;;
  create)
    name=
    label_file=
    labels=
    prev=
    for a in "$@"; do
      if [ "$prev" = --name ]; then name=$a; fi
      if [ "$prev" = --env-file ]; then env_file=$a; fi
      if [ "$prev" = --label-file ]; then label_file=$a; fi
      # The script's own labels (plain words): enough JSON for the fake's inspect.
      if [ "$prev" = --label ]; then labels="$labels,$(printf '%s' "$a" | sed 's/^\([^=]*\)=\(.*\)$/"\1":"\2"/')"; fi
      prev=$a
    done
    if [ -e "$S/squat" ]; then
      # Someone else takes the helper's name just before the script does.
      mkdir -p "$S/c/$name"
      echo '{"Config":{"Labels":{"owner":"someone else"}}}' >"$S/c/$name/inspect.json"
      echo true >"$S/c/$name/running"
    fi
    if [ -d "$S/c/$name" ]; then echo "Error: the container name $name is already in use" >&2; exit 1; fi
    if [ -e "$S/fail-create" ]; then echo "Error: create failed" >&2; exit 1; fi
    mkdir -p "$S/c/$name"
    printf '{"Config":{"Labels":{%s}}}\n' "$(printf '%s' "$labels" | cut -c 2-)" >"$S/c/$name/inspect.json"
    cp "$env_file" "$S/created-env"
    if [ -n "$label_file" ]; then cp "$label_file" "$S/created-labels"; fi
    echo false >"$S/c/$name/running"
    echo 0123456789ab ;;
  start)
    if [ "$1" = -a ]; then
      echo true >"$S/c/$2/running"
      gc
      rc=$?
      echo false >"$S/c/$2/running"
      exit "$rc"
    fi
    if [ -e "$S/fail-start-$1" ]; then echo "Error: cannot listen on the TCP port: address already in use" >&2; exit 1; fi
    if [ ! -d "$S/c/$1" ]; then echo "Error: No such container: $1" >&2; exit 1; fi
    echo true >"$S/c/$1/running"
    if [ -e "$S/du-flaky" ]; then : >"$S/c/$1/just-started"; fi
    echo "$1" ;;
  stop) echo false >"$S/c/$1/running"; echo "$1" ;;
  restart)
    echo true >"$S/c/$1/running"
    if [ -e "$S/du-flaky" ]; then : >"$S/c/$1/just-started"; fi
    echo "$1" ;;
  rm) if [ "$1" = -f ]; then shift; fi; rm -rf "$S/c/$1"; echo "$1" ;;
  logs) echo 'configuration error' ;;
  network) exit 0 ;;
  *) echo "shim: unexpected docker $verb" >&2; exit 1 ;;
esac
`;

let templates: ReturnType<typeof startTemplateServer>;
let templatesDir: string;
beforeAll(async () => {
  templatesDir = await mkdtemp(join(tmpdir(), 'rj-gc-templates-'));
  templates = startTemplateServer(templatesDir);
});
afterAll(async () => {
  templates.close();
  await rm(templatesDir, { recursive: true, force: true });
});

const GC_OUTPUT_28 = `app
app: marking manifest sha256:aaa
app: marking blob sha256:bbb

2 blobs marked, 3 blobs and 0 manifests eligible for deletion
blob eligible for deletion: sha256:ccc
`;

interface ShimSetup {
  readonly version?: string;
  readonly cmd?: string;
  readonly running?: boolean;
  readonly exists?: boolean;
  readonly gcExit?: number;
  readonly gcOutput?: string;
  readonly networks?: string;
  readonly failStartStandin?: boolean;
  readonly failCreate?: boolean;
  readonly failStartOriginal?: boolean;
  readonly noConfig?: boolean;
  readonly leftoverHelper?: boolean;
  /** The leftover helper carries no janitor label: someone else's container with the helper's name. */
  readonly foreignLeftover?: boolean;
  /** Someone else creates a container with the helper's name just before the script creates its own. */
  readonly squat?: boolean;
  /** The first `du` exec after each start or restart fails, as the engine sometimes does. */
  readonly duFlaky?: boolean;
  readonly blockGc?: boolean;
  /** Changes to the registry container's `docker inspect` document. */
  readonly inspect?: (doc: InspectDoc) => void;
}

interface InspectDoc {
  Image: string;
  Config: {
    User: string;
    Cmd: string[];
    Entrypoint: string[] | null;
    Env: string[];
    Labels: Record<string, string>;
  };
  HostConfig: {
    NetworkMode: string;
    PublishAllPorts: boolean;
    PortBindings: Record<string, { HostIp: string; HostPort: string }[] | null>;
  };
  NetworkSettings: { Networks: Record<string, { Aliases: string[] | null }> };
}

/** The registry container as `docker inspect` shows it; networks as lines of `name alias…`. */
function inspectDoc(cmd: string, networks: string): InspectDoc {
  return {
    Image: 'sha256:feed',
    Config: {
      User: '',
      Cmd: cmd.split('\n').filter((l) => l !== ''),
      Entrypoint: ['/entrypoint.sh'],
      Env: [
        'PATH=/bin',
        'REGISTRY_STORAGE_DELETE_ENABLED=true',
        'REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled":false}',
      ],
      Labels: { 'com.docker.compose.project': 'x', 'traefik.enable': 'true' },
    },
    HostConfig: {
      NetworkMode: 'bridge',
      PublishAllPorts: false,
      PortBindings: { '5000/tcp': [{ HostIp: '127.0.0.1', HostPort: '5000' }] },
    },
    NetworkSettings: {
      Networks: Object.fromEntries(
        networks
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => {
            const [name, ...aliases] = l.split(' ');
            return [name!, { Aliases: aliases.length > 0 ? aliases : null }];
          }),
      ),
    },
  };
}

interface ShimRun {
  readonly result: CommandResult;
  readonly summary: ReturnType<typeof parseGcOutput>;
  /** Every state-changing call, in order, e.g. `stop reg`, `gc in reg-janitor-gc: --dry-run /etc/…`. */
  readonly actions: string[];
  readonly calls: string[][];
  readonly running: (name: string) => Promise<string | undefined>;
}

/** One fake host: its own state, fake docker, logs and lock, so runs can go side by side. */
interface Shim {
  readonly dir: string;
  readonly state: string;
  /** Its PATH directory, holding the fake docker. */
  readonly bin: string;
  prepare(setup: ShimSetup): Promise<void>;
  runnerEnv(): Record<string, string>;
  gcOptions(options: GcOptions): GcOptions;
  collect(result: CommandResult): Promise<ShimRun>;
  runShim(setup: ShimSetup, options: GcOptions, shell?: string): Promise<ShimRun>;
  dispose(): Promise<void>;
}

async function createShim(): Promise<Shim> {
  const dir = await mkdtemp(join(tmpdir(), 'rj-gc-shim-'));
  const state = join(dir, 'state');
  const bin = join(dir, 'bin');
  await mkdir(join(state, 'c'), { recursive: true });
  await mkdir(bin);
  await writeFile(join(bin, 'docker'), DOCKER_SHIM);
  await chmod(join(bin, 'docker'), 0o755);

  async function prepare(setup: ShimSetup): Promise<void> {
    await writeFile(
      join(state, 'version'),
      setup.version ?? 'registry github.com/docker/distribution v2.8.3\n',
    );
    await writeFile(join(state, 'kib'), '100\n');
    await writeFile(join(state, 'gc-exit'), `${setup.gcExit ?? 0}\n`);
    await writeFile(join(state, 'gc-output'), setup.gcOutput ?? GC_OUTPUT_28);
    if (setup.exists !== false) {
      await mkdir(join(state, 'c', 'reg'), { recursive: true });
      await writeFile(join(state, 'c', 'reg', 'running'), setup.running === false ? 'false\n' : 'true\n');
      const doc = inspectDoc(setup.cmd ?? '/etc/docker/registry/config.yml\n', setup.networks ?? 'bridge\n');
      setup.inspect?.(doc);
      await writeFile(join(state, 'c', 'reg', 'inspect.json'), JSON.stringify(doc));
    }
    await writeFile(
      join(state, 'image.json'),
      JSON.stringify({ Config: { Entrypoint: ['/entrypoint.sh'] } }),
    );
    if (setup.duFlaky) await writeFile(join(state, 'du-flaky'), '');
    if (setup.squat) await writeFile(join(state, 'squat'), '');
    if (setup.failStartStandin) await writeFile(join(state, 'fail-start-reg-janitor-gc'), '');
    if (setup.failStartOriginal) await writeFile(join(state, 'fail-start-reg'), '');
    if (setup.failCreate) await writeFile(join(state, 'fail-create'), '');
    if (setup.noConfig) await writeFile(join(state, 'no-config'), '');
    if (setup.blockGc) await writeFile(join(state, 'gc-block'), '');
    if (setup.leftoverHelper) {
      await mkdir(join(state, 'c', 'reg-janitor-gc'));
      await writeFile(join(state, 'c', 'reg-janitor-gc', 'running'), 'true\n');
      const labels = setup.foreignLeftover
        ? { owner: 'someone else' }
        : { 'registry-janitor.role': 'standin', 'registry-janitor.container': 'reg' };
      await writeFile(
        join(state, 'c', 'reg-janitor-gc', 'inspect.json'),
        JSON.stringify({ Config: { Labels: labels } }),
      );
      if (setup.exists !== false && !setup.foreignLeftover) {
        await writeFile(join(state, 'c', 'reg', 'running'), 'false\n');
      }
    }
  }

  function runnerEnv(): Record<string, string> {
    return {
      SHIM_STATE: state,
      GO_TEMPLATE_REQUESTS: templates.requests,
      PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`,
    };
  }

  function gcOptions(options: GcOptions): GcOptions {
    return { containerName: 'reg', logDir: join(dir, 'logs'), lockPath: join(dir, 'gc.lock'), ...options };
  }

  async function collect(result: CommandResult): Promise<ShimRun> {
    const raw = existsSync(join(state, 'calls')) ? await readFile(join(state, 'calls'), 'utf8') : '';
    const calls = raw
      .split('\n')
      .filter((l) => l !== '')
      .map((l) =>
        l
          .slice(1, -1)
          .split('][')
          .map((a) => a.replace(/\\n/g, '\n')),
      );
    const actions: string[] = [];
    for (const call of calls) {
      const [verb, ...args] = call;
      if (verb === 'exec' && args.includes('garbage-collect')) {
        actions.push(`gc in ${args[0]}: ${args.slice(args.indexOf('garbage-collect') + 1).join(' ')}`);
      } else if (verb === 'start' && args[0] === '-a') {
        actions.push(`gc in ${args[1]} (start -a)`);
      } else if (verb === 'create') {
        const role = args.find((a) => a.startsWith('registry-janitor.role='))?.split('=')[1];
        actions.push(`create ${args[args.indexOf('--name') + 1]} (${role})`);
      } else if (verb === 'start' || verb === 'stop' || verb === 'restart' || verb === 'rm') {
        actions.push(`${verb} ${args.filter((a) => a !== '-f').join(' ')}`);
      }
    }
    return {
      result,
      summary: parseGcOutput(result.stdout),
      actions,
      calls,
      running: async (name) =>
        existsSync(join(state, 'c', name, 'running'))
          ? (await readFile(join(state, 'c', name, 'running'), 'utf8')).trim()
          : undefined,
    };
  }

  async function runShim(setup: ShimSetup, options: GcOptions, shell = 'dash'): Promise<ShimRun> {
    await prepare(setup);
    const runner = new LocalCommandRunner({ shell, env: runnerEnv() });
    return collect(await runner.run(gcParameters(gcOptions(options))));
  }

  return {
    dir,
    state,
    bin,
    prepare,
    runnerEnv,
    gcOptions,
    collect,
    runShim,
    dispose: async () => {
      await rm(join(state, 'gc-block'), { force: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// Each test gets its own fake host; the runs spend most of their time in forks and the script's own waits
// (the stand-in's start-up second, the guardian's poll), so they go side by side.
const shimIt = it.extend<{ shim: Shim }>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads the fixtures a test uses from this pattern
  shim: async ({}, use) => {
    const shim = await createShim();
    await use(shim);
    await shim.dispose();
  },
});

describe.concurrent('the GC script under dash against a fake docker', () => {
  const MODES: [string, GcOptions, string[]][] = [
    [
      'readonly',
      { mode: 'readonly' },
      [
        'create reg-janitor-gc (standin)',
        'stop reg',
        'start reg-janitor-gc',
        'gc in reg-janitor-gc: /etc/docker/registry/config.yml',
        'rm reg-janitor-gc',
        'start reg',
      ],
    ],
    [
      'offline',
      { mode: 'offline' },
      [
        'stop reg',
        'create reg-janitor-gc (oneoff)',
        'gc in reg-janitor-gc (start -a)',
        'rm reg-janitor-gc',
        'start reg',
      ],
    ],
    ['online', { mode: 'online' }, ['gc in reg: /etc/docker/registry/config.yml', 'restart reg']],
    [
      'a dry run (any mode)',
      { mode: 'readonly', dryRun: true },
      ['gc in reg: --dry-run /etc/docker/registry/config.yml'],
    ],
  ];
  // bash stands for Amazon Linux, whose /bin/sh it is.
  const RUNS = [
    ...MODES.map(([name, o, a]) => [name, 'dash', o, a] as const),
    ...MODES.slice(0, 2).map(([name, o, a]) => [name, 'bash', o, a] as const),
  ];
  shimIt.for(RUNS)(
    '%s under %s: stops, collects and brings the registry back in order',
    async ([_name, shell, options, actions], { shim }) => {
      const run = await shim.runShim({}, options, shell);
      expect(run.result.stderr).toBe('');
      expect(run.result.status).toBe('Success');
      expect(run.actions).toEqual(actions);
      expect(run.summary).toMatchObject({
        status: 'ok',
        modeUsed: options.dryRun ? 'online' : options.mode,
        blobsMarked: 2,
        blobsEligible: 3,
        manifestsEligible: 0,
        registryVersion: '2.8.3',
        bytesBefore: 102400,
        bytesAfter: options.dryRun ? 102400 : 40960,
      });
      expect(await run.running('reg')).toBe('true');
      expect(await run.running('reg-janitor-gc')).toBeUndefined();
      // The full output stays on the host; only its tail comes back.
      const log = await readFile(run.summary.logFile!, 'utf8');
      expect(log).toContain(GC_OUTPUT_28);
      expect(run.summary.tail).toEqual(GC_OUTPUT_28.trimEnd().split('\n'));
    },
  );

  shimIt(
    'gives the stand-in the original environment, ports, network and command, read-only',
    async ({ shim }) => {
      const run = await shim.runShim({}, { mode: 'readonly' });
      const create = run.calls.find((c) => c[0] === 'create')!;
      // The shim kept copies of the files the stand-in was created with.
      expect(await readFile(join(shim.state, 'created-env'), 'utf8')).toBe(
        'PATH=/bin\nREGISTRY_STORAGE_DELETE_ENABLED=true\n',
      );
      expect(await readFile(join(shim.state, 'created-labels'), 'utf8')).toBe('traefik.enable=true\n');
      expect(create).toEqual(
        expect.arrayContaining([
          '--volumes-from',
          'reg',
          '-p',
          '127.0.0.1:5000:5000/tcp',
          '--network=bridge',
        ]),
      );
      expect(create.slice(-2)).toEqual(['sha256:feed', '/etc/docker/registry/config.yml']);
      expect(create[create.indexOf('-e') + 1]).toBe('REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled":true}');
      expect(run.calls.some((c) => c.includes('--network-alias'))).toBe(false);
    },
  );

  shimIt('keeps the registry reachable under its name and aliases on a user network', async ({ shim }) => {
    const run = await shim.runShim(
      { networks: 'backend reg-alias abc123\nfrontend web\n' },
      { mode: 'readonly' },
    );
    expect(run.result.status).toBe('Success');
    const create = run.calls.find((c) => c[0] === 'create')!;
    expect(create.join(' ')).toContain(
      '--network=backend --network-alias=reg --network-alias=reg-alias --network-alias=abc123',
    );
    expect(run.calls).toContainEqual([
      'network',
      'connect',
      '--alias=reg',
      '--alias=web',
      'frontend',
      'reg-janitor-gc',
    ]);
  });

  shimIt.for<[string, ShimSetup, GcOptions, string, string[]]>([
    [
      'v3: passes --delete-untagged and uses the v3 config path',
      { version: 'registry github.com/distribution/distribution/v3 v3.0.0\n', cmd: 'serve\n' },
      { mode: 'online', deleteUntagged: true },
      '3.0.0',
      ['gc in reg: --delete-untagged /etc/distribution/config.yml', 'restart reg'],
    ],
    [
      'the config file the container was started with',
      { cmd: 'serve\n/srv/registry/conf.yaml\n' },
      { mode: 'online' },
      '2.8.3',
      ['gc in reg: /srv/registry/conf.yaml', 'restart reg'],
    ],
    [
      'an explicit config path with spaces and quotes',
      {},
      { mode: 'online', configPath: "/etc/my reg/it's.yml" },
      '2.8.3',
      ["gc in reg: /etc/my reg/it's.yml", 'restart reg'],
    ],
  ])('%s', async ([_name, setup, options, version, actions], { shim }) => {
    const run = await shim.runShim(setup, options);
    expect(run.result.status).toBe('Success');
    expect(run.summary.registryVersion).toBe(version);
    expect(run.actions).toEqual(actions);
  });

  shimIt.for<[string, ShimSetup, GcOptions, number, string, RegExp]>([
    ['a missing container', { exists: false }, {}, 4, 'container-missing', /there is no container named reg/],
    [
      'a stopped container',
      { running: false },
      {},
      4,
      'container-not-running',
      /reg is not running \(state: exited\); start it/,
    ],
    [
      '--delete-untagged on 2.8',
      {},
      { deleteUntagged: true },
      2,
      'refused',
      /refusing --delete-untagged on distribution 2\.8\.3: .*multi-arch/,
    ],
    [
      '--delete-untagged on an unknown version',
      { version: 'sh: registry: not found\n' },
      { deleteUntagged: true },
      2,
      'refused',
      /could not be read/,
    ],
    [
      'a config path that does not exist',
      { noConfig: true },
      { configPath: '/etc/nope.yml' },
      2,
      'config-missing',
      /\/etc\/nope.yml does not exist in container reg/,
    ],
  ])(
    'refuses %s before touching the registry',
    async ([_name, setup, options, exit, code, message], { shim }) => {
      const run = await shim.runShim(setup, options);
      expect(run.result.status).toBe('Failed');
      expect(run.result.exitCode).toBe(exit);
      expect(run.summary).toMatchObject({ status: 'failed', errorCode: code, exitStatus: exit });
      expect(run.summary.error).toMatch(message);
      expect(run.result.stderr).toMatch(message);
      expect(run.actions).toEqual([]);
    },
  );

  shimIt('falls back to offline when the stand-in cannot start, and says so', async ({ shim }) => {
    const run = await shim.runShim({ failStartStandin: true }, { mode: 'readonly' });
    expect(run.result.status).toBe('Success');
    expect(run.actions).toEqual([
      'create reg-janitor-gc (standin)',
      'stop reg',
      'start reg-janitor-gc',
      'rm reg-janitor-gc',
      'create reg-janitor-gc (oneoff)',
      'gc in reg-janitor-gc (start -a)',
      'rm reg-janitor-gc',
      'start reg',
    ]);
    expect(run.summary).toMatchObject({
      modeRequested: 'readonly',
      modeUsed: 'offline',
      fellBack: true,
      blobsEligible: 3,
    });
    expect(run.summary.warnings.join('\n')).toMatch(
      /stand-in could not start \(.*address already in use\); fell back to offline/,
    );
  });

  shimIt('falls back to offline when the stand-in cannot even be created', async ({ shim }) => {
    await writeFile(join(shim.state, 'fail-create'), '');
    const run = await shim.runShim({}, { mode: 'readonly' });
    // Creating the one-off fails the same way, so this ends as a failure, with the registry started again.
    expect(run.summary.warnings.join('\n')).toMatch(/stand-in could not start \(docker create failed\)/);
    expect(run.summary.errorCode).toBe('helper-failed');
    expect(run.actions.slice(-1)).toEqual(['start reg']);
    expect(await run.running('reg')).toBe('true');
  });

  shimIt.for(['readonly', 'offline', 'online'] as const)(
    'brings the registry back when garbage-collect fails (%s)',
    async (mode, { shim }) => {
      const run = await shim.runShim(
        { gcExit: 1, gcOutput: 'app\nfailed to garbage collect: failed to mark: boom\n' },
        { mode },
      );
      expect(run.result.exitCode).toBe(5);
      expect(run.summary).toMatchObject({ status: 'failed', errorCode: 'gc-failed', modeUsed: mode });
      expect(run.summary.error).toMatch(
        /garbage-collect failed \(exit 1, mode \w+\): failed to garbage collect: failed to mark: boom; the full output is in \//,
      );
      expect(run.summary.tail).toContain('failed to garbage collect: failed to mark: boom');
      expect(run.actions.slice(-1)).toEqual([mode === 'online' ? 'restart reg' : 'start reg']);
      expect(await run.running('reg')).toBe('true');
    },
  );

  shimIt('treats a registry without repositories as nothing to collect', async ({ shim }) => {
    const run = await shim.runShim(
      {
        gcExit: 1,
        gcOutput:
          'failed to garbage collect: failed to mark: filesystem: Path not found: /docker/registry/v2/repositories\n',
      },
      { mode: 'offline' },
    );
    expect(run.result.status).toBe('Success');
    expect(run.summary).toMatchObject({ status: 'ok', blobsMarked: 0, blobsEligible: 0 });
    expect(run.summary.warnings.join()).toMatch(/no repositories under the storage root/);
  });

  shimIt('fails loudly when the registry cannot be started again', async ({ shim }) => {
    const run = await shim.runShim({ failStartOriginal: true }, { mode: 'offline' });
    expect(run.result.exitCode).toBe(6);
    expect(run.summary.restoreFailed).toBe(true);
    expect(run.summary.error).toMatch(/could not start reg again after garbage-collect; start it by hand/);
  });

  shimIt('cleans up after an interrupted run it finds', async ({ shim }) => {
    const run = await shim.runShim({ leftoverHelper: true }, { mode: 'online' });
    expect(run.result.status).toBe('Success');
    expect(run.actions.slice(0, 2)).toEqual(['rm reg-janitor-gc', 'start reg']);
    expect(run.summary.warnings).toEqual([
      'removed reg-janitor-gc, left behind by an interrupted run',
      'started reg again: an interrupted run had left it stopped',
    ]);
  });

  shimIt(
    'leaves a container that has the helper name but not the janitor label alone, and says so',
    async ({ shim }) => {
      const run = await shim.runShim({ leftoverHelper: true, foreignLeftover: true }, { mode: 'online' });
      expect(run.result.exitCode).toBe(4);
      expect(run.summary.errorCode).toBe('helper-foreign');
      expect(run.summary.error).toMatch(
        /a container named reg-janitor-gc exists, but it is not labelled registry-janitor.container=reg.*rename or remove it/,
      );
      expect(run.actions).toEqual([]);
      expect(await run.running('reg-janitor-gc')).toBe('true');
    },
  );

  shimIt('never removes a container that takes the helper name during the run', async ({ shim }) => {
    const run = await shim.runShim({ squat: true }, { mode: 'readonly' });
    expect(run.summary.errorCode).toBe('helper-failed');
    expect(run.actions.filter((a) => a.startsWith('rm '))).toEqual([]);
    expect(run.summary.warnings).toContain(
      "left reg-janitor-gc alone: it is not labelled registry-janitor.container=reg, so it is not the janitor's",
    );
    expect(await run.running('reg-janitor-gc')).toBe('true');
    expect(await run.running('reg')).toBe('true');
  });

  shimIt.for(['offline', 'online'] as const)(
    'measures the storage after a %s run even when the first exec after the start fails',
    async (mode, { shim }) => {
      const run = await shim.runShim({ duFlaky: true }, { mode });
      expect(run.result.status).toBe('Success');
      expect(run.summary).toMatchObject({ bytesBefore: 102400, bytesAfter: 40960, bytesFreed: 61440 });
      const du = run.calls.filter((c) => c[0] === 'exec' && c[2] === 'du');
      expect(du).toHaveLength(3);
      const log = await readFile(run.summary.logFile!, 'utf8');
      expect(log).toContain('container is restarting');
    },
  );

  describe('the lock', () => {
    async function lockRun(shim: Shim, lockPath: string): Promise<ShimRun> {
      return shim.runShim({}, { mode: 'online', lockPath });
    }
    function expectRefused(run: ShimRun, message: RegExp): void {
      expect(run.result.exitCode).toBe(2);
      expect(run.summary.errorCode).toBe('lock-file');
      expect(run.summary.error).toMatch(message);
      expect(run.summary.error).toMatch(/set lockPath to one/);
      expect(run.actions).toEqual([]);
    }

    shimIt('is created in a new 0700 directory', async ({ shim }) => {
      const lockPath = join(shim.dir, 'run', 'registry-janitor', 'gc.lock');
      const run = await lockRun(shim, lockPath);
      expect(run.result.status).toBe('Success');
      expect((await stat(join(shim.dir, 'run', 'registry-janitor'))).mode & 0o777).toBe(0o700);
      expect((await lstat(lockPath)).isFile()).toBe(true);
    });

    shimIt('refuses a lock file that is a symlink, and creates nothing where it points', async ({ shim }) => {
      await mkdir(join(shim.dir, 'locks'), { mode: 0o700 });
      await mkdir(join(shim.dir, 'elsewhere'));
      await symlink(join(shim.dir, 'elsewhere', 'planted'), join(shim.dir, 'locks', 'gc.lock'));
      const run = await lockRun(shim, join(shim.dir, 'locks', 'gc.lock'));
      expectRefused(run, /the lock file .*\/locks\/gc.lock is a symbolic link/);
      expect(existsSync(join(shim.dir, 'elsewhere', 'planted'))).toBe(false);
    });

    shimIt('refuses a lock directory that is a symlink', async ({ shim }) => {
      await mkdir(join(shim.dir, 'real'), { mode: 0o700 });
      await symlink(join(shim.dir, 'real'), join(shim.dir, 'locks'));
      const run = await lockRun(shim, join(shim.dir, 'locks', 'gc.lock'));
      expectRefused(run, /the lock directory .*\/locks is a symbolic link/);
      expect(existsSync(join(shim.dir, 'real', 'gc.lock'))).toBe(false);
    });

    shimIt.for([
      [0o755, 'drwxr-xr-x'],
      [0o777, 'drwxrwxrwx'],
      [0o1777, 'drwxrwxrwt'],
    ] as const)('refuses a lock directory with mode %o', async ([mode, shown], { shim }) => {
      await mkdir(join(shim.dir, 'locks'));
      await chmod(join(shim.dir, 'locks'), mode);
      const run = await lockRun(shim, join(shim.dir, 'locks', 'gc.lock'));
      expectRefused(
        run,
        new RegExp(`the lock directory .*/locks has mode ${shown}, not drwx------ \\(0700\\)`),
      );
      expect(existsSync(join(shim.dir, 'locks', 'gc.lock'))).toBe(false);
    });

    shimIt('refuses a lock directory that belongs to another user', async ({ shim }) => {
      await mkdir(join(shim.dir, 'locks'), { mode: 0o700 });
      let other: number;
      if (process.getuid?.() === 0) {
        other = 65534;
        await chown(join(shim.dir, 'locks'), other, other);
      } else {
        // Not root: the script is told it runs as another user, which makes the directory someone else's.
        other = process.getuid?.() ?? 0;
        await writeFile(join(shim.bin, 'id'), `#!/bin/sh\necho ${other + 1}\n`, { mode: 0o755 });
      }
      const run = await lockRun(shim, join(shim.dir, 'locks', 'gc.lock'));
      expectRefused(run, new RegExp(`the lock directory .*/locks belongs to uid ${other}, not to this user`));
    });
  });

  describe('container metadata', () => {
    const PWNED = (shim: Shim): string => join(shim.dir, 'pwned');
    /** Shell that would leave a file behind if anything ran it. */
    const payload = (shim: Shim): string =>
      `$(touch ${PWNED(shim)}-a) \`touch ${PWNED(shim)}-b\` '; touch ${PWNED(shim)}-c; '"`;

    shimIt(
      'passes hostile values to the stand-in as exactly the values they are, and runs none of them',
      async ({ shim }) => {
        const hostileEnv = `QUOTED=it's "${payload(shim)}" a|b \\ <&> é\u2028`;
        const run = await shim.runShim(
          {
            inspect: (doc) => {
              doc.Config.Env.push(hostileEnv);
              doc.Config.Labels.hostile = `v ${payload(shim)} | "q"`;
              // Would rewrite the ports of the old script's marker-split output.
              doc.Config.Labels.multi = 'a\n@@rj:ports@@\n1.2.3.4|9|9';
              doc.Config.Cmd = [`--flag=a\nb ${payload(shim)}`, '/etc/docker/registry/config.yml'];
              doc.NetworkSettings.Networks = { backend: { Aliases: [`x ${payload(shim)}`] } };
              doc.Config.User = '1000:1000';
            },
          },
          { mode: 'readonly' },
        );
        expect(run.result.status).toBe('Success');
        expect(await readFile(join(shim.state, 'created-env'), 'utf8')).toBe(
          `PATH=/bin\nREGISTRY_STORAGE_DELETE_ENABLED=true\n${hostileEnv}\n`,
        );
        expect(await readFile(join(shim.state, 'created-labels'), 'utf8')).toBe(
          `hostile=v ${payload(shim)} | "q"\ntraefik.enable=true\n`,
        );
        expect(run.summary.warnings).toContain(
          'label multi of reg is not given to the stand-in: a label file cannot carry its name or value',
        );
        const create = run.calls.find((c) => c[0] === 'create')!;
        expect(create).toEqual(
          expect.arrayContaining([
            '--user=1000:1000',
            '--network=backend',
            `--network-alias=x ${payload(shim)}`,
          ]),
        );
        expect(create.filter((a) => a.startsWith('-p'))).toEqual(['-p']);
        expect(create[create.indexOf('-p') + 1]).toBe('127.0.0.1:5000:5000/tcp');
        expect(create.slice(-3)).toEqual([
          'sha256:feed',
          `--flag=a\nb ${payload(shim)}`,
          '/etc/docker/registry/config.yml',
        ]);
        expect(
          existsSync(`${PWNED(shim)}-a`) || existsSync(`${PWNED(shim)}-b`) || existsSync(`${PWNED(shim)}-c`),
        ).toBe(false);
      },
    );

    shimIt.for<[string, (doc: InspectDoc) => void, string, RegExp]>([
      [
        'an environment value with a line break (the stand-in cannot be given it)',
        (doc) => doc.Config.Env.push('TLS_KEY=-----BEGIN KEY-----\n@@rj:state@@\nabc'),
        'refused',
        /the value of environment variable TLS_KEY, a line break cannot be given to the garbage-collect container.*use mode online/,
      ],
      [
        'a network name that is no name',
        (doc) =>
          (doc.NetworkSettings.Networks = { 'net\n@@rj:state@@\nhelper_created=1': { Aliases: null } }),
        'engine-error',
        /docker inspect reg gave the network name net\\0012@@rj:state@@\\0012helper_created=1 that this script will not pass on/,
      ],
      [
        'an image reference that is a flag',
        (doc) => (doc.Image = '--privileged'),
        'engine-error',
        /gave the image reference --privileged that this script will not pass on; nothing was changed/,
      ],
    ])('refuses %s before touching the registry', async ([_name, change, code, message], { shim }) => {
      const run = await shim.runShim({ inspect: change }, { mode: 'readonly' });
      expect(run.result.status).toBe('Failed');
      expect(run.summary.errorCode).toBe(code);
      expect(run.summary.error).toMatch(message);
      expect(run.actions).toEqual([]);
      expect(await run.running('reg')).toBe('true');
    });

    shimIt('gives the root guardian nothing from the container to run', async ({ shim }) => {
      // The old script split one free-text inspect into files by marker lines; this value wrote the state file the
      // guardian sources after a SIGKILL.
      const hostile = `X=1\n@@rj:state@@\ntouch ${PWNED(shim)}\nhelper_created=0`;
      await shim.prepare({ blockGc: true, inspect: (doc) => doc.Config.Env.push(hostile) });
      const script = join(shim.dir, 'gc.sh');
      await writeFile(script, readGcScript());
      const parameters = parameterEnvironment(gcParameters(shim.gcOptions({ mode: 'online', dryRun: true })));
      const child = spawn('dash', [script], {
        detached: true,
        stdio: 'ignore',
        env: { ...process.env, ...shim.runnerEnv(), ...parameters },
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await waitFor(() => existsSync(join(shim.state, 'gc-started')));
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
      const logs = join(shim.dir, 'logs');
      await waitFor(async () => {
        for (const f of await readdir(logs)) {
          if ((await readFile(join(logs, f), 'utf8')).includes('guardian: done')) return true;
        }
        return false;
      });
      expect(existsSync(PWNED(shim))).toBe(false);
      expect(await readFile(join(shim.state, 'c', 'reg', 'running'), 'utf8')).toBe('true\n');
    });
  });

  shimIt('says why when the log directory cannot be written', async ({ shim }) => {
    const run = await shim.runShim({}, { logDir: '/proc/registry-janitor-logs' });
    expect(run.result.exitCode).toBe(2);
    expect(run.summary.errorCode).toBe('log-dir');
    expect(run.actions).toEqual([]);
  });

  shimIt('brings the registry back on SIGTERM while garbage-collect runs', async ({ shim }) => {
    await shim.prepare({ blockGc: true });
    const script = join(shim.dir, 'gc.sh');
    await writeFile(script, readGcScript());
    const parameters = parameterEnvironment(gcParameters(shim.gcOptions({ mode: 'readonly' })));
    const child = spawn('dash', [script], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...shim.runnerEnv(), ...parameters },
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await waitFor(() => existsSync(join(shim.state, 'gc-started')));
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    const run = await shim.collect({ status: 'Failed', exitCode: 143, stdout, stderr: '' });
    expect(run.summary).toMatchObject({ status: 'failed', errorCode: 'interrupted', exitStatus: 143 });
    expect(run.actions.slice(-2)).toEqual(['rm reg-janitor-gc', 'start reg']);
    expect(await run.running('reg')).toBe('true');
  });

  shimIt(
    'brings the registry back through its guardian when the whole process group is SIGKILLed (SSM timeout)',
    async ({ shim }) => {
      await shim.prepare({ blockGc: true });
      const script = join(shim.dir, 'gc.sh');
      await writeFile(script, readGcScript());
      const parameters = parameterEnvironment(gcParameters(shim.gcOptions({ mode: 'offline' })));
      const child = spawn('dash', [script], {
        detached: true,
        stdio: 'ignore',
        env: { ...process.env, ...shim.runnerEnv(), ...parameters },
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await waitFor(() => existsSync(join(shim.state, 'gc-started')));
      expect(await readFile(join(shim.state, 'c', 'reg', 'running'), 'utf8')).toBe('false\n');
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
      await waitFor(
        async () => (await readFile(join(shim.state, 'c', 'reg', 'running'), 'utf8')) === 'true\n',
      );
      const run = await shim.collect({ status: 'Failed', exitCode: null, stdout: '', stderr: '' });
      expect(run.actions.slice(-2)).toEqual(['rm reg-janitor-gc', 'start reg']);
      // The guardian held the lock until it was done: the next run gets it.
      await rm(join(shim.state, 'gc-block'));
      const next = await shim.runShim({}, { mode: 'online' });
      expect(next.result.status).toBe('Success');
    },
  );

  shimIt('never lets two runs overlap on one host', async ({ shim }) => {
    await shim.prepare({ blockGc: true });
    const runner = new LocalCommandRunner({ shell: 'dash', env: shim.runnerEnv() });
    const first = runner.run(gcParameters(shim.gcOptions({ mode: 'online' })));
    await waitFor(() => existsSync(join(shim.state, 'gc-started')));
    const second = await runner.run(gcParameters(shim.gcOptions({ mode: 'online', lockWaitSeconds: 1 })));
    expect(second.exitCode).toBe(3);
    expect(parseGcOutput(second.stdout)).toMatchObject({ errorCode: 'lock-busy' });
    expect(parseGcOutput(second.stdout).error).toMatch(/another garbage-collect run holds .*gc\.lock/);
    await rm(join(shim.state, 'gc-block'));
    expect((await first).status).toBe('Success');
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
