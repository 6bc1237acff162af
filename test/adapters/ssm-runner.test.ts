// SsmCommandRunner: unit tests against aws-sdk-client-mock, then the real SDK against the local SSM stand-in.
import {
  AccessDeniedException,
  CancelCommandCommand,
  GetCommandInvocationCommand,
  InvalidInstanceId,
  InvocationDoesNotExist,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  SSMClient,
  type GetCommandInvocationCommandOutput,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, GcError } from '../../lambda/core/errors.ts';
import { gcParameters, parseGcOutput } from '../../lambda/core/gc-script.ts';
import { gcDocumentContent } from '../../lib/gc-document.ts';
import { SsmCommandRunner, createSsmClient, parseInstanceTag } from '../../lambda/adapters/ssm-runner.ts';
import {
  SSM_OUTPUT_LIMIT,
  shellDocument,
  startSsmStandIn,
  type SsmStandIn,
} from '../support/ssm-stand-in.ts';

const INSTANCE = 'i-0123456789abcdef0';
const OTHER = 'i-0fedcba9876543210';
const COMMAND_ID = '11111111-2222-3333-4444-555555555555';
const DOCUMENT = 'RegistryJanitorStack-GcDocument-AbC123';
const PARAMETERS = { containerName: 'registry', mode: 'readonly' };
const meta = { $metadata: {} };
const notYet = (): InvocationDoesNotExist => new InvocationDoesNotExist({ message: '', ...meta });

function invocation(over: Partial<GetCommandInvocationCommandOutput>): GetCommandInvocationCommandOutput {
  return {
    CommandId: COMMAND_ID,
    InstanceId: INSTANCE,
    ResponseCode: -1,
    Status: 'InProgress',
    ...meta,
    ...over,
  };
}

/** A mocked client plus a fake clock that only moves when the runner sleeps. */
function setup() {
  const client = new SSMClient({ region: 'us-east-1' });
  const mock = mockClient(client);
  mock.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
  let now = 0;
  const slept: number[] = [];
  const sleep = (ms: number): Promise<void> => {
    slept.push(ms);
    now += ms;
    return Promise.resolve();
  };
  return { client, mock, sleep, slept, elapsed: () => now };
}

function sentInput(mock: ReturnType<typeof setup>['mock']) {
  const calls = mock.commandCalls(SendCommandCommand);
  expect(calls).toHaveLength(1);
  return calls[0]!.args[0].input;
}

describe('SsmCommandRunner (mocked SSM)', () => {
  it.each([
    { status: 'Success', code: 0, exitCode: 0 },
    { status: 'Failed', code: 3, exitCode: 3 },
    { status: 'TimedOut', code: -1, exitCode: null },
    { status: 'Cancelled', code: -1, exitCode: null },
  ] as const)('maps $status (ResponseCode $code) to the result', async ({ status, code, exitCode }) => {
    const { client, mock, sleep } = setup();
    mock
      .on(GetCommandInvocationCommand)
      .resolvesOnce(invocation({ Status: 'Pending' }))
      .resolves(
        invocation({
          Status: status,
          StatusDetails: status,
          ResponseCode: code,
          StandardOutputContent: 'out\n',
          StandardErrorContent: 'err\n',
        }),
      );
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      sleep,
    });
    await expect(runner.run(PARAMETERS)).resolves.toEqual({
      status,
      exitCode,
      stdout: 'out\n',
      stderr: 'err\n',
      commandId: COMMAND_ID,
      instanceId: INSTANCE,
      statusDetails: status,
    });
    expect(mock.commandCalls(GetCommandInvocationCommand)[0]!.args[0].input).toEqual({
      CommandId: COMMAND_ID,
      InstanceId: INSTANCE,
    });
  });

  it("sends the janitor's document to the instance with the parameters, default 1 h timeout and no log group", async () => {
    const { client, mock, sleep } = setup();
    mock.on(GetCommandInvocationCommand).resolves(invocation({ Status: 'Success', ResponseCode: 0 }));
    await new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      sleep,
    }).run({
      containerName: 'reg',
      mode: 'offline',
    });
    const input = sentInput(mock);
    expect(input).toEqual({
      DocumentName: DOCUMENT,
      Comment: 'registry-janitor',
      TimeoutSeconds: 600,
      InstanceIds: [INSTANCE],
      Parameters: { containerName: ['reg'], mode: ['offline'], executionTimeout: ['3600'] },
    });
    expect(input.Targets).toBeUndefined();
    expect(input.CloudWatchOutputConfig).toBeUndefined();
  });

  it.each([
    {
      name: 'constructor option',
      options: { executionTimeoutSeconds: 900 },
      call: undefined,
      expected: '900',
    },
    { name: 'per-run override', options: { executionTimeoutSeconds: 900 }, call: 120, expected: '120' },
    { name: 'default', options: {}, call: undefined, expected: '3600' },
  ])('passes executionTimeout from the $name', async ({ options, call, expected }) => {
    const { client, mock, sleep } = setup();
    mock.on(GetCommandInvocationCommand).resolves(invocation({ Status: 'Success', ResponseCode: 0 }));
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      sleep,
      ...options,
    });
    await runner.run(PARAMETERS, call === undefined ? undefined : { timeoutSeconds: call });
    expect(sentInput(mock).Parameters?.executionTimeout).toEqual([expected]);
  });

  it.each([0, -5, 1.5, 172_801])('refuses execution timeout %s before sending anything', async (seconds) => {
    const { client, mock, sleep } = setup();
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      sleep,
    });
    await expect(runner.run(PARAMETERS, { timeoutSeconds: seconds })).rejects.toThrow(ConfigError);
    expect(mock.commandCalls(SendCommandCommand)).toHaveLength(0);
    expect(
      () =>
        new SsmCommandRunner({
          documentName: DOCUMENT,
          client,
          target: { instanceId: INSTANCE },
          executionTimeoutSeconds: seconds,
        }),
    ).toThrow(/1\.\.172800/);
  });

  it('sends the output to the CloudWatch log group when one is given', async () => {
    const { client, mock, sleep } = setup();
    mock.on(GetCommandInvocationCommand).resolves(invocation({ Status: 'Success', ResponseCode: 0 }));
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      cloudWatchLogGroup: '/registry-janitor/gc',
      sleep,
    });
    await runner.run(PARAMETERS);
    expect(sentInput(mock).CloudWatchOutputConfig).toEqual({
      CloudWatchOutputEnabled: true,
      CloudWatchLogGroupName: '/registry-janitor/gc',
    });
  });

  it('retries InvocationDoesNotExist until the invocation shows up', async () => {
    const { client, mock, sleep, slept } = setup();
    mock
      .on(GetCommandInvocationCommand)
      .rejectsOnce(notYet())
      .rejectsOnce(notYet())
      .resolvesOnce(invocation({ Status: 'InProgress' }))
      .resolves(invocation({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'done\n' }));
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      pollIntervalMs: 500,
      sleep,
    });
    const result = await runner.run(PARAMETERS);
    expect(result).toMatchObject({ status: 'Success', exitCode: 0, stdout: 'done\n' });
    expect(mock.commandCalls(GetCommandInvocationCommand)).toHaveLength(4);
    expect(slept).toEqual([500, 500, 500]);
  });

  it('gives up with a GcError when the invocation never becomes visible', async () => {
    const { client, mock, sleep } = setup();
    mock.on(GetCommandInvocationCommand).rejects(notYet());
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      pollIntervalMs: 1000,
      invocationVisibleWithinMs: 5000,
      sleep,
    });
    const err = await runner.run(PARAMETERS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GcError);
    expect((err as Error).message).toContain(COMMAND_ID);
    expect(mock.commandCalls(GetCommandInvocationCommand)).toHaveLength(6);
  });

  it('returns InProgress with the command id when only the reserve is left', async () => {
    const { client, mock, sleep, elapsed } = setup();
    mock
      .on(GetCommandInvocationCommand)
      .resolves(invocation({ Status: 'InProgress', StatusDetails: 'InProgress' }));
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      remainingTimeMs: () => 45_000 - elapsed(),
      pollIntervalMs: 4000,
      sleep,
    });
    const result = await runner.run(PARAMETERS);
    expect(result).toEqual({
      status: 'InProgress',
      exitCode: null,
      stdout: '',
      stderr: '',
      commandId: COMMAND_ID,
      instanceId: INSTANCE,
      statusDetails: 'InProgress',
    });
    // 45 s left, 30 s reserve: 4+4+4+3 s of waiting, never into the reserve.
    expect(elapsed()).toBe(15_000);
    expect(mock.commandCalls(CancelCommandCommand)).toHaveLength(0);
  });

  it('returns InProgress when time runs out before the invocation is even visible', async () => {
    const { client, mock, sleep } = setup();
    mock.on(GetCommandInvocationCommand).rejects(notYet());
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      remainingTimeMs: () => 10_000,
      sleep,
    });
    await expect(runner.run(PARAMETERS)).resolves.toMatchObject({
      status: 'InProgress',
      commandId: COMMAND_ID,
    });
  });

  it('keeps waiting through Delayed and Cancelling', async () => {
    const { client, mock, sleep } = setup();
    mock
      .on(GetCommandInvocationCommand)
      .resolvesOnce(invocation({ Status: 'Delayed' }))
      .resolvesOnce(invocation({ Status: 'Cancelling' }))
      .resolves(invocation({ Status: 'Cancelled' }));
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      sleep,
    });
    await expect(runner.run(PARAMETERS)).resolves.toMatchObject({ status: 'Cancelled', exitCode: null });
    expect(mock.commandCalls(GetCommandInvocationCommand)).toHaveLength(3);
  });

  it.each([
    {
      error: new InvalidInstanceId({ message: 'Instances not in a valid state', ...meta }),
      type: ConfigError,
      fix: /SSM agent/,
    },
    {
      error: new AccessDeniedException({ Message: 'no', message: 'no', ...meta }),
      type: GcError,
      fix: /ssm:SendCommand/,
    },
  ])('turns a SendCommand $error.name into an error with the fix', async ({ error, type, fix }) => {
    const { client, mock, sleep } = setup();
    mock.on(SendCommandCommand).rejects(error);
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      sleep,
    });
    const err = await runner.run(PARAMETERS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(type);
    expect((err as Error).message).toMatch(fix);
    expect((err as Error).cause).toBe(error);
  });

  it('reports a GetCommandInvocation failure other than InvocationDoesNotExist', async () => {
    const { client, mock, sleep } = setup();
    mock
      .on(GetCommandInvocationCommand)
      .rejects(new AccessDeniedException({ Message: 'denied', message: 'denied', ...meta }));
    const runner = new SsmCommandRunner({
      documentName: DOCUMENT,
      client,
      target: { instanceId: INSTANCE },
      sleep,
    });
    await expect(runner.run(PARAMETERS)).rejects.toThrow(/ssm:GetCommandInvocation/);
  });

  it('refuses a malformed instance id', () => {
    const { client } = setup();
    expect(
      () => new SsmCommandRunner({ documentName: DOCUMENT, client, target: { instanceId: 'registry-host' } }),
    ).toThrow(ConfigError);
  });

  describe('tag targets', () => {
    const target = { tagKey: 'Role', tagValue: 'docker-registry' };

    it('targets the tag one host at a time, finds the invocation by listing, then follows it', async () => {
      const { client, mock, sleep } = setup();
      mock
        .on(ListCommandInvocationsCommand)
        .resolvesOnce({ CommandInvocations: [] })
        .resolves({ CommandInvocations: [{ CommandId: COMMAND_ID, InstanceId: INSTANCE }] });
      mock
        .on(GetCommandInvocationCommand)
        .resolvesOnce(invocation({ Status: 'InProgress' }))
        .resolves(invocation({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'ok\n' }));
      const result = await new SsmCommandRunner({ documentName: DOCUMENT, client, target, sleep }).run(
        PARAMETERS,
      );
      expect(result).toMatchObject({ status: 'Success', stdout: 'ok\n', instanceId: INSTANCE });
      const input = sentInput(mock);
      expect(input).toMatchObject({
        Targets: [{ Key: 'tag:Role', Values: ['docker-registry'] }],
        MaxConcurrency: '1',
        MaxErrors: '0',
      });
      expect(input.InstanceIds).toBeUndefined();
      expect(mock.commandCalls(ListCommandInvocationsCommand)[0]!.args[0].input.CommandId).toBe(COMMAND_ID);
      expect(mock.commandCalls(GetCommandInvocationCommand).map((c) => c.args[0].input.InstanceId)).toEqual([
        INSTANCE,
        INSTANCE,
      ]);
    });

    it.each([
      { when: 'while running', finished: false },
      { when: 'once the first host has finished', finished: true },
    ])('cancels and refuses when the tag matches several instances ($when)', async ({ finished }) => {
      const { client, mock, sleep } = setup();
      // The host listed first is the later one in sort order, so the message must name the one followed.
      const one = { CommandId: COMMAND_ID, InstanceId: OTHER };
      const two = { CommandId: COMMAND_ID, InstanceId: INSTANCE };
      mock
        .on(ListCommandInvocationsCommand)
        .resolvesOnce({ CommandInvocations: finished ? [one] : [one, two] })
        .resolves({ CommandInvocations: [one, two] });
      mock.on(GetCommandInvocationCommand).resolves(invocation({ Status: 'Success', ResponseCode: 0 }));
      mock.on(CancelCommandCommand).resolves({});
      const err = await new SsmCommandRunner({ documentName: DOCUMENT, client, target, sleep })
        .run(PARAMETERS)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(`${INSTANCE}, ${OTHER}`);
      expect((err as Error).message).toContain('cancelled');
      if (finished) expect((err as Error).message).toContain(`finished on ${OTHER} with status Success`);
      else expect(mock.commandCalls(GetCommandInvocationCommand)).toHaveLength(0);
      expect(mock.commandCalls(CancelCommandCommand)[0]!.args[0].input).toEqual({ CommandId: COMMAND_ID });
    });

    it('says the tag matches nothing when no invocation is ever listed', async () => {
      const { client, mock, sleep } = setup();
      mock.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [] });
      const runner = new SsmCommandRunner({
        documentName: DOCUMENT,
        client,
        target,
        sleep,
        invocationVisibleWithinMs: 10_000,
      });
      await expect(runner.run(PARAMETERS)).rejects.toThrow(/Role=docker-registry matches no instance/);
      expect(mock.commandCalls(GetCommandInvocationCommand)).toHaveLength(0);
    });
  });
});

describe('parseInstanceTag', () => {
  it.each([
    ['Role=docker-registry', 'Role', 'docker-registry'],
    [' Name = registry ', 'Name', 'registry'],
    ['tag:Role=registry', 'Role', 'registry'],
    ['aws:cloudformation:stack-name=reg', 'aws:cloudformation:stack-name', 'reg'],
    ['k=a=b', 'k', 'a=b'],
  ])('parses %j', (text, tagKey, tagValue) => {
    expect(parseInstanceTag(text)).toEqual({ tagKey, tagValue });
  });

  it.each(['', 'Role', '=registry', 'Role=', '  =  ', 'tag:=x', `${'k'.repeat(129)}=v`])(
    'refuses %j',
    (text) => {
      expect(() => parseInstanceTag(text, 'REGISTRY_INSTANCE_TAG')).toThrow(ConfigError);
      expect(() => parseInstanceTag(text, 'REGISTRY_INSTANCE_TAG')).toThrow(/REGISTRY_INSTANCE_TAG/);
    },
  );
});

describe('SsmCommandRunner against the SSM stand-in (real SDK)', () => {
  let standIn: SsmStandIn;
  const fakeCredentials = { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' };

  beforeEach(async () => {
    standIn = await startSsmStandIn({
      env: { GREETING: 'hello from the host' },
      instances: [
        { instanceId: INSTANCE, tags: { Role: 'docker-registry', Env: 'test' } },
        { instanceId: OTHER, tags: { Role: 'docker-registry', Env: 'other' } },
      ],
    });
  });
  afterEach(async () => {
    await standIn.close();
  });

  const client = (): SSMClient =>
    new SSMClient({ region: 'us-east-1', endpoint: standIn.endpoint, credentials: fakeCredentials });
  /** Registers a document that runs `script`, and returns its name. */
  let documents = 0;
  const document = (script: string): string => {
    const name = `Test-Script-${++documents}`;
    standIn.addDocument(name, shellDocument(script));
    return name;
  };

  it("returns a real script's stdout, stderr and exit code after the invocation becomes visible", async () => {
    const documentName = document('echo "$GREETING"\necho to-stderr >&2\nexit 0');
    const runner = new SsmCommandRunner({
      documentName,
      client: client(),
      target: { instanceId: INSTANCE },
      pollIntervalMs: 100,
    });
    const result = await runner.run({});
    expect(result).toMatchObject({
      status: 'Success',
      exitCode: 0,
      stdout: 'hello from the host\n',
      stderr: 'to-stderr\n',
      instanceId: INSTANCE,
    });
    const sent = standIn.requestsFor('SendCommand');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.signed).toBe(true);
    expect(sent[0]!.input).toMatchObject({ DocumentName: documentName, InstanceIds: [INSTANCE] });
    expect(result.commandId).toMatch(/^[0-9a-f-]{36}$/);
    // The first polls hit the invisible second and were retried.
    expect(standIn.requestsFor('GetCommandInvocation').length).toBeGreaterThan(1);
  });

  it('reports a failing script as Failed with its exit code', async () => {
    const runner = new SsmCommandRunner({
      documentName: document('echo partial\nexit 3'),
      client: client(),
      target: { instanceId: INSTANCE },
      pollIntervalMs: 100,
    });
    await expect(runner.run({})).resolves.toMatchObject({
      status: 'Failed',
      exitCode: 3,
      stdout: 'partial\n',
    });
  });

  it('reports TimedOut when the script outlives its execution timeout', async () => {
    const runner = new SsmCommandRunner({
      documentName: document('sleep 30'),
      client: client(),
      target: { instanceId: INSTANCE },
      pollIntervalMs: 100,
    });
    const result = await runner.run({}, { timeoutSeconds: 1 });
    expect(result).toMatchObject({ status: 'TimedOut', exitCode: null, statusDetails: 'ExecutionTimedOut' });
    expect(standIn.requestsFor('SendCommand')[0]!.input.Parameters).toMatchObject({
      executionTimeout: ['1'],
    });
  });

  it('returns InProgress with the command id when the script outlives the remaining time', async () => {
    const deadline = Date.now() + 2500;
    const runner = new SsmCommandRunner({
      documentName: document('sleep 60'),
      client: client(),
      target: { instanceId: INSTANCE },
      remainingTimeMs: () => deadline - Date.now(),
      reserveMs: 1000,
      pollIntervalMs: 100,
    });
    const result = await runner.run({});
    expect(result.status).toBe('InProgress');
    expect(result.exitCode).toBeNull();
    expect(result.commandId).toBeDefined();
    expect(standIn.invocationStatus(result.commandId!, INSTANCE)).toBe('InProgress');
  });

  it('shows only the first 24,000 characters of output, like the service', async () => {
    const runner = new SsmCommandRunner({
      documentName: document(`head -c 30000 /dev/zero | tr '\\0' x; echo; echo tail-line`),
      client: client(),
      target: { instanceId: INSTANCE },
      pollIntervalMs: 100,
    });
    const result = await runner.run({});
    expect(result.stdout).toHaveLength(SSM_OUTPUT_LIMIT);
    expect(result.stdout).not.toContain('tail-line');
  });

  it('runs on the one instance a tag matches, and records targets, rate limits and the log group', async () => {
    const runner = new SsmCommandRunner({
      documentName: document('echo tagged'),
      client: client(),
      target: { tagKey: 'Env', tagValue: 'test' },
      cloudWatchLogGroup: '/registry-janitor/gc',
      executionTimeoutSeconds: 600,
      pollIntervalMs: 100,
    });
    await expect(runner.run({})).resolves.toMatchObject({
      status: 'Success',
      stdout: 'tagged\n',
      instanceId: INSTANCE,
    });
    expect(standIn.requestsFor('SendCommand')[0]!.input).toMatchObject({
      Targets: [{ Key: 'tag:Env', Values: ['test'] }],
      MaxConcurrency: '1',
      MaxErrors: '0',
      Parameters: { executionTimeout: ['600'] },
      CloudWatchOutputConfig: {
        CloudWatchOutputEnabled: true,
        CloudWatchLogGroupName: '/registry-janitor/gc',
      },
    });
  });

  it('cancels the command and refuses when the tag matches two instances', async () => {
    const runner = new SsmCommandRunner({
      documentName: document('sleep 60'),
      client: client(),
      target: { tagKey: 'Role', tagValue: 'docker-registry' },
      pollIntervalMs: 100,
    });
    await expect(runner.run({})).rejects.toThrow(/matches 2 instances/);
    const cancelled = standIn.requestsFor('CancelCommand');
    expect(cancelled).toHaveLength(1);
    const commandId = String(cancelled[0]!.input.CommandId);
    await standIn.waitForCommand(commandId);
    expect(standIn.invocationStatus(commandId, INSTANCE)).toBe('Cancelled');
    expect(standIn.invocationStatus(commandId, OTHER)).toBe('Cancelled');
  });

  it("runs the janitor's document: its own script, the parameters sent as SSM_ variables", async () => {
    const logs = mkdtempSync(join(tmpdir(), 'rj-ssm-doc-'));
    const host = await startSsmStandIn({
      documents: { 'Janitor-Gc': gcDocumentContent() },
      // The host's own settings are no parameters; a host sets them in its environment. No engine answers here.
      env: { SSM_logDir: logs, SSM_lockPath: join(logs, 'gc.lock'), DOCKER_HOST: 'unix:///nonexistent.sock' },
    });
    try {
      const runner = new SsmCommandRunner({
        documentName: 'Janitor-Gc',
        client: new SSMClient({ region: 'us-east-1', endpoint: host.endpoint, credentials: fakeCredentials }),
        target: { instanceId: INSTANCE },
        pollIntervalMs: 100,
      });
      const result = await runner.run(
        gcParameters({ containerName: 'reg-1', mode: 'offline', dryRun: true }),
      );
      expect(parseGcOutput(result.stdout)).toMatchObject({
        status: 'failed',
        container: 'reg-1',
        modeRequested: 'offline',
        dryRun: true,
        errorCode: 'engine-error',
      });
      expect(host.requestsFor('SendCommand')[0]!.input.Parameters).toEqual({
        containerName: ['reg-1'],
        configPath: [''],
        mode: ['offline'],
        dryRun: ['true'],
        deleteUntagged: ['false'],
        executionTimeout: ['3600'],
      });
    } finally {
      await host.close();
      rmSync(logs, { recursive: true, force: true });
    }
  });

  it.each([
    [
      'a container name the pattern refuses',
      { containerName: 'reg;reboot' },
      /containerName.*does not match/,
    ],
    ['a mode outside allowedValues', { mode: 'fast' }, /mode.*must be one of readonly, offline, online/],
    ['a parameter the document does not declare', { lockPath: '/tmp/x' }, /"lockPath" is not defined/],
  ])('refuses %s at SendCommand, before anything runs', async (_name, parameters, message) => {
    const host = await startSsmStandIn({ documents: { 'Janitor-Gc': gcDocumentContent() } });
    try {
      const runner = new SsmCommandRunner({
        documentName: 'Janitor-Gc',
        client: new SSMClient({ region: 'us-east-1', endpoint: host.endpoint, credentials: fakeCredentials }),
        target: { instanceId: INSTANCE },
        pollIntervalMs: 100,
      });
      const err = await runner.run(parameters).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GcError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toMatch(/refused by the document Janitor-Gc/);
    } finally {
      await host.close();
    }
  });

  it('runs no other document, AWS-RunShellScript included', async () => {
    const runner = new SsmCommandRunner({
      documentName: 'AWS-RunShellScript',
      client: client(),
      target: { instanceId: INSTANCE },
      pollIntervalMs: 100,
    });
    await expect(runner.run({ commands: 'id' })).rejects.toThrow(/InvalidDocument|does not exist/);
  });

  describe('createSsmClient', () => {
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    it('takes its endpoint from AWS_ENDPOINT_URL_SSM, not from code', async () => {
      vi.stubEnv('AWS_ENDPOINT_URL_SSM', standIn.endpoint);
      vi.stubEnv('AWS_ENDPOINT_URL', undefined);
      vi.stubEnv('AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', undefined);
      vi.stubEnv('AWS_REGION', 'us-east-1');
      vi.stubEnv('AWS_ACCESS_KEY_ID', fakeCredentials.accessKeyId);
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', fakeCredentials.secretAccessKey);
      vi.stubEnv('AWS_SESSION_TOKEN', undefined);
      vi.stubEnv('AWS_PROFILE', undefined);
      const runner = new SsmCommandRunner({
        documentName: document('echo via-env'),
        client: createSsmClient(),
        target: { instanceId: INSTANCE },
        pollIntervalMs: 100,
      });
      await expect(runner.run({})).resolves.toMatchObject({
        status: 'Success',
        stdout: 'via-env\n',
      });
      expect(standIn.requestsFor('SendCommand')).toHaveLength(1);
    });

    it('fails fast, naming AWS_REGION, when no region is set', () => {
      vi.stubEnv('AWS_REGION', undefined);
      vi.stubEnv('AWS_DEFAULT_REGION', undefined);
      expect(() => createSsmClient()).toThrow(/AWS_REGION/);
    });
  });
});
