// The CDK app as cdk.json runs it (tsx bin/app.ts): the README context synthesizes offline without credentials,
// and each kind of bad context stops it with exit code 1 and a message saying what to set, without a stack trace.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const README_CONTEXT = { registryUrl: 'https://registry.internal:5000', instanceId: 'i-0123456789abcdef0' };

let scratch: string;
beforeAll(() => {
  if (!existsSync(TSX)) throw new Error(`tsx is missing at ${TSX}: run npm ci`);
  scratch = mkdtempSync(join(tmpdir(), 'registry-janitor-app-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly stderr: string;
  readonly outdir: string;
}

/** Run the app the way the CDK CLI does: context and output directory through the environment. */
function runApp(context: Record<string, unknown>, name: string): Promise<Run> {
  const outdir = join(scratch, name);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CDK_CONTEXT_JSON: JSON.stringify(context),
    CDK_OUTDIR: outdir,
    // The CDK's own template validation costs seconds per run; .ci/run's `cdk synth` keeps it on.
    CDK_VALIDATION: 'false',
  };
  // No credentials and no account, as on a fresh machine.
  for (const key of ['CDK_DEFAULT_ACCOUNT', 'CDK_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_ACCESS_KEY_ID'])
    delete env[key];
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, ['bin/app.ts'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, outdir }));
  });
}

// Each case is its own process (node start-up and the CDK's import; the README case bundles the Lambda): side by side.
describe.concurrent('bin/app.ts', () => {
  it('synthesizes the README example offline, dry run on', async () => {
    const run = await runApp(README_CONTEXT, 'readme');
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.code).toBe(0);
    const template = JSON.parse(readFileSync(join(run.outdir, 'RegistryJanitor.template.json'), 'utf8')) as {
      Resources: Record<string, unknown>;
    };
    const functions = Object.values(template.Resources).filter(
      (r) => (r as { Type: string }).Type === 'AWS::Lambda::Function',
    ) as { Properties: { Environment: { Variables: Record<string, unknown> } } }[];
    expect(functions).toHaveLength(1);
    expect(functions[0]!.Properties.Environment.Variables).toMatchObject({
      DRY_RUN: 'true',
      REGISTRY_URL: 'https://registry.internal:5000',
      GC_INSTANCE_ID: 'i-0123456789abcdef0',
    });
  });

  it('passes the switches given with -c to the function', async () => {
    const run = await runApp(
      {
        ...README_CONTEXT,
        allowManualApply: 'true',
        tokenRealmHosts: 'auth.internal',
        allowInsecureHttp: 'true',
        // No stack to bundle, as `cdk ls` asks: the case above already builds the bundle the way `cdk synth` does.
        'aws:cdk:bundling-stacks': [],
      },
      'switches',
    );
    expect(run.code).toBe(0);
    const template = JSON.parse(readFileSync(join(run.outdir, 'RegistryJanitor.template.json'), 'utf8')) as {
      Resources: Record<
        string,
        { Type: string; Properties: { Environment?: { Variables: Record<string, unknown> } } }
      >;
      Outputs: Record<string, unknown>;
    };
    const fn = Object.values(template.Resources).find((r) => r.Type === 'AWS::Lambda::Function')!;
    expect(fn.Properties.Environment!.Variables).toMatchObject({
      ALLOW_MANUAL_APPLY: 'true',
      TOKEN_REALM_HOSTS: 'auth.internal',
      ALLOW_INSECURE_HTTP: 'true',
      REPORTS_PREFIX: 'reports/',
    });
    expect(template.Outputs).toHaveProperty('ReportsLocation');
  });

  it.each([
    {
      name: 'missing-context',
      context: {},
      message: 'missing context: pass -c registryUrl=https://<registry host>:<port> and -c instanceId=',
    },
    {
      name: 'bad-policy',
      context: { ...README_CONTEXT, policyFile: 'BAD_POLICY' },
      message: 'rules[0].keep.newest: expected a whole number >= 0',
    },
  ])('stops on $name with exit code 1 and the message', async ({ name, context, message }) => {
    const policyFile = join(scratch, `${name}.yaml`);
    writeFileSync(policyFile, 'rules:\n  - repositories: ["**"]\n    keep: { newest: -1 }\n');
    const resolved = Object.fromEntries(
      Object.entries(context).map(([k, v]) => [k, v === 'BAD_POLICY' ? policyFile : v]),
    );
    const run = await runApp(resolved, name);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`registry-janitor: `);
    expect(run.stderr).toContain(message);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });
});
