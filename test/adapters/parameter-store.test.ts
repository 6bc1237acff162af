// Parameter Store reader: good and bad credential values, missing parameters and denied access, against
// aws-sdk-client-mock and against the real SDK talking to the local SSM stand-in.
import {
  AccessDeniedException,
  GetParameterCommand,
  InvalidKeyId,
  ParameterNotFound,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, JanitorError } from '../../lambda/core/errors.ts';
import { parseCredentials, readCredentials, readParameter } from '../../lambda/adapters/parameter-store.ts';
import { startSsmStandIn, type SsmStandIn } from '../support/ssm-stand-in.ts';

const NAME = '/registry-janitor/credentials';
const meta = { $metadata: {} };

const good = [
  { value: 'janitor:s3cret', username: 'janitor', password: 's3cret' },
  { value: 'janitor:pa:ss:word', username: 'janitor', password: 'pa:ss:word' },
  { value: 'janitor:s3cret\n', username: 'janitor', password: 's3cret' },
  { value: 'janitor: leading space', username: 'janitor', password: ' leading space' },
  { value: '{"username":"janitor","password":"p:w{}"}', username: 'janitor', password: 'p:w{}' },
  { value: ' {"username": "u", "password": "p", "extra": 1}\n', username: 'u', password: 'p' },
];

// Each value carries a unique marker (Zq..), so a message or cause echoing the value would be caught.
const bad = [
  { value: 'no-colon-Zq81', why: /no ":"/ },
  { value: ':only-password-Zq82', why: /empty user name/ },
  { value: 'user-Zq83:', why: /empty password/ },
  { value: '', why: /no ":"/ },
  { value: '{"username":"u-Zq84","password":', why: /not valid JSON/ },
  { value: '{"user":"u-Zq85","pass":"p-Zq85"}', why: /"username" and "password"/ },
  { value: '{"username":"u-Zq86","password":""}', why: /"username" and "password"/ },
  { value: '{"username":"u-Zq87","password":42}', why: /"username" and "password"/ },
  { value: '{}', why: /"username" and "password"/ },
];

function expectNoSecret(err: unknown, value: string): void {
  expect(err).toBeInstanceOf(ConfigError);
  const cause = (err as Error).cause;
  const text = `${(err as Error).message} ${cause instanceof Error ? cause.message : ''}`;
  for (const marker of value.match(/Zq\d\d/g) ?? []) expect(text).not.toContain(marker);
}

describe('parseCredentials', () => {
  it.each(good)('accepts $value', ({ value, username, password }) => {
    expect(parseCredentials(value, NAME)).toEqual({ username, password });
  });

  it.each(bad)('refuses $value, naming the parameter and not echoing it', ({ value, why }) => {
    const err = (() => {
      try {
        parseCredentials(value, NAME);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).toContain(NAME);
    expectNoSecret(err, value);
  });
});

describe('Parameter Store reader (mocked SSM)', () => {
  function mocked() {
    const client = new SSMClient({ region: 'us-east-1' });
    return { client, mock: mockClient(client) };
  }

  it('asks for the decrypted value and parses it', async () => {
    const { client, mock } = mocked();
    mock.on(GetParameterCommand).resolves({ Parameter: { Name: NAME, Type: 'SecureString', Value: 'a:b' } });
    await expect(readCredentials(client, NAME)).resolves.toEqual({ username: 'a', password: 'b' });
    expect(mock.commandCalls(GetParameterCommand)[0]!.args[0].input).toEqual({
      Name: NAME,
      WithDecryption: true,
    });
  });

  it('refuses credentials kept in a plain String parameter', async () => {
    const { client, mock } = mocked();
    mock.on(GetParameterCommand).resolves({ Parameter: { Name: NAME, Type: 'String', Value: 'a:b-Zq90' } });
    const err = await readCredentials(client, NAME).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/SecureString/);
    expectNoSecret(err, 'b-Zq90');
  });

  it.each([
    {
      error: new ParameterNotFound({ message: '', ...meta }),
      type: ConfigError,
      fix: /does not exist.*put-parameter/,
    },
    {
      error: new AccessDeniedException({
        Message: 'User is not authorized',
        message: 'User is not authorized',
        ...meta,
      }),
      type: ConfigError,
      fix: /ssm:GetParameter.*kms:Decrypt/,
    },
    { error: new InvalidKeyId({ message: 'key disabled', ...meta }), type: ConfigError, fix: /KMS key/ },
    { error: new Error('socket hang up'), type: JanitorError, fix: /socket hang up/ },
  ])('turns $error.name into an error naming the parameter and the fix', async ({ error, type, fix }) => {
    const { client, mock } = mocked();
    mock.on(GetParameterCommand).rejects(error);
    for (const read of [readCredentials, readParameter]) {
      const err = await read(client, NAME).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(type);
      expect((err as Error).message).toContain(NAME);
      expect((err as Error).message).toMatch(fix);
      expect((err as Error).cause).toBe(error);
    }
  });

  it('reads any parameter as stored for the CA bundle', async () => {
    const { client, mock } = mocked();
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    mock.on(GetParameterCommand).resolves({ Parameter: { Name: '/ca', Type: 'String', Value: pem } });
    await expect(readParameter(client, '/ca')).resolves.toBe(pem);
  });
});

describe('Parameter Store reader against the SSM stand-in (real SDK)', () => {
  let standIn: SsmStandIn;
  let client: SSMClient;

  beforeAll(async () => {
    standIn = await startSsmStandIn({ parameters: { [NAME]: 'janitor:pa:ss' } });
    client = new SSMClient({
      region: 'us-east-1',
      endpoint: standIn.endpoint,
      credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' },
    });
  });
  afterAll(async () => {
    await standIn.close();
  });

  it('reads and decrypts a seeded SecureString', async () => {
    await expect(readCredentials(client, NAME)).resolves.toEqual({ username: 'janitor', password: 'pa:ss' });
    const sent = standIn.requestsFor('GetParameter').at(-1)!;
    expect(sent.input).toEqual({ Name: NAME, WithDecryption: true });
  });

  it.each([...good.map((g) => ({ ...g, ok: true })), ...bad.map((b) => ({ ...b, ok: false }))])(
    'round-trips $value through the service (ok: $ok)',
    async ({ value, ok }) => {
      standIn.setParameter('/table', value);
      if (ok) await expect(readCredentials(client, '/table')).resolves.toHaveProperty('username');
      else expectNoSecret(await readCredentials(client, '/table').catch((e: unknown) => e), value);
    },
  );

  it('reports a missing parameter as a ConfigError naming it', async () => {
    await expect(readCredentials(client, '/nope')).rejects.toThrow(ConfigError);
    await expect(readParameter(client, '/nope')).rejects.toThrow(/\/nope does not exist/);
  });

  it('reports denied access with the permission to grant', async () => {
    standIn.failNext('GetParameter', { type: 'AccessDeniedException', message: 'not authorized' });
    const err = await readCredentials(client, NAME).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/ssm:GetParameter/);
  });

  it('returns a CA bundle exactly as stored', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIBstandin\n-----END CERTIFICATE-----\n';
    standIn.setParameter('/ca', pem, 'String');
    await expect(readParameter(client, '/ca')).resolves.toBe(pem);
  });
});
