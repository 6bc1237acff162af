// The command line: flags, usage text and the small parsers the commands share. Parsing only; no I/O but reading
// the files the flags name.
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_CONCURRENCY, DEFAULT_MAX_DELETE_FRACTION } from '../core/contract.ts';
import { ConfigError, errorMessage } from '../core/errors.ts';

export const USAGE = `registry-janitor: keep a Docker registry (CNCF distribution) within its disk.

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
  --concurrency N           requests in flight (default ${DEFAULT_CONCURRENCY})
  --cache FILE              remember manifest facts in FILE between runs (immutable by digest): a repeated
                            run reads only what is new. A missing or unreadable FILE only costs time
  --storage PATH            the registry's storage root (storage.filesystem.rootdirectory, the folder that
                            holds docker/), read-only: untagged history is listed from it and judged by the
                            policy's untagged blocks; without it untagged manifests are left alone
  --max-delete-fraction F   delete guard: refuse plans deleting more than F of the tags (default ${DEFAULT_MAX_DELETE_FRACTION})
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

export const OPTIONS = {
  registry: { type: 'string' },
  policy: { type: 'string' },
  plan: { type: 'string' },
  repositories: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  out: { type: 'string' },
  concurrency: { type: 'string' },
  cache: { type: 'string' },
  storage: { type: 'string' },
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

export type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>['values'];

/** Parse argv; throws (node's own message) on an unknown flag or a missing value. */
export function parseCommandLine(argv: readonly string[]): { values: Values; positionals: string[] } {
  return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
}

export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${what} "${path}": ${errorMessage(err)}`, { cause: err });
  }
}

export function number(
  value: string | undefined,
  flag: string,
  min: number,
  max: number,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(`${flag} expects a number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}
