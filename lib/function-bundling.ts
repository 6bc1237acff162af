// How the janitor's functions are bundled (the main function and the workflow's steps alike): one ESM bundle per
// entry, built locally with esbuild for Node 22 on ARM64, the AWS SDK bundled in.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { OutputFormat, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { ConfigError } from '../lambda/core/errors.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const LOCK_FILE = fileURLToPath(new URL('../package-lock.json', import.meta.url));

/** The entry, runtime and bundling every janitor function shares; the caller adds role, limits and environment. */
export function bundledFunction(entry: string): NodejsFunctionProps {
  return {
    entry,
    handler: 'handler',
    projectRoot: REPO_ROOT,
    depsLockFilePath: LOCK_FILE,
    runtime: Runtime.NODEJS_22_X,
    architecture: Architecture.ARM_64,
    bundling: {
      format: OutputFormat.ESM,
      target: 'node22',
      mainFields: ['module', 'main'],
      minify: true,
      sourceMap: true,
      // ESM output has no `require`; CommonJS dependencies bundled inside still call it.
      banner:
        "import { createRequire as __janitorCreateRequire } from 'node:module'; " +
        'const require = __janitorCreateRequire(import.meta.url);',
      // Bundle the AWS SDK too: the function then runs the SDK version the tests ran, not the runtime's.
      externalModules: [],
      forceDockerBundling: false,
    },
  };
}

export function assertLocalEsbuild(): void {
  try {
    createRequire(import.meta.url).resolve('esbuild/package.json');
  } catch (err) {
    throw new ConfigError(
      'esbuild is not installed: run `npm ci` in the repository. The function is bundled locally with esbuild; ' +
        'without it the CDK would try Docker, which this project does not use.',
      { cause: err },
    );
  }
}
