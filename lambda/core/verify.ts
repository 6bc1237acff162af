// After deletes and garbage collection: prove that every tag the plan kept still resolves to the same digest,
// and that every manifest and blob it reaches is still served.
import pLimit from 'p-limit';
import { errorMessage } from './errors.ts';
import type { Inventory, Plan } from './model.ts';
import type { RegistryClient } from './ports.ts';

export interface VerifyResult {
  readonly tagsChecked: number;
  readonly manifestsChecked: number;
  readonly blobsChecked: number;
  /** Each a sentence naming the repository and what is missing. Empty when everything is intact. */
  readonly problems: readonly string[];
}

export async function verifyKept(
  plan: Plan,
  inventory: Inventory,
  client: RegistryClient,
  options: { concurrency?: number; repositories?: readonly string[] } = {},
): Promise<VerifyResult> {
  const limit = pLimit(options.concurrency ?? 32);
  const problems: string[] = [];
  let tagsChecked = 0;
  let manifestsChecked = 0;
  let blobsChecked = 0;
  const only = options.repositories ? new Set(options.repositories) : undefined;
  const missingByRepo = new Map(inventory.repositories.map((r) => [r.name, new Set(r.missing)]));

  const tasks: Promise<void>[] = [];
  for (const repo of plan.repositories) {
    if (only && !only.has(repo.name)) continue;
    const missing = missingByRepo.get(repo.name) ?? new Set<string>();
    const manifests = new Set<string>();
    const blobs = new Set<string>();
    for (const kept of repo.kept) {
      tasks.push(
        limit(async () => {
          const digest = await client.headManifest(repo.name, kept.tag);
          tagsChecked += 1;
          if (digest !== kept.digest) {
            problems.push(
              `${repo.name}:${kept.tag} should resolve to ${kept.digest} but resolves to ${digest ?? 'nothing'}`,
            );
          }
        }),
      );
      // Everything the kept tag reaches: descendants, their configs and layers.
      const stack = [kept.digest];
      while (stack.length > 0) {
        const d = stack.pop()!;
        if (manifests.has(d) || missing.has(d)) continue;
        manifests.add(d);
        const info = inventory.manifests.get(d);
        for (const c of info?.children ?? []) stack.push(c.digest);
        if (info?.config) blobs.add(info.config.digest);
        for (const l of info?.layers ?? []) blobs.add(l.digest);
      }
    }
    for (const d of manifests) {
      tasks.push(
        limit(async () => {
          manifestsChecked += 1;
          if ((await client.headManifest(repo.name, d)) !== d)
            problems.push(`${repo.name}@${d}: manifest is no longer served`);
        }),
      );
    }
    for (const b of blobs) {
      tasks.push(
        limit(async () => {
          blobsChecked += 1;
          if (!(await client.headBlob(repo.name, b)))
            problems.push(`${repo.name}: blob ${b} is no longer served`);
        }),
      );
    }
  }
  const settled = await Promise.allSettled(tasks);
  for (const s of settled)
    if (s.status === 'rejected') problems.push(`verification read failed: ${errorMessage(s.reason)}`);
  return { tagsChecked, manifestsChecked, blobsChecked, problems: problems.sort() };
}
