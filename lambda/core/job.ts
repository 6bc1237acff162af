// The run both the Lambda and the CLI perform: inventory → plan → (guard → probe → deletes). GC and verify are
// added by the Lambda handler around it.
import type { Inventory, Plan, Report } from './model.ts';
import { applyPlan, assertApplicable } from './executor.ts';
import { plan as makePlan } from './planner.ts';
import type { Policy } from './policy.ts';
import type { ManifestCache, RegistryClient } from './ports.ts';
import { scanRegistry, type ScanProgress } from './scan.ts';

export interface JobOptions {
  readonly client: RegistryClient;
  readonly policy: Policy;
  readonly now: Date;
  readonly dryRun: boolean;
  readonly maxDeleteFraction: number;
  /** Narrow the run to repositories matching these globs. */
  readonly repositories?: readonly string[];
  readonly cache?: ManifestCache;
  readonly onScanProgress?: (p: ScanProgress) => void;
  readonly onPlan?: (plan: Plan) => void;
  readonly onApplyProgress?: (p: {
    repositoriesDone: number;
    repositoriesTotal: number;
    deleted: number;
  }) => void;
}

export interface JobResult {
  readonly inventory: Inventory;
  readonly plan: Plan;
  /** Absent on a dry run. */
  readonly report?: Report;
}

export async function runJob(options: JobOptions): Promise<JobResult> {
  const inventory = await scanRegistry(options.client, {
    policy: options.policy,
    ...(options.repositories ? { repositories: options.repositories } : {}),
    ...(options.cache ? { cache: options.cache } : {}),
    ...(options.onScanProgress ? { onProgress: options.onScanProgress } : {}),
  });
  const plan = makePlan(inventory, options.policy, options.now);
  options.onPlan?.(plan);
  if (options.dryRun) return { inventory, plan };
  assertApplicable(plan, options.maxDeleteFraction);
  const report = await applyPlan(plan, options.client, {
    maxDeleteFraction: options.maxDeleteFraction,
    ...(options.onApplyProgress ? { onProgress: options.onApplyProgress } : {}),
  });
  return { inventory, plan, report };
}
