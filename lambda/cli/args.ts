// The command line: flags, usage text and the small parsers the commands share. Parsing only; no I/O but reading
// the files the flags name.
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_CONTAINER_NAME,
  DEFAULT_GC_MODE,
  DEFAULT_MAX_DELETE_FRACTION,
  DEFAULT_UNDO_WINDOW_HOURS,
  MAX_CONCURRENCY,
  MAX_UNDO_WINDOW_HOURS,
} from '../core/contract.ts';
import { ConfigError, errorMessage } from '../core/errors.ts';
import { closest } from '../core/suggest.ts';

export const USAGE = `registry-janitor: keep a Docker registry (CNCF distribution) within its disk.

Usage:
  registry-janitor plan  --registry URL --policy FILE [options]   show what would be deleted; deletes nothing
  registry-janitor apply --registry URL --policy FILE [options]   plan, show, confirm, delete
  registry-janitor apply --registry URL --plan FILE [options]     apply a plan saved with plan --out FILE
  registry-janitor gc    --container NAME [options]               garbage-collect this host's registry container
                                                                  (registry-janitor gc --help for its options)
  registry-janitor restore --registry URL --run ID [options]      put back the tags a run removed, within its
                                                                  undo window (registry-janitor restore --help)

Options:
  --registry URL            registry base URL, e.g. https://registry.internal:5000 (or REGISTRY_URL)
  --policy FILE             retention policy, YAML or JSON (see README)
  --plan FILE               apply: the plan saved with plan --out FILE, applied exactly as saved
  --repositories GLOB       only these repositories (repeatable), e.g. "team1/**"
  --json                    print the full plan (and report) as JSON
  --verbose                 list kept tags too, with the reason each is kept
  --out FILE                also write the plan as JSON to FILE (for apply --plan FILE)
  --html FILE               also write the plan (apply: and its outcome) as one self-contained HTML page
  --concurrency N           requests in flight, a whole number from 1 to ${MAX_CONCURRENCY} (default ${DEFAULT_CONCURRENCY})
  --cache FILE              remember manifest facts in FILE between runs (immutable by digest): a repeated
                            run reads only what is new. A missing or unreadable FILE only costs time
  --journal FILE            where apply records what it is about to delete (an index, then the children and
                            referrers after it), so the next run finishes what an interrupted one started
                            (default: beside --cache as FILE.journal.json, else
                            $XDG_STATE_HOME/registry-janitor/journal-HOST.json, ~/.local/state without it)
  --storage PATH            the registry's storage root (storage.filesystem.rootdirectory, the folder that
                            holds docker/, or s3://BUCKET/ROOTDIRECTORY), read-only: untagged history is listed
                            from it and judged by the policy's untagged blocks; without it untagged manifests
                            are left alone. With it apply is two-phase: it removes the tags and leaves the
                            manifests, untagged, for the sweep after --undo-window-hours (restore brings them
                            back until then); without it apply deletes by digest
  --undo-window-hours N     with --storage: hours an untagged manifest can be restored before the sweep deletes
                            it, a whole number from 0 (swept in the same run, right after the untagging) to
                            ${MAX_UNDO_WINDOW_HOURS} (default ${DEFAULT_UNDO_WINDOW_HOURS})
  --max-history-entries N   most entries one --storage listing may read (S3 keys; repository folders and
                            revisions on a filesystem) before it stops as partial (default 10000000)
  --max-delete-fraction F   delete guard: refuse plans deleting more than F of the tags (default ${DEFAULT_MAX_DELETE_FRACTION})
  --yes, -y                 do not ask before deleting (required when stdin is not a terminal)
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

Relative paths (--policy, --plan, --out, --html, --cache, --journal, --storage, --ca-file) are taken from the directory
the command was run from (under npm run, the one npm was started in).

Exit codes: 0 done, 1 failed, 2 bad input, 3 refused by a safety guard (incomplete plan, delete guard,
deletes disabled on the registry, no confirmation).
`;

export const GC_USAGE = `registry-janitor gc: garbage-collect the registry container on this host (e.g. from cron), with the
same script the Lambda sends over SSM. Run it as a user that may run docker (or podman).

Usage:
  registry-janitor gc [--container NAME] [--mode MODE] [--config-path PATH] [--delete-untagged] [--json]

Options:
  --container NAME     the registry container's name or id (default ${DEFAULT_CONTAINER_NAME})
  --mode MODE          what happens to the registry meanwhile (default ${DEFAULT_GC_MODE}):
                         readonly  pulls are served by a read-only stand-in container, pushes wait
                         offline   the registry is stopped while a one-off container collects
                         online    collect in the running registry: only safe when nobody pushes
  --config-path PATH   the registry's config file inside the container (default: the .yml/.yaml file the
                       container was started with, else /etc/distribution/config.yml on v3 and
                       /etc/docker/registry/config.yml on 2.x)
  --delete-untagged    also delete manifests no tag points at (default off; v3 only: refused on 2.8, where it
                       breaks multi-arch images)
  --json               print the result as JSON
  -h, --help           this help

Exit codes: 0 done, 1 failed, 2 bad input.
`;

export const RESTORE_USAGE = `registry-janitor restore: put back tags that a two-phase apply removed, from the manifest
bytes its journal recorded, while the undo window lasts (apply prints the run id and until when). It sends no
DELETE and does not change the journal.

Usage:
  registry-janitor restore --registry URL --run ID [options]          every tag that run removed
  registry-janitor restore --registry URL --repository REPO [options] every tag removed in REPO
  registry-janitor restore --registry URL --tag REPO:TAG [options]    one tag

Options:
  --run ID                  a run id, as apply printed it (e.g. 20261202T031500Z-3f9a1c)
  --repository REPO         a repository name (not a glob): each tag removed there, as the latest removal left it
  --tag REPO:TAG            one tag; the tag is after the last colon (host:port/repo:tag works)
  --journal FILE            the journal apply wrote (default: as apply's: beside --cache as FILE.journal.json,
                            else $XDG_STATE_HOME/registry-janitor/journal-HOST.json, ~/.local/state without it)
  --cache FILE              only to find the journal beside it, as apply does
  --dry-run                 show what would be restored; write nothing
  --force                   with --tag only: put the tag back even though it points at another image now
                            (pushed since it was removed); that image stays in the registry, untagged, and
                            the output names its digest so it can be tagged again
  --json                    print the result as JSON
  --concurrency N           requests in flight, a whole number from 1 to ${MAX_CONCURRENCY} (default ${DEFAULT_CONCURRENCY})
  --username USER, --password-stdin, --ca-file FILE, --insecure, --allow-insecure-http, --token-realm-host HOST
                            as for plan and apply; the user needs push on the repositories restored
  -h, --help                this help

A tag already on its recorded image is "in place"; a tag someone pushed since is left alone unless --force.
An image whose manifest was swept after the window and whose blobs garbage-collect then freed cannot be
restored: push it again from where it was built.

Exit codes: 0 every selected tag restored or already in place, 1 a tag could not be restored (the reason
is printed), 2 bad input (no or two selectors, a malformed REPO:TAG, a run or tag the journal does not record;
nothing is written), 3 a tag was left alone because it points elsewhere now (no --force).
`;

export const OPTIONS = {
  registry: { type: 'string' },
  policy: { type: 'string' },
  plan: { type: 'string' },
  repositories: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  out: { type: 'string' },
  html: { type: 'string' },
  concurrency: { type: 'string' },
  cache: { type: 'string' },
  journal: { type: 'string' },
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
  'max-history-entries': { type: 'string' },
  'undo-window-hours': { type: 'string' },
  container: { type: 'string' },
  mode: { type: 'string' },
  'config-path': { type: 'string' },
  'delete-untagged': { type: 'boolean' },
  run: { type: 'string' },
  repository: { type: 'string' },
  tag: { type: 'string' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>['values'];

export const COMMANDS = ['plan', 'apply', 'gc', 'restore', 'help'] as const;

/** The flags only `restore` takes, and the ones it takes besides (connection, journal, output). */
const RESTORE_ONLY = ['run', 'repository', 'tag', 'force', 'dry-run'] as const;
const RESTORE_ALSO = [
  'registry',
  'journal',
  'cache',
  'json',
  'concurrency',
  'username',
  'password-stdin',
  'ca-file',
  'insecure',
  'allow-insecure-http',
  'token-realm-host',
  'help',
] as const;

/**
 * Parse argv. Every mistake is a ConfigError that names the flag and the fix: an unknown flag (with the closest
 * known one), a flag without its value, a value given to a switch, an argument after the command.
 */
export function parseCommandLine(argv: readonly string[]): { values: Values; positionals: string[] } {
  // Not strict: node's own messages ("ambiguous" for `--concurrency -1`) are replaced by ours below.
  const { values, positionals, tokens } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const names = Object.keys(OPTIONS);
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = (OPTIONS as Record<string, { type: 'string' | 'boolean' } | undefined>)[token.name];
    if (spec === undefined) {
      const guess = token.rawName.startsWith('--') ? closest(token.name, names) : undefined;
      throw new ConfigError(
        `unknown option ${token.rawName}${guess ? `; did you mean --${guess}?` : ''} (see --help)`,
      );
    }
    const flag = `--${token.name}`;
    if (spec.type === 'string') {
      // `--policy --json`: node would take "--json" as the file; a negative number stays a value.
      if (token.value === undefined || (!token.inlineValue && /^--?[a-z]/i.test(token.value))) {
        throw new ConfigError(`${flag} needs a value, e.g. ${flag} ${example(token.name)}`);
      }
    } else if (token.value !== undefined) {
      throw new ConfigError(`${flag} is a switch and takes no value; drop "=${token.value}"`);
    }
  }
  // `help gc` names a topic; every other command takes flags only.
  const extra = positionals.slice(positionals[0] === 'help' ? 2 : 1);
  if (extra.length > 0) {
    const command = positionals[0] ?? '';
    throw new ConfigError(
      `unexpected argument${extra.length === 1 ? '' : 's'} ${extra.map((a) => `"${a}"`).join(' ')} after ` +
        `"${command}": ${command} takes flags only. A glob must be quoted (--repositories 'team1/**'), or the ` +
        `shell expands it into file names; repeat the flag for several values`,
    );
  }
  checkFlagsOf(positionals[0], values as Values);
  return { values: values as Values, positionals };
}

/** A flag of another command is named, not ignored: `restore --policy` and `apply --dry-run` do not do what they say. */
function checkFlagsOf(command: string | undefined, values: Values): void {
  const given = Object.keys(values).filter((k) => (values as Record<string, unknown>)[k] !== undefined);
  if (command === 'restore') {
    const allowed = new Set<string>([...RESTORE_ONLY, ...RESTORE_ALSO]);
    const foreign = given.filter((k) => !allowed.has(k));
    if (foreign.length === 0) return;
    const hint = foreign.includes('repositories')
      ? '; restore takes one repository name with --repository REPO'
      : '';
    throw new ConfigError(
      `${foreign.map((k) => `--${k}`).join(', ')} ${foreign.length === 1 ? 'is' : 'are'} not used by restore${hint} ` +
        '(see restore --help)',
    );
  }
  if (command === undefined || command === 'help') return;
  const restoreOnly = given.filter((k) => (RESTORE_ONLY as readonly string[]).includes(k));
  if (restoreOnly.length === 0) return;
  const hint = restoreOnly.includes('dry-run') ? '; plan is the dry run of apply' : '';
  throw new ConfigError(
    `${restoreOnly.map((k) => `--${k}`).join(', ')} ${restoreOnly.length === 1 ? 'goes' : 'go'} with restore, ` +
      `not ${command}${hint}`,
  );
}

const EXAMPLES: Record<string, string> = {
  registry: 'https://registry.internal:5000',
  repositories: "'team1/**'",
  concurrency: String(DEFAULT_CONCURRENCY),
  'max-delete-fraction': String(DEFAULT_MAX_DELETE_FRACTION),
  'max-list-pages': '10000',
  'max-list-entries': '1000000',
  'max-history-entries': '10000000',
  'undo-window-hours': String(DEFAULT_UNDO_WINDOW_HOURS),
  username: 'USER',
  'token-realm-host': 'HOST',
  container: DEFAULT_CONTAINER_NAME,
  mode: DEFAULT_GC_MODE,
  storage: 'PATH',
  'config-path': 'PATH',
  run: '20261202T031500Z-3f9a1c',
  repository: 'team1/app',
  tag: 'team1/app:v1',
};

const example = (name: string): string => EXAMPLES[name] ?? 'FILE';

export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${what} "${path}": ${errorMessage(err)}`, { cause: err });
  }
}

/** A numeric flag's value, checked against its bounds; `whole` refuses fractions. */
export function number(
  value: string | undefined,
  flag: string,
  min: number,
  max: number,
  fallback: number,
  whole = false,
): number {
  if (value === undefined) return fallback;
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
    throw new ConfigError(
      `${flag} expects ${whole ? 'a whole number' : 'a number'} from ${min} to ${max}, got "${value}"`,
    );
  }
  return n;
}
