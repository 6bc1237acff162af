// One rule, every consumer: the same inputs through the construct's props, the function's config loader, the CDK
// context parser, the SSM runner, the SSM document's parameter patterns, the GC script's options and the registry
// client, which must all agree. Most rows are values that at least one of them judged differently before the rules
// moved to lambda/core/contract.ts.
import { SSMClient } from '@aws-sdk/client-ssm';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { normaliseRealmHosts } from '../../lambda/adapters/registry/credentials.ts';
import { createRegistryClient } from '../../lambda/adapters/registry-client.ts';
import { SsmCommandRunner } from '../../lambda/adapters/ssm-runner.ts';
import { loadConfig } from '../../lambda/config.ts';
import {
  DEFAULT_CONTAINER_NAME,
  DEFAULT_GC_MODE,
  DEFAULT_GC_TIMEOUT_SECONDS,
  DEFAULT_MAX_DELETE_FRACTION,
  GC_MODES,
  MANIFEST_ACCEPT,
  METRICS,
  METRIC_NAMESPACE,
} from '../../lambda/core/contract.ts';
import { GC_DEFAULTS, gcParameters } from '../../lambda/core/gc-script.ts';
import { MEDIA_TYPES } from '../../lambda/core/manifest.ts';
import { parseAppContext } from '../../lib/context.ts';
import { gcDocumentContent } from '../../lib/gc-document.ts';
import { RegistryJanitor, type RegistryJanitorProps } from '../../lib/registry-janitor.ts';
import { createTestApps } from '../support/cfn-template.ts';

const BASE: RegistryJanitorProps = {
  registryUrl: 'https://registry.internal:5000',
  instanceId: 'i-0123456789abcdef0',
  policy: { rules: [{ repositories: ['**'], keep: { newest: 5 } }] },
};
const ENV = {
  REGISTRY_URL: 'https://registry.internal:5000',
  GC_INSTANCE_ID: 'i-0123456789abcdef0',
  GC_DOCUMENT_NAME: 'Stack-GcDocument-AbC123',
  RETENTION_POLICY: JSON.stringify(BASE.policy),
};
const CONTEXT = { registryUrl: 'https://registry.internal:5000', instanceId: 'i-0123456789abcdef0' };

const apps = createTestApps({ bundle: false });
afterAll(() => apps.dispose());

function accepts(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

function janitor(props: Partial<RegistryJanitorProps>): RegistryJanitor {
  return new RegistryJanitor(new Stack(apps.app(), 'Test'), 'Janitor', { ...BASE, ...props });
}

/** The environment the construct gives the function, resolved. */
function functionEnvironment(j: RegistryJanitor): Record<string, unknown> {
  const fn = j.janitorFunction.node.defaultChild as CfnFunction;
  return (Stack.of(j).resolve(fn.environment) as { variables: Record<string, unknown> }).variables;
}

/** What the SSM document's allowedPattern for a parameter accepts (SSM matches the whole value). */
function documentAccepts(parameter: string, value: string): boolean {
  const parameters = gcDocumentContent('#!/bin/sh\n').parameters as Record<
    string,
    { allowedPattern?: string; allowedValues?: string[] }
  >;
  const { allowedPattern, allowedValues } = parameters[parameter]!;
  if (allowedValues) return allowedValues.includes(value);
  return new RegExp(allowedPattern!).test(value);
}

const ssm = new SSMClient({ region: 'eu-west-1' });

describe('EC2 instance ids: i- and 8 or 17 hex digits, mi- and 17', () => {
  it.each([
    { id: 'i-0123abcd', valid: true },
    { id: 'i-0123456789abcdef0', valid: true },
    { id: 'mi-0123456789abcdef0', valid: true },
    // The SSM runner took any 8 to 17 digits; no EC2 id has 12.
    { id: 'i-0123456789ab', valid: false },
    { id: 'mi-0123abcd', valid: false },
    { id: 'i-0123456789ABCDEF0', valid: false },
    { id: 'i-', valid: false },
    { id: 'registry-1', valid: false },
  ])('$id valid: $valid everywhere', ({ id, valid }) => {
    expect({
      construct: accepts(() => janitor({ instanceId: id })),
      config: accepts(() => loadConfig({ ...ENV, GC_INSTANCE_ID: id })),
      ssmRunner: accepts(
        () => new SsmCommandRunner({ client: ssm, target: { instanceId: id }, documentName: 'Doc-1' }),
      ),
    }).toEqual({ construct: valid, config: valid, ssmRunner: valid });
  });
});

describe("container names: Docker's rule, 2 to 200 characters", () => {
  it.each([
    // The GC options and the SSM document took one character; Docker refuses `--name a`.
    { name: 'a', valid: false },
    { name: 'ab', valid: true },
    { name: 'my_registry.1', valid: true },
    { name: 'a'.repeat(200), valid: true },
    // The config and the construct had no upper bound; the GC options stopped at 200.
    { name: 'a'.repeat(201), valid: false },
    { name: '-registry', valid: false },
    { name: 'registry;reboot', valid: false },
    { name: 'my registry', valid: false },
  ])('$name valid: $valid everywhere', ({ name, valid }) => {
    expect({
      construct: accepts(() => janitor({ containerName: name })),
      config: accepts(() => loadConfig({ ...ENV, GC_CONTAINER_NAME: name })),
      gcOptions: accepts(() => gcParameters({ containerName: name })),
      document: documentAccepts('containerName', name),
    }).toEqual({ construct: valid, config: valid, gcOptions: valid, document: valid });
  });

  it('defaults to the same container everywhere', () => {
    expect(loadConfig(ENV).gc.containerName).toBe(DEFAULT_CONTAINER_NAME);
    expect(GC_DEFAULTS.containerName).toBe(DEFAULT_CONTAINER_NAME);
    expect(gcParameters().containerName).toBe(DEFAULT_CONTAINER_NAME);
  });
});

describe('config paths: absolute, letters, digits and _ . / -, at most 1024 characters', () => {
  it.each([
    { path: '/etc/docker/registry/config.yml', valid: true },
    { path: '/etc/distribution/config.yml', valid: true },
    { path: '/' + 'a'.repeat(1023), valid: true },
    // The config loader had no upper bound; the document stopped at 1024.
    { path: '/' + 'a'.repeat(1024), valid: false },
    { path: 'config.yml', valid: false },
    { path: '/etc/my registry/config.yml', valid: false },
    { path: '/etc/$(reboot).yml', valid: false },
  ])('$path valid: $valid in the construct, the config and the document', ({ path, valid }) => {
    expect({
      construct: accepts(() => janitor({ configPath: path })),
      config: accepts(() => loadConfig({ ...ENV, GC_CONFIG_PATH: path })),
      document: documentAccepts('configPath', path),
    }).toEqual({ construct: valid, config: valid, document: valid });
  });

  it('leaves the path empty in the document when none is set (the script finds it)', () => {
    expect(documentAccepts('configPath', '')).toBe(true);
    expect(loadConfig(ENV).gc).not.toHaveProperty('configPath');
  });
});

describe('registry URLs: http(s) root, no credentials, spelled as the origin', () => {
  it.each([
    { url: 'https://registry.internal:5000', origin: 'https://registry.internal:5000' },
    { url: 'https://registry.internal:5000/', origin: 'https://registry.internal:5000' },
    // The loader trimmed any trailing slashes; the construct and the client took only one.
    { url: 'https://registry.internal:5000//', origin: 'https://registry.internal:5000' },
    // The loader and the construct kept the spelling; the client used the origin.
    { url: 'HTTPS://Registry.Internal:443', origin: 'https://registry.internal' },
    { url: 'http://10.0.0.5:5000', origin: 'http://10.0.0.5:5000' },
    { url: 'ftp://registry.internal', origin: null },
    { url: 'https://registry.internal/v2/', origin: null },
    { url: 'https://registry.internal/?x=1', origin: null },
    { url: 'https://registry.internal/#top', origin: null },
    { url: 'https://user:pw@registry.internal', origin: null },
    { url: 'not a url', origin: null },
  ])('$url → $origin everywhere', ({ url, origin }) => {
    const valid = origin !== null;
    let constructUrl: unknown = null;
    const construct = accepts(() => {
      constructUrl = functionEnvironment(janitor({ registryUrl: url })).REGISTRY_URL;
    });
    let configUrl: unknown = null;
    const config = accepts(() => {
      configUrl = loadConfig({ ...ENV, REGISTRY_URL: url }).registryUrl;
    });
    let clientUrl: unknown = null;
    const client = accepts(() => {
      clientUrl = createRegistryClient({ url }).baseUrl;
    });
    expect({ construct, config, client }).toEqual({ construct: valid, config: valid, client: valid });
    expect({ constructUrl, configUrl, clientUrl }).toEqual({
      constructUrl: origin,
      configUrl: origin,
      clientUrl: origin,
    });
  });
});

describe('GC modes: one list', () => {
  it.each([
    ...GC_MODES.map((mode) => ({ mode: mode, valid: true })),
    { mode: 'fast', valid: false },
    { mode: 'ReadOnly', valid: false },
  ])('$mode valid: $valid everywhere', ({ mode, valid }) => {
    expect({
      construct: accepts(() => janitor({ gcMode: mode as never })),
      config: accepts(() => loadConfig({ ...ENV, GC_MODE: mode })),
      context: accepts(() => parseAppContext({ ...CONTEXT, gcMode: mode }, { defaultPolicyFile: 'x' })),
      gcOptions: accepts(() => gcParameters({ mode: mode as never })),
      document: documentAccepts('mode', mode),
    }).toEqual({ construct: valid, config: valid, context: valid, gcOptions: valid, document: valid });
  });

  it('defaults to the same mode everywhere', () => {
    expect(loadConfig(ENV).gc.mode).toBe(DEFAULT_GC_MODE);
    expect(GC_DEFAULTS.mode).toBe(DEFAULT_GC_MODE);
    const parameters = gcDocumentContent('#!/bin/sh\n').parameters as Record<string, { default: string }>;
    expect(parameters.mode!.default).toBe(DEFAULT_GC_MODE);
    expect(parameters.containerName!.default).toBe(DEFAULT_CONTAINER_NAME);
    expect(parameters.executionTimeout!.default).toBe(String(DEFAULT_GC_TIMEOUT_SECONDS));
  });
});

describe('the delete guard: a share from 0 to 1', () => {
  it.each([
    { fraction: '0', valid: true },
    { fraction: '0.25', valid: true },
    { fraction: '1', valid: true },
    { fraction: '1.5', valid: false },
    { fraction: '-0.1', valid: false },
  ])('$fraction valid: $valid everywhere', ({ fraction, valid }) => {
    expect({
      construct: accepts(() => janitor({ maxDeleteFraction: Number(fraction) })),
      config: accepts(() => loadConfig({ ...ENV, MAX_DELETE_FRACTION: fraction })),
      context: accepts(() =>
        parseAppContext({ ...CONTEXT, maxDeleteFraction: fraction }, { defaultPolicyFile: 'x' }),
      ),
    }).toEqual({ construct: valid, config: valid, context: valid });
  });

  it('refuses what is not a number in the config and the context alike', () => {
    expect(accepts(() => loadConfig({ ...ENV, MAX_DELETE_FRACTION: '50%' }))).toBe(false);
    expect(
      accepts(() => parseAppContext({ ...CONTEXT, maxDeleteFraction: '50%' }, { defaultPolicyFile: 'x' })),
    ).toBe(false);
    expect(accepts(() => janitor({ maxDeleteFraction: Number.NaN }))).toBe(false);
  });

  it('defaults to the contract value', () => {
    expect(loadConfig(ENV).maxDeleteFraction).toBe(DEFAULT_MAX_DELETE_FRACTION);
  });
});

describe('token realm hosts: host or host:port, lower-cased', () => {
  it.each([
    { host: 'auth.internal', spelled: 'auth.internal' },
    { host: 'Auth.Internal:5001', spelled: 'auth.internal:5001' },
    { host: '[::1]:5001', spelled: '[::1]:5001' },
    // The config loader passed these through to the client, which then failed on the first run, not at deploy.
    { host: 'https://auth.internal', spelled: null },
    { host: 'auth.internal/token', spelled: null },
    { host: '-auth', spelled: null },
  ])('$host → $spelled in the construct, the config, the context and the client', ({ host, spelled }) => {
    let configHosts: unknown = null;
    const config = accepts(() => {
      configHosts = loadConfig({ ...ENV, TOKEN_REALM_HOSTS: host }).tokenRealmHosts;
    });
    let clientHosts: unknown = null;
    const client = accepts(() => {
      clientHosts = normaliseRealmHosts([host]);
    });
    const construct = accepts(() => janitor({ tokenRealmHosts: [host] }));
    const context = accepts(() =>
      parseAppContext({ ...CONTEXT, tokenRealmHosts: host }, { defaultPolicyFile: 'x' }),
    );
    const valid = spelled !== null;
    expect({ construct, config, context, client }).toEqual({
      construct: valid,
      config: valid,
      context: valid,
      client: valid,
    });
    if (valid)
      expect({ configHosts, clientHosts }).toEqual({ configHosts: [spelled], clientHosts: [spelled] });
  });
});

describe('names shared by the function and the construct', () => {
  it('the manifest parser and the registry client ask for the same media types', () => {
    expect(Object.values(MEDIA_TYPES).sort()).toEqual([...MANIFEST_ACCEPT].sort());
  });

  it("every alarm and dashboard metric of ours is one the function publishes, in the contract's namespace", () => {
    const template = Template.fromStack(Stack.of(janitor({})));
    const published = new Set<string>(Object.values(METRICS));
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as {
      Properties: { MetricName: string; Namespace: string };
    }[];
    const ours = alarms.filter((a) => !a.Properties.Namespace.startsWith('AWS/'));
    expect(ours.length).toBeGreaterThan(0);
    for (const { Properties } of ours) {
      expect(Properties.Namespace).toBe(METRIC_NAMESPACE);
      expect(published).toContain(Properties.MetricName);
    }
    const body = JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard')));
    const widgets = [...body.matchAll(/\\"([A-Za-z]+)\\",\\"([A-Za-z]+)\\",\\"service\\"/g)];
    expect(widgets.length).toBeGreaterThan(0);
    for (const [, namespace, name] of widgets) {
      expect(namespace).toBe(METRIC_NAMESPACE);
      expect(published).toContain(name);
    }
  });
});
