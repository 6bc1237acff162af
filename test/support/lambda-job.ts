// Shared by the Lambda job tests (unit and integration): the config they run with, and a logger and metrics sink
// that record what the job reported.
import { loadConfig, type JanitorConfig } from '../../lambda/config.ts';
import type { CommandRunner } from '../../lambda/core/ports.ts';
import type { JobLogger, JobMetrics } from '../../lambda/lambda-job.ts';

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
