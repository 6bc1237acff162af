// Starts a real distribution registry (Debian's `docker-registry`, or another binary with the same CLI such as
// distribution v3) on 127.0.0.1 with a temp storage dir, for integration tests, the demo and the benchmark. Each
// instance has its own port, storage and config.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, utimesSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPOSITORIES_PATH, REVISIONS_PATH } from '../core/history.ts';

export const REGISTRY_BINARY = process.env.DOCKER_REGISTRY_BIN ?? 'docker-registry';

export interface LocalRegistryOptions {
  /** The registry binary (`serve CONFIG`, `garbage-collect … CONFIG`); default REGISTRY_BINARY. */
  binary?: string;
  /** Storage root; a fresh temp dir by default (removed on stop). */
  storageDir?: string;
  /** `storage.delete.enabled` (default true). */
  deleteEnabled?: boolean;
  /** `storage.maintenance.readonly.enabled` (default false). */
  readOnly?: boolean;
  /** Extra top-level YAML appended to the config (e.g. an `auth:` section). */
  extraConfig?: string;
  /** Fixed port (default: a free one). */
  port?: number;
}

export interface LocalRegistry {
  readonly url: string;
  readonly port: number;
  readonly storageDir: string;
  readonly configPath: string;
  /** Stop the process (storage kept). */
  stop(): Promise<void>;
  /** Start it again after stop(), on the same port and storage. */
  start(): Promise<void>;
  /** Start again on the same port and storage (flushes the in-memory blob cache). */
  restart(): Promise<void>;
  /** `<binary> garbage-collect` on this registry's config; returns stdout. Stop the registry first for safety. */
  garbageCollect(args?: string[]): string;
  /** Stop and remove the temp storage (when we made it). */
  dispose(): Promise<void>;
  /** Bytes stored (du -sb of the storage root). */
  diskUsage(): number;
  /**
   * Make a manifest look pushed into `repository` at `when`: the registry's revision link's mtime is its push time
   * (what a storage listing reads), and a push of today cannot be made old any other way.
   */
  setPushedAt(repository: string, digest: string, when: Date): void;
}

export function registryBinaryAvailable(): boolean {
  return spawnSync(REGISTRY_BINARY, ['--version'], { stdio: 'ignore' }).status === 0;
}

export function assertRegistryBinary(): void {
  if (!registryBinaryAvailable()) {
    throw new Error(
      `"${REGISTRY_BINARY}" was not found. Install the distribution registry: apt-get install -y docker-registry ` +
        `(or set DOCKER_REGISTRY_BIN to its path).`,
    );
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startLocalRegistry(options: LocalRegistryOptions = {}): Promise<LocalRegistry> {
  const binary = options.binary ?? REGISTRY_BINARY;
  if (options.binary === undefined) assertRegistryBinary();
  const ownStorage = options.storageDir === undefined;
  const storageDir = options.storageDir ?? mkdtempSync(join(tmpdir(), 'rj-registry-'));
  mkdirSync(storageDir, { recursive: true });
  const confDir = mkdtempSync(join(tmpdir(), 'rj-registry-conf-'));
  const port = options.port ?? (await freePort());
  const configPath = join(confDir, 'config.yml');
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storageDir}`,
    '  cache:',
    '    blobdescriptor: inmemory',
    '  delete:',
    `    enabled: ${options.deleteEnabled ?? true}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    '    readonly:',
    `      enabled: ${options.readOnly ?? false}`,
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    options.extraConfig ?? '',
  ].join('\n');
  writeFileSync(configPath, config + '\n');

  let child: ChildProcess | undefined;
  let stderr = '';
  const url = `http://127.0.0.1:${port}`;

  const start = async (): Promise<void> => {
    stderr = '';
    const proc = spawn(binary, ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`${binary} exited (${proc.exitCode}): ${stderr}`);
      try {
        const res = await fetch(`${url}/v2/`);
        if (res.status === 200 || res.status === 401) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${binary} did not answer on ${url}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
    });
  };

  await start();
  return {
    url,
    port,
    storageDir,
    configPath,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
    garbageCollect: (args = []) => {
      const res = spawnSync(binary, ['garbage-collect', ...args, configPath], { encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`garbage-collect failed (${res.status}): ${res.stderr}`);
      return res.stdout;
    },
    dispose: async () => {
      await stop();
      if (ownStorage) rmSync(storageDir, { recursive: true, force: true });
      rmSync(confDir, { recursive: true, force: true });
    },
    diskUsage: () => {
      const res = spawnSync('du', ['-sb', storageDir], { encoding: 'utf8' });
      return Number.parseInt(res.stdout.split('\t')[0] ?? '0', 10);
    },
    setPushedAt: (repository, digest, when) => {
      const hex = digest.replace(/^sha256:/, '');
      const link = join(storageDir, REPOSITORIES_PATH, repository, REVISIONS_PATH, hex, 'link');
      utimesSync(link, when, when);
    },
  };
}
