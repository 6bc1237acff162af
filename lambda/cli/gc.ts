// `registry-janitor gc`: garbage-collect the registry container on this host (e.g. from cron), with the same
// script the Lambda sends over SSM.
import { LocalCommandRunner } from '../adapters/local-runner.ts';
import { ConfigError } from '../core/errors.ts';
import { runGc } from '../core/gc.ts';
import { DEFAULT_CONTAINER_NAME, DEFAULT_GC_MODE, GC_MODES, isGcMode } from '../core/contract.ts';
import { formatBytes } from '../core/report.ts';
import type { CliIo } from './io.ts';

export interface GcFlags {
  readonly container?: string;
  readonly mode?: string;
  readonly 'config-path'?: string;
  readonly 'delete-untagged'?: boolean;
  readonly json?: boolean;
}

export async function gcCommand(values: GcFlags, io: CliIo): Promise<number> {
  const mode = values.mode ?? DEFAULT_GC_MODE;
  if (!isGcMode(mode)) {
    throw new ConfigError(`--mode expects one of ${GC_MODES.join(', ')}, got "${mode}"`);
  }
  const result = await runGc(new LocalCommandRunner(), {
    containerName: values.container ?? DEFAULT_CONTAINER_NAME,
    mode,
    ...(values['config-path'] ? { configPath: values['config-path'] } : {}),
    ...(values['delete-untagged'] ? { deleteUntagged: true } : {}),
  });
  if (values.json) {
    io.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  }
  if (result.status !== 'Success') {
    io.stdout.write(
      `garbage-collect still running${result.commandId ? ` (command ${result.commandId})` : ''}\n`,
    );
    return 0;
  }
  const s = result.summary;
  io.stdout.write(
    `garbage-collect done in ${s.modeUsed ?? mode} mode${s.fellBack ? ' (read-only stand-in could not start; ran offline)' : ''}: ` +
      `${s.blobsEligible ?? '?'} blobs and ${s.manifestsEligible ?? '?'} manifests removed; ` +
      `storage ${s.bytesBefore === null ? '?' : formatBytes(s.bytesBefore)} → ${s.bytesAfter === null ? '?' : formatBytes(s.bytesAfter)}.\n` +
      (s.logFile ? `Full log: ${s.logFile}\n` : ''),
  );
  return 0;
}
