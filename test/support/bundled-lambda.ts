// The stack's bundled Lambda, run as the platform would: `cdk synth` of the app with context, the function's bundle
// and environment read from the cloud assembly (its SSM document's Ref becomes a name, with the document's
// content for the SSM stand-in), and one invocation of the bundled handler in a Node child process with an event.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3_CREDENTIALS } from './local-s3.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BUNDLED_STACK = 'RegistryJanitor';

const INVOKER = `import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [entry, eventPath, out, requestId] = process.argv.slice(2);
const deadline = Date.now() + 15 * 60 * 1000;
const context = { awsRequestId: requestId, getRemainingTimeInMillis: () => deadline - Date.now() };
let outcome;
try {
  const { handler } = await import(pathToFileURL(entry).href);
  outcome = { ok: true, result: await handler(JSON.parse(readFileSync(eventPath, 'utf8')), context) };
} catch (err) {
  outcome = { ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) };
}
writeFileSync(out, JSON.stringify(outcome));
process.exit(outcome.ok ? 0 : 1);
`;

export function runProcess(
  program: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string },
) {
  const child = spawn(program, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface BundledFunction {
  readonly entry: string;
  /** The function's environment as synthesized: plain values, and the SSM document's name for its Ref. */
  readonly environment: Record<string, string>;
  /** The SSM documents it names, by name, with their content. */
  readonly documents: Record<string, unknown>;
}

/** `cdk synth` of the app into `outdir` with `-c key=value` for each of `context`; throws with cdk's output. */
export async function synthApp(outdir: string, context: Readonly<Record<string, string>>): Promise<void> {
  const args = ['cdk', 'synth', '--no-notices', '--no-version-reporting', '--quiet', '--output', outdir];
  for (const [key, value] of Object.entries(context)) args.push('-c', `${key}=${value}`);
  const synth = await runProcess('npx', args, {
    cwd: REPO_ROOT,
    env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' },
  });
  if (synth.code !== 0) throw new Error(`cdk synth failed:\n${synth.stderr}\n${synth.stdout}`);
}

/** The bundled handler and its environment from the cloud assembly; the document Ref becomes a name. */
export function findBundledFunction(outdir: string): BundledFunction {
  const template = JSON.parse(readFileSync(join(outdir, `${BUNDLED_STACK}.template.json`), 'utf8')) as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  const fn = Object.values(template.Resources).find(
    (r) => r.Type === 'AWS::Lambda::Function' && JSON.stringify(r.Properties).includes('REGISTRY_URL'),
  )!.Properties as { Code: { S3Key: string }; Environment: { Variables: Record<string, unknown> } };
  const assets = JSON.parse(readFileSync(join(outdir, `${BUNDLED_STACK}.assets.json`), 'utf8')) as {
    files: Record<string, { source: { path: string } }>;
  };
  const dir = join(outdir, assets.files[fn.Code.S3Key.replace(/\.zip$/, '')]!.source.path);
  const environment: Record<string, string> = {};
  const documents: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fn.Environment.Variables)) {
    if (typeof v === 'string') environment[k] = v;
    const ref = (v as { Ref?: unknown } | null)?.Ref;
    const resource = typeof ref === 'string' ? template.Resources[ref] : undefined;
    if (resource?.Type === 'AWS::SSM::Document') {
      environment[k] = `${BUNDLED_STACK}-${String(ref)}-E2E`;
      documents[environment[k]] = resource.Properties.Content;
    }
  }
  return { entry: join(dir, 'index.mjs'), environment, documents };
}

export type InvokeOutcome<T> = ({ ok: true; result: T } | { ok: false; error: string }) & {
  /** What the handler wrote: Powertools' log lines and EMF metrics, one JSON object a line. */
  readonly stdout: string;
  readonly stderr: string;
};

/** One invocation of the bundled handler with `event`, in `work`, its environment `env` (nothing inherited). */
export async function invokeBundled<T>(
  fn: BundledFunction,
  event: unknown,
  env: Readonly<Record<string, string | undefined>>,
  work: string,
  requestId = 'e2e-1',
): Promise<InvokeOutcome<T>> {
  const invoker = join(work, 'invoke.mjs');
  const eventPath = join(work, `event-${requestId}.json`);
  const resultPath = join(work, `result-${requestId}.json`);
  writeFileSync(invoker, INVOKER);
  writeFileSync(eventPath, JSON.stringify(event));
  const finished = await runProcess(process.execPath, [invoker, fn.entry, eventPath, resultPath, requestId], {
    cwd: work,
    env: { ...env },
  });
  const outcome = JSON.parse(readFileSync(resultPath, 'utf8')) as
    { ok: true; result: T } | { ok: false; error: string };
  return { ...outcome, stdout: finished.stdout, stderr: finished.stderr };
}

/** The values an EMF line of the run published for `metric` (Powertools writes one object with all of them). */
export function emfValues(stdout: string, metric: string): number[] {
  const values: number[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.includes('"_aws"')) continue;
    const record = JSON.parse(line) as Record<string, unknown>;
    const value = record[metric];
    if (typeof value === 'number') values.push(value);
    else if (Array.isArray(value)) values.push(...(value as number[]));
  }
  return values;
}

/** The log lines (not EMF) the run wrote whose message starts with `prefix`. */
export function logLines(stdout: string, prefix: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{') && !l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => typeof r.message === 'string' && r.message.startsWith(prefix));
}

/** Where the GC script logs on the host. */
const GC_LOG_DIR = '/var/log/registry-janitor';

/** Remove the GC script's logs that a test's registry container left on this host. */
export function removeGcLogs(containerName: string): void {
  const logs = existsSync(GC_LOG_DIR) ? readdirSync(GC_LOG_DIR) : [];
  for (const f of logs)
    if (f.startsWith(`gc-${containerName}-`)) rmSync(join(GC_LOG_DIR, f), { force: true });
}

/**
 * What an invocation runs with on this machine: the synthesized environment, the construct's bucket (a Ref until
 * deploy) as the local S3 stand-in's where it is given, and the SDK pointed at the SSM and S3 stand-ins.
 */
export function standInEnvironment(
  fn: BundledFunction,
  endpoints: { readonly ssm: string; readonly s3: string },
  buckets: { readonly listing: string; readonly cache?: string },
): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH,
    ...fn.environment,
    ...(buckets.cache !== undefined ? { CACHE_BUCKET: buckets.cache } : {}),
    HISTORY_LISTING_BUCKET: buckets.listing,
    AWS_ENDPOINT_URL_SSM: endpoints.ssm,
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    AWS_LAMBDA_FUNCTION_NAME: 'registry-janitor-e2e',
    TZ: 'UTC',
  };
}
