// `registry-janitor plan`: the job as a dry run (no DELETE is sent), printed; and what plan and apply share:
// the policy or saved plan the flags name, the manifest cache, the scan's progress line.
import { writeFileSync } from 'node:fs';
import { openFileCache } from '../adapters/manifest-cache-file.ts';
import type { RegistryHttpClient } from '../adapters/registry-client.ts';
import { DEFAULT_MAX_DELETE_FRACTION } from '../core/contract.ts';
import { ConfigError, errorMessage } from '../core/errors.ts';
import type { JobOptions } from '../core/job.ts';
import { runJob } from '../core/job.ts';
import type { Plan } from '../core/model.ts';
import { parsePolicy, type Policy } from '../core/policy.ts';
import { formatPlan } from '../core/report.ts';
import { number, readText, type Values } from './args.ts';
import { buildClient } from './connect.ts';
import { storageHistory } from './storage.ts';
import { clearProgress, EXIT, progress, type CliIo } from './io.ts';

/** The job's options from the flags: a policy to plan from, or a saved plan to apply. */
export async function jobOptionsFrom(
  input: PlanInput,
  values: Values,
  io: CliIo,
  client: RegistryHttpClient,
): Promise<JobOptions> {
  const writeOut = (thePlan: Plan): void => {
    if (values.out) writeFileSync(values.out, JSON.stringify(thePlan, null, 2) + '\n');
  };
  const base = {
    client,
    now: new Date(),
    dryRun: input.command === 'plan',
    maxDeleteFraction: input.maxDeleteFraction,
  };
  const history = values.storage ? await storageHistory(values.storage, io.env) : undefined;
  if (!input.policy) {
    // The listing lets the live re-check see the untagged history that stays before a saved plan deletes any.
    const savedPlan = loadSavedPlan(values.plan!, client.baseUrl);
    return { ...base, savedPlan, ...(history ? { history } : {}), onPlan: writeOut };
  }
  const show = progress(io);
  const cache = values.cache
    ? await openFileCache(values.cache, { warn: (m) => void io.stderr.write(`warning: ${m}\n`) })
    : undefined;
  return {
    ...base,
    policy: input.policy,
    ...(cache ? { cache } : {}),
    ...(history ? { history } : {}),
    ...(values.repositories ? { repositories: values.repositories } : {}),
    ...(show
      ? {
          onScanProgress: (p) =>
            show(`scanned ${p.repositoriesDone}/${p.repositoriesTotal} repositories, ${p.tagsSeen} tags`),
        }
      : {}),
    onPlan: async (thePlan) => {
      clearProgress(io);
      // What the inventory learned is kept whatever apply does next.
      await cache?.save();
      writeOut(thePlan);
    },
  };
}

/** What plan and apply read before any request: the guard, and the policy (absent: a saved plan). */
export interface PlanInput {
  readonly command: 'plan' | 'apply';
  readonly maxDeleteFraction: number;
  readonly policy?: Policy;
}

/** Check the flags and read the policy before any request: each mistake is named with its fix. */
export function readPlanInput(command: 'plan' | 'apply', values: Values): PlanInput {
  const maxDeleteFraction = number(
    values['max-delete-fraction'],
    '--max-delete-fraction',
    0,
    1,
    DEFAULT_MAX_DELETE_FRACTION,
  );
  if (command === 'plan' && values.plan)
    throw new ConfigError('--plan goes with apply; plan makes a new plan from --policy');
  if (!values.plan && !values.policy)
    throw new ConfigError('--policy FILE is required (see the README for the format)');
  const policy = values.policy
    ? parsePolicy(readText(values.policy, 'the policy file'), values.policy)
    : undefined;
  // A saved plan is applied as saved; a policy given with it is only checked.
  return { command, maxDeleteFraction, ...(policy && !values.plan ? { policy } : {}) };
}

export async function planCommand(values: Values, io: CliIo): Promise<number> {
  const input = readPlanInput('plan', values);
  const client = await buildClient(values, io, false);
  try {
    const { plan: thePlan } = await runJob(await jobOptionsFrom(input, values, io, client));
    io.stdout.write(
      values.json
        ? JSON.stringify(thePlan, null, 2) + '\n'
        : formatPlan(thePlan, { verbose: values.verbose ?? false }),
    );
    return thePlan.complete ? EXIT.ok : EXIT.failed;
  } finally {
    await client.close();
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
