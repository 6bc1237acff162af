// The CDK app: reads the deployment settings from context (`-c key=value`) and builds the stack. Run by cdk.json.
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { JanitorError } from '../lambda/core/errors.ts';
import { parseAppContext } from '../lib/context.ts';
import { RegistryJanitorStack } from '../lib/registry-janitor-stack.ts';

const app = new App();
try {
  const settings = parseAppContext(app.node.getAllContext() as Record<string, unknown>, {
    defaultPolicyFile: fileURLToPath(new URL('../retention-policy.yaml', import.meta.url)),
  });
  new RegistryJanitorStack(app, 'RegistryJanitor', {
    settings,
    description: 'registry-janitor: retention policy, deletes and garbage-collect for a self-hosted registry',
    // Unset without credentials: the stack is then environment-agnostic and synthesizes offline.
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  app.synth();
} catch (err) {
  // Our errors already say what to set; a stack trace would only bury that.
  if (!(err instanceof JanitorError)) throw err;
  console.error(`registry-janitor: ${err.message}`);
  process.exitCode = 1;
}
