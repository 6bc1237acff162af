// Which distribution releases the integration tests run against: 2.8 (Debian's docker-registry) always, v3 when
// REGISTRY_V3_BIN names a v3 binary. A clone without one reports the v3 cases as skipped, saying why.
import { spawnSync } from 'node:child_process';
import { describe } from 'vitest';
import {
  REGISTRY_BINARY,
  assertRegistryBinary,
  startLocalRegistry,
  type LocalRegistry,
  type LocalRegistryOptions,
} from '../../lambda/demo/local-registry.ts';

export type RegistryKind = '2.8' | 'v3';

/** A distribution v3 binary (same CLI as docker-registry), or undefined when the v3 cases are to be skipped. */
export const REGISTRY_V3_BINARY: string | undefined = process.env.REGISTRY_V3_BIN || undefined;

export const V3_SKIP_REASON = 'skipped: set REGISTRY_V3_BIN to a v3 binary';

export interface RegistryKindCase {
  readonly kind: RegistryKind;
  /** For test titles: "distribution 2.8", "distribution v3" (with the skip reason when it cannot run). */
  readonly title: string;
  readonly available: boolean;
}

export const REGISTRY_KINDS: readonly RegistryKindCase[] = [
  { kind: '2.8', title: 'distribution 2.8', available: true },
  {
    kind: 'v3',
    title: REGISTRY_V3_BINARY ? 'distribution v3' : `distribution v3 (${V3_SKIP_REASON})`,
    available: REGISTRY_V3_BINARY !== undefined,
  },
];

/** One `describe` per registry kind, titled "<title> on distribution 2.8" etc.; v3 is skipped without a binary. */
export function describeEachRegistry(title: string, body: (c: RegistryKindCase) => void): void {
  for (const c of REGISTRY_KINDS) describe.skipIf(!c.available)(`${title} on ${c.title}`, () => body(c));
}

/** The binary for a kind; throws, saying how to fix it, when it is missing or is not the release it should be. */
export function registryBinary(kind: RegistryKind): string {
  if (kind === '2.8') {
    assertRegistryBinary();
    return REGISTRY_BINARY;
  }
  if (REGISTRY_V3_BINARY === undefined) {
    throw new Error('the v3 registry cases need REGISTRY_V3_BIN set to a distribution v3 binary');
  }
  const version = spawnSync(REGISTRY_V3_BINARY, ['--version'], { encoding: 'utf8' });
  // `registry --version` prints e.g. "registry github.com/distribution/distribution/v3 v3.0.0".
  if (version.status !== 0 || !/\sv?3\.\d+\.\d+\S*\s*$/.test(version.stdout)) {
    throw new Error(
      `REGISTRY_V3_BIN=${REGISTRY_V3_BINARY} is not a distribution v3 binary ` +
        `(--version: ${version.error?.message ?? (version.stdout + version.stderr).trim()}); ` +
        'point it at one, or unset it to skip the v3 cases',
    );
  }
  return REGISTRY_V3_BINARY;
}

/** What `registry --version` reports, as the GC script's summary gives it (no leading `v`). */
export const REGISTRY_VERSION: Readonly<Record<RegistryKind, RegExp>> = {
  '2.8': /^2\.8\.\d+/,
  v3: /^3\.\d+\.\d+/,
};

/** A registry of this kind on 127.0.0.1 with temp storage and deletes enabled (see startLocalRegistry). */
export function startRegistry(
  kind: RegistryKind,
  options: Omit<LocalRegistryOptions, 'binary'> = {},
): Promise<LocalRegistry> {
  return startLocalRegistry({ ...options, binary: registryBinary(kind) });
}
