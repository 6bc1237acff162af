// Helpers for asserting on synthesized CloudFormation: flatten Fn::Join/Ref/GetAtt into readable strings, collect
// the IAM statements attached to a function's role without depending on logical ids, and build test apps.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type AppProps } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';

type Json = unknown;

/** `{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}]]}` → `"arn:${AWS::Partition}"`, recursively. */
export function flatten(value: Json): Json {
  if (Array.isArray(value)) return value.map(flatten);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, Json>);
  if (entries.length === 1) {
    const [key, arg] = entries[0]!;
    if (key === 'Ref' && typeof arg === 'string') return `\${${arg}}`;
    if (key === 'Fn::GetAtt' && Array.isArray(arg)) return `\${${arg.join('.')}}`;
    if (key === 'Fn::Join' && Array.isArray(arg)) {
      const [separator, parts] = arg as [string, Json[]];
      const flat = parts.map(flatten);
      if (flat.every((p) => typeof p === 'string')) return flat.join(separator);
    }
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, flatten(v)]));
}

export interface Statement {
  readonly Sid?: string;
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: string | string[];
  readonly Condition?: Record<string, Record<string, unknown>>;
}

/** The logical id of the role a resource property `Role: {Fn::GetAtt: [id, Arn]}` points at. */
export function roleOf(template: Template, functionProps: Record<string, unknown> = {}): string {
  const functions = Object.values(
    template.findResources('AWS::Lambda::Function', { Properties: functionProps }),
  );
  if (functions.length !== 1) throw new Error(`expected one matching function, found ${functions.length}`);
  const role = (functions[0] as { Properties: { Role: { 'Fn::GetAtt': [string, string] } } }).Properties.Role;
  return role['Fn::GetAtt'][0];
}

/** Every statement of every AWS::IAM::Policy attached to the role, flattened. */
export function statementsOf(template: Template, roleLogicalId: string): Statement[] {
  const policies = Object.values(template.findResources('AWS::IAM::Policy')) as {
    Properties: { Roles: { Ref: string }[]; PolicyDocument: { Statement: Statement[] } };
  }[];
  return policies
    .filter((p) => p.Properties.Roles.some((r) => r.Ref === roleLogicalId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement.map((s) => flatten(s) as Statement));
}

export const asList = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);

/** Actions granted on Resource "*". */
export function wildcardActions(statements: readonly Statement[]): string[] {
  return statements
    .filter((s) => asList(s.Resource).includes('*'))
    .flatMap((s) => asList(s.Action))
    .sort();
}

/** All actions granted, sorted and de-duplicated. */
export function allActions(statements: readonly Statement[]): string[] {
  return [...new Set(statements.flatMap((s) => asList(s.Action)))].sort();
}

/**
 * Apps that share one output directory, so the Lambda bundle (cached by the CDK per source, options and output
 * directory) is built at most once per test file instead of once per stack. Call dispose() in afterAll.
 *
 * `bundle: false` synthesizes without bundling the function, as `cdk ls` does (the CDK's `aws:cdk:bundling-stacks`
 * context, empty): the template is the same except for the asset's hash and path. For the files that assert on
 * roles, alarms and settings; the stack test (its snapshot) and `bin/app.ts`'s test build the real bundle.
 */
export function createTestApps(options: { readonly bundle: boolean }): {
  app: (props?: AppProps) => App;
  dispose: () => void;
} {
  const outdir = mkdtempSync(join(tmpdir(), 'registry-janitor-cdk-'));
  const noBundling = options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] };
  return {
    // The CDK's built-in template schema check costs seconds per synth; .ci/run's `cdk synth` keeps it on.
    app: (props: AppProps = {}) =>
      new App({
        builtinCloudFormationValidation: false,
        ...props,
        context: { ...noBundling, ...props.context },
        outdir,
      }),
    dispose: () => rmSync(outdir, { recursive: true, force: true }),
  };
}
