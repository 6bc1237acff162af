// The command-line interface: the same engine as the Lambda, run from a workstation or the registry host.
// Exit codes: 0 done, 1 failed, 2 bad input, 3 refused by a safety guard.
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { openFileCache } from './adapters/manifest-cache-file.ts';
import { createRegistryClient, type RegistryHttpClient } from './adapters/registry-client.ts';
import { ConfigError, errorMessage, JanitorError, PolicyError, SafetyError } from './core/errors.ts';
import { applyPlan, assertApplicable } from './core/executor.ts';
import type { Plan } from './core/model.ts';
import { plan as makePlan } from './core/planner.ts';
import { parsePolicy } from './core/policy.ts';
import { DEFAULT_CONCURRENCY } from './core/ports.ts';
import { formatPlan, formatReport } from './core/report.ts';
import { scanRegistry } from './core/scan.ts';

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
}

export const EXIT = { ok: 0, failed: 1, badInput: 2, refused: 3 } as const;

const USAGE = `registry-janitor: keep a Docker registry (CNCF distribution) within its disk.

Usage:
  registry-janitor plan  --registry URL --policy FILE [options]   show what would be deleted; deletes nothing
  registry-janitor apply --registry URL --policy FILE [options]   plan, show, confirm, delete
  registry-janitor apply --registry URL --plan PLAN.json [options] apply a plan saved with plan --json
  registry-janitor gc    --container NAME [--mode readonly|offline|online] [--config-path P] [--delete-untagged]
                                                                  run garbage-collect on this host's registry container

Options:
  --registry URL            registry base URL, e.g. https://registry.internal:5000 (or REGISTRY_URL)
  --policy FILE             retention policy, YAML or JSON (see README)
  --repositories GLOB       only these repositories (repeatable), e.g. "team1/**"
  --json                    print the full plan (and report) as JSON
  --verbose                 list kept tags too, with the reason each is kept
  --out FILE                also write the plan as JSON to FILE
  --concurrency N           requests in flight (default 64)
  --cache FILE              remember manifest facts in FILE between runs (immutable by digest): a repeated
                            run reads only what is new. A missing or unreadable FILE only costs time
  --max-delete-fraction F   delete guard: refuse plans deleting more than F of the tags (default 0.5)
  --yes                     do not ask before deleting (required when stdin is not a terminal)
  --username USER           registry user (or REGISTRY_USERNAME)
  --password-stdin          read the password from stdin (or REGISTRY_PASSWORD)
  --ca-file FILE            PEM bundle of CAs to trust for the registry's TLS certificate
  --insecure                skip TLS verification (self-signed test setups only)
  --allow-insecure-http     send the credentials to a plain-http registry URL (trusted networks only)
  --token-realm-host HOST   a host other than the registry's whose token realm may get the credentials
                            (repeatable)
  --max-list-pages N        most pages one catalog or tag listing may take (default 10000)
  --max-list-entries N      most entries one catalog or tag listing may hold (default 1000000)
  -h, --help                this help

Exit codes: 0 done, 1 failed, 2 bad input, 3 refused by a safety guard (incomplete plan, delete guard,
deletes disabled on the registry).
`;

const OPTIONS = {
  registry: { type: 'string' },
  policy: { type: 'string' },
  plan: { type: 'string' },
  repositories: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  out: { type: 'string' },
  concurrency: { type: 'string' },
  cache: { type: 'string' },
  'max-delete-fraction': { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
  username: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  'ca-file': { type: 'string' },
  insecure: { type: 'boolean' },
  'allow-insecure-http': { type: 'boolean' },
  'token-realm-host': { type: 'string', multiple: true },
  'max-list-pages': { type: 'string' },
  'max-list-entries': { type: 'string' },
  container: { type: 'string' },
  mode: { type: 'string' },
  'config-path': { type: 'string' },
  'delete-untagged': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const say = (s: string): void => void io.stderr.write(s);
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    say(`error: ${errorMessage(err)}\n\n${USAGE}`);
    return EXIT.badInput;
  }
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    io.stdout.write(USAGE);
    return command === undefined && !values.help ? EXIT.badInput : EXIT.ok;
  }
  try {
    switch (command) {
      case 'plan':
      case 'apply':
        return await planOrApply(command, values, io);
      case 'gc': {
        const { gcCommand } = await import('./cli-gc.ts');
        return await gcCommand(values, io);
      }
      default:
        throw new ConfigError(`unknown command "${command}"; use plan, apply or gc (see --help)`);
    }
  } catch (err) {
    return reportError(err, io);
  }
}

export function reportError(err: unknown, io: CliIo): number {
  const message = errorMessage(err);
  if (err instanceof ConfigError || err instanceof PolicyError) {
    io.stderr.write(`error: ${message}\n`);
    return EXIT.badInput;
  }
  if (err instanceof SafetyError) {
    io.stderr.write(`refused: ${message}\n`);
    return EXIT.refused;
  }
  io.stderr.write(`error: ${message}\n`);
  if (!(err instanceof JanitorError) && err instanceof Error && err.stack && io.env.DEBUG)
    io.stderr.write(err.stack + '\n');
  return EXIT.failed;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${what} "${path}": ${errorMessage(err)}`, { cause: err });
  }
}

function number(value: string | undefined, flag: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(`${flag} expects a number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function buildClient(values: Values, io: CliIo, forDelete: boolean): Promise<RegistryHttpClient> {
  const url = values.registry ?? io.env.REGISTRY_URL;
  if (!url)
    throw new ConfigError(
      '--registry is required (or set REGISTRY_URL), e.g. --registry https://registry.internal:5000',
    );
  const username = values.username ?? io.env.REGISTRY_USERNAME;
  let password = io.env.REGISTRY_PASSWORD;
  if (values['password-stdin']) {
    if (io.stdin.isTTY)
      throw new ConfigError(
        '--password-stdin reads the password from a pipe, e.g. `cat pw | registry-janitor …`',
      );
    password = await readStdin(io.stdin);
  }
  if ((username === undefined) !== (password === undefined)) {
    throw new ConfigError(
      username === undefined
        ? 'a password was given without a user: add --username (or REGISTRY_USERNAME)'
        : `user "${username}" needs a password: --password-stdin or REGISTRY_PASSWORD`,
    );
  }
  return createRegistryClient({
    url,
    ...(username !== undefined && password !== undefined ? { username, password } : {}),
    ...(values['ca-file'] ? { caPem: readText(values['ca-file'], 'the CA file') } : {}),
    ...(values.insecure ? { insecure: true } : {}),
    concurrency: number(values.concurrency, '--concurrency', 1, 512, DEFAULT_CONCURRENCY),
    actions: forDelete ? 'pull,delete' : 'pull',
    ...(values['allow-insecure-http'] ? { allowInsecureHttp: true } : {}),
    ...(values['token-realm-host'] ? { tokenRealmHosts: values['token-realm-host'] } : {}),
    ...(values['max-list-pages'] !== undefined
      ? { maxListPages: number(values['max-list-pages'], '--max-list-pages', 1, Number.MAX_SAFE_INTEGER, 0) }
      : {}),
    ...(values['max-list-entries'] !== undefined
      ? {
          maxListEntries: number(
            values['max-list-entries'],
            '--max-list-entries',
            1,
            Number.MAX_SAFE_INTEGER,
            0,
          ),
        }
      : {}),
  });
}

function progress(io: CliIo): ((line: string) => void) | undefined {
  if (!io.stderr.isTTY) return undefined;
  let last = 0;
  return (line) => {
    const now = Date.now();
    if (now - last < 200) return;
    last = now;
    io.stderr.write(`\r\x1b[K${line}`);
  };
}

async function planOrApply(command: 'plan' | 'apply', values: Values, io: CliIo): Promise<number> {
  const maxDeleteFraction = number(values['max-delete-fraction'], '--max-delete-fraction', 0, 1, 0.5);
  if (command === 'plan' && values.plan)
    throw new ConfigError('--plan goes with apply; plan makes a new plan from --policy');
  if (!values.plan && !values.policy)
    throw new ConfigError('--policy FILE is required (see the README for the format)');
  const policy = values.policy
    ? parsePolicy(readText(values.policy, 'the policy file'), values.policy)
    : undefined;
  const client = await buildClient(values, io, command === 'apply');
  try {
    let thePlan: Plan;
    if (values.plan) {
      thePlan = loadSavedPlan(values.plan, client.baseUrl);
    } else {
      const show = progress(io);
      const cache = values.cache
        ? await openFileCache(values.cache, { warn: (m) => void io.stderr.write(`warning: ${m}\n`) })
        : undefined;
      const inventory = await scanRegistry(client, {
        policy: policy!,
        ...(cache ? { cache } : {}),
        ...(values.repositories ? { repositories: values.repositories } : {}),
        ...(show
          ? {
              onProgress: (p) =>
                show(`scanned ${p.repositoriesDone}/${p.repositoriesTotal} repositories, ${p.tagsSeen} tags`),
            }
          : {}),
      });
      if (show) io.stderr.write('\r\x1b[K');
      thePlan = makePlan(inventory, policy!, new Date());
      await cache?.save();
    }
    if (values.out) writeFileSync(values.out, JSON.stringify(thePlan, null, 2) + '\n');
    if (command === 'plan') {
      io.stdout.write(
        values.json
          ? JSON.stringify(thePlan, null, 2) + '\n'
          : formatPlan(thePlan, { verbose: values.verbose ?? false }),
      );
      return thePlan.complete ? EXIT.ok : EXIT.failed;
    }

    if (!values.json) io.stdout.write(formatPlan(thePlan, { verbose: values.verbose ?? false }));
    assertApplicable(thePlan, maxDeleteFraction);
    if (thePlan.summary.tagsDeleted === 0) {
      if (values.json) io.stdout.write(JSON.stringify({ plan: thePlan, report: null }, null, 2) + '\n');
      else io.stdout.write('Nothing to delete.\n');
      return EXIT.ok;
    }
    if (!(await confirm(thePlan, values, io))) {
      io.stderr.write('Nothing was deleted.\n');
      return values.yes || io.stdin.isTTY ? EXIT.ok : EXIT.refused;
    }
    const show = progress(io);
    const report = await applyPlan(thePlan, client, {
      maxDeleteFraction,
      ...(show
        ? {
            onProgress: (p) =>
              show(
                `deleting: ${p.repositoriesDone}/${p.repositoriesTotal} repositories, ${p.deleted} deleted`,
              ),
          }
        : {}),
    });
    if (show) io.stderr.write('\r\x1b[K');
    io.stdout.write(
      values.json ? JSON.stringify({ plan: thePlan, report }, null, 2) + '\n' : formatReport(report),
    );
    if (!values.json) {
      io.stdout.write(
        'Space is freed when garbage-collect runs on the registry host (registry-janitor gc, or the Lambda).\n',
      );
    }
    return report.failures.length > 0 || report.skippedRepositories.length > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    await client.close();
  }
}

async function confirm(thePlan: Plan, values: Values, io: CliIo): Promise<boolean> {
  if (values.yes) return true;
  const s = thePlan.summary;
  if (!io.stdin.isTTY) {
    io.stderr.write(
      `refused: apply deletes ${s.tagsDeleted} tags and ${s.manifestsDeleted} manifests; without a terminal to ask, pass --yes to confirm.\n`,
    );
    return false;
  }
  const rl = createInterface({ input: io.stdin, output: io.stderr });
  try {
    const answer = await rl.question(
      `Delete ${s.tagsDeleted} tags and ${s.manifestsDeleted} manifests from ${thePlan.registry}? [y/N] `,
    );
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function loadSavedPlan(path: string, registry: string): Plan {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText(path, 'the plan file'));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(
      `${path} is not a plan: ${errorMessage(err)}. Make one with: plan --json --out ${path}`,
    );
  }
  const p = parsed as Partial<Plan>;
  if (
    typeof p !== 'object' ||
    p === null ||
    !Array.isArray(p.repositories) ||
    typeof p.summary !== 'object' ||
    typeof p.complete !== 'boolean'
  ) {
    throw new ConfigError(`${path} is not a plan made by registry-janitor plan --json`);
  }
  if (p.registry !== registry) {
    throw new ConfigError(
      `${path} was made for ${String(p.registry)}, not ${registry}; plan again against this registry`,
    );
  }
  return p as Plan;
}
