// Reads the GC script (registry-gc.sh, beside this module) for the runners and the SSM document builder. On first
// use, not on import: the function's bundle carries the file beside index.mjs, the same relative URL.
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The text of registry-gc.sh. */
export function readGcScript(): string {
  cached ??= readFileSync(new URL('./registry-gc.sh', import.meta.url), 'utf8');
  return cached;
}
