// Shared by the Lambda job tests (unit and integration): the config they run with, and a logger and metrics sink
// that record what the job reported.
import { loadConfig, type JanitorConfig } from '../../lambda/config.ts';
import { HistoryError } from '../../lambda/core/errors.ts';
import type { HistorySource } from '../../lambda/core/history.ts';
import type { Revision } from '../../lambda/core/model.ts';
import type { CommandRunner } from '../../lambda/core/ports.ts';
import type { JobLogger, JobMetrics } from '../../lambda/lambda-job.ts';
import type { MemoryRegistry } from './memory-registry.ts';

export const INSTANCE = 'i-0123456789abcdef0';
export const POLICY = {
  rules: [
    { repositories: ['base/**'], protect: true },
    { repositories: ['team1/**', 'team2/**'], keep: { newest: 2 } },
  ],
};

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  attributes: Record<string, unknown>;
}

export function recorder() {
  const logs: LogLine[] = [];
  const metrics: { name: string; unit: string; value: number }[] = [];
  let published = 0;
  const line =
    (level: LogLine['level']) =>
    (message: string, ...attributes: Record<string, unknown>[]) =>
      logs.push({ level, message, attributes: Object.assign({}, ...attributes) as Record<string, unknown> });
  const logger: JobLogger = { info: line('info'), warn: line('warn'), error: line('error') };
  const sink: JobMetrics = {
    addMetric: (name, unit, value) => metrics.push({ name, unit, value }),
    publishStoredMetrics: () => {
      published += 1;
    },
  };
  return {
    logs,
    logger,
    metrics: sink,
    metric: (name: string) => metrics.filter((m) => m.name === name).map((m) => m.value),
    published: () => published,
  };
}

export function configFor(url: string, env: Record<string, string> = {}): JanitorConfig {
  return loadConfig({
    REGISTRY_URL: url,
    GC_INSTANCE_ID: INSTANCE,
    GC_DOCUMENT_NAME: 'Stack-GcDocument-AbC123',
    GC_CONTAINER_NAME: 'my-registry',
    GC_CONFIG_PATH: '/etc/distribution/config.yml',
    GC_MODE: 'offline',
    GC_TIMEOUT_SECONDS: '900',
    RETENTION_POLICY: JSON.stringify(POLICY),
    DRY_RUN: 'false',
    ...env,
  });
}

export const unusedRunner: CommandRunner = {
  run: () => Promise.reject(new Error('the job must hand the runner to runGc, not call it itself')),
};
export const context = { getRemainingTimeInMillis: () => 600_000, awsRequestId: 'req-1' };

/**
 * A storage listing of an in-memory registry, as the Lambda's history source would give it: every manifest of
 * every repository as a revision, pushed at `pushedAt[digest]` (else `otherwise`). `fail` makes the listing throw.
 */
export function memoryHistory(
  registry: MemoryRegistry,
  pushedAt: Readonly<Record<string, string>>,
  options: { otherwise?: string; fail?: string } = {},
): HistorySource {
  return {
    source: 'memory:/var/lib/registry',
    list: () => {
      if (options.fail !== undefined) return Promise.reject(new HistoryError(options.fail));
      const repositories = new Map<string, Revision[]>();
      for (const name of registry.repositoryNames()) {
        repositories.set(
          name,
          registry.manifestsOf(name).map((digest) => ({
            digest,
            pushedAt: pushedAt[digest] ?? options.otherwise ?? '2026-01-01T00:00:00.000Z',
          })),
        );
      }
      return Promise.resolve({ source: 'memory:/var/lib/registry', repositories });
    },
  };
}
