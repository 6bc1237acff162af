// Snapshot serializer for synthesized templates: asset hashes change with every edit of the bundled code, so they
// are replaced by a placeholder and the snapshot changes only when what we chose changes.
import type { SnapshotSerializer } from 'vitest';

const ASSET_HASH = /[0-9a-f]{64}/g;
export const ASSET_HASH_PLACEHOLDER = '[ASSET HASH]';

export const assetHashSerializer: SnapshotSerializer = {
  test: (value: unknown) => typeof value === 'string' && /[0-9a-f]{64}/.test(value),
  serialize: (value: string, config, indentation, depth, refs, printer) =>
    printer(value.replace(ASSET_HASH, ASSET_HASH_PLACEHOLDER), config, indentation, depth, refs),
};
