// `cdk synth` loads the construct and the function's config parser, never an adapter: no undici, no AWS SDK client,
// nothing under lambda/adapters. Read from esbuild's metafile of the CDK app, which lists every module it reaches.
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Packages that only the function's adapters may load. */
const ADAPTER_PACKAGES = /^(undici|@aws-sdk\/|@smithy\/|@aws-lambda-powertools\/)/;

async function moduleGraph(entry: string): Promise<{ files: string[]; packages: string[] }> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    // Our own files are followed; a package import is recorded, not read.
    packages: 'external',
    logLevel: 'silent',
  });
  const inputs = result.metafile.inputs;
  const packages = Object.values(inputs).flatMap((input) =>
    input.imports.filter((i) => i.external).map((i) => i.path),
  );
  return { files: Object.keys(inputs).sort(), packages: [...new Set(packages)].sort() };
}

describe('what cdk synth loads', () => {
  it.each(['bin/app.ts', 'lib/registry-janitor.ts'])(
    '%s reaches no adapter and no adapter package',
    async (entry) => {
      const { files, packages } = await moduleGraph(entry);
      expect(files).toContain('lambda/config.ts');
      expect(files).toContain('lambda/core/contract.ts');
      expect(files.filter((f) => f.startsWith('lambda/adapters/'))).toEqual([]);
      expect(packages.filter((p) => ADAPTER_PACKAGES.test(p))).toEqual([]);
      expect(packages).toContain('aws-cdk-lib');
    },
  );

  it('the contract itself imports no package at all', async () => {
    const { files, packages } = await moduleGraph('lambda/core/contract.ts');
    expect(packages).toEqual([]);
    expect(files.every((f) => f.startsWith('lambda/core/'))).toBe(true);
  });

  it('sees an adapter when one is imported (the check can fail)', async () => {
    const { files, packages } = await moduleGraph('lambda/handler.ts');
    expect(files).toContain('lambda/adapters/ssm-runner.ts');
    expect(packages).toContain('@aws-sdk/client-ssm');
    expect(packages).toContain('undici');
  });
});
