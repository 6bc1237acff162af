// A plan as a hostile registry would make it: markup in the registry URL, repository and tag names, warnings and
// errors. For the HTML report's tests, string-level and in the browser.
import type { Plan } from '../../lambda/core/model.ts';
import { plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { img, inventory, type InventorySpec } from './inventory.ts';

const NOW = new Date('2026-11-28T12:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();

export const HOSTILE = [
  '<script>window.__pwned=1</script>',
  '</script><script>window.__pwned=2</script>',
  '<img src=x onerror="window.__pwned=3">',
  '"><svg onload=window.__pwned=4>',
  "'&amp;<!--",
  'line\u2028separator',
];

/** A plan whose registry, repository, tags, warnings and errors all carry markup. */
export function hostilePlan(): Plan {
  const manifests: InventorySpec['manifests'] = {};
  const tags: Record<string, string> = {};
  HOSTILE.forEach((t, i) => {
    manifests[`m${i}`] = img(daysAgo(i + 1), [`l${i}`]);
    tags[t] = `m${i}`;
  });
  const p = plan(
    inventory({ manifests, repos: { [HOSTILE[0]!]: tags } }),
    parsePolicy('rules:\n  - repositories: ["**"]\n    keep: { newest: 2 }\n', 'test'),
    NOW,
  );
  return {
    ...p,
    registry: `https://${HOSTILE[2]}`,
    warnings: [...p.warnings, { repository: HOSTILE[3], reference: HOSTILE[1], message: HOSTILE[2]! }],
    complete: false,
    errors: [{ repository: HOSTILE[0], message: HOSTILE[1]! }],
  };
}
