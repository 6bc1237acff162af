// Reads the registry credentials and the optional CA bundle from SSM Parameter Store, so no secret ever sits
// in an environment variable. Error messages name the parameter and the fix, never its value.
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError, JanitorError, errorMessage } from '../core/errors.ts';

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

const EXPECTED = 'expected `user:password` or JSON {"username": "…", "password": "…"}';

/**
 * Registry credentials from a SecureString parameter holding `user:password` (the password may contain `:`)
 * or JSON `{"username","password"}`. A plain String parameter is refused: a password belongs in a SecureString.
 */
export async function readCredentials(client: SSMClient, name: string): Promise<RegistryCredentials> {
  const { value, type } = await getParameter(client, name);
  if (type !== 'SecureString') {
    throw new ConfigError(
      `SSM parameter ${name} is a ${type ?? 'parameter of unknown type'}, but it holds registry credentials: ` +
        `store it as a SecureString (aws ssm put-parameter --name ${name} --type SecureString --overwrite --value …).`,
    );
  }
  return parseCredentials(value, name);
}

/** Any parameter's value as stored (SecureStrings decrypted), e.g. a PEM CA bundle. */
export async function readParameter(client: SSMClient, name: string): Promise<string> {
  return (await getParameter(client, name)).value;
}

/**
 * Parse a credentials value. Pure, exported for tests and for the CLI. The value is never part of an error
 * message or cause: JSON.parse errors quote their input, so they are dropped.
 */
export function parseCredentials(raw: string, name: string): RegistryCredentials {
  // A value pasted from a file often ends with a newline that is no part of the password.
  const value = raw.replace(/\r?\n$/, '');
  if (value.trimStart().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new ConfigError(`SSM parameter ${name} starts with "{" but is not valid JSON; ${EXPECTED}.`);
    }
    const { username, password } = (parsed ?? {}) as Record<string, unknown>;
    if (typeof username !== 'string' || typeof password !== 'string' || !username || !password) {
      throw new ConfigError(
        `SSM parameter ${name} is JSON without non-empty string fields "username" and "password"; ${EXPECTED}.`,
      );
    }
    return { username, password };
  }
  const colon = value.indexOf(':');
  if (colon < 0)
    throw new ConfigError(`SSM parameter ${name} has no ":" between user and password; ${EXPECTED}.`);
  const username = value.slice(0, colon);
  const password = value.slice(colon + 1);
  if (!username) throw new ConfigError(`SSM parameter ${name} has an empty user name; ${EXPECTED}.`);
  if (!password) throw new ConfigError(`SSM parameter ${name} has an empty password; ${EXPECTED}.`);
  return { username, password };
}

async function getParameter(
  client: SSMClient,
  name: string,
): Promise<{ value: string; type: string | undefined }> {
  let parameter;
  try {
    parameter = (await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter;
  } catch (err) {
    throw parameterError(err, name);
  }
  if (parameter?.Value === undefined) {
    throw new JanitorError(
      `SSM GetParameter for ${name} answered without a value; check the parameter in the console.`,
    );
  }
  return { value: parameter.Value, type: parameter.Type };
}

function parameterError(err: unknown, name: string): Error {
  const what = err instanceof Error ? err.name : '';
  switch (what) {
    case 'ParameterNotFound':
      return new ConfigError(
        `SSM parameter ${name} does not exist in this account and region: create it ` +
          `(aws ssm put-parameter --name ${name} --type SecureString --value …) or correct the configured name.`,
        { cause: err },
      );
    case 'AccessDeniedException':
      return new ConfigError(
        `Not allowed to read SSM parameter ${name}: grant ssm:GetParameter on it, and kms:Decrypt on its KMS key ` +
          `when it is a SecureString with a customer managed key (${errorMessage(err)}).`,
        { cause: err },
      );
    case 'InvalidKeyId':
      return new ConfigError(
        `SSM parameter ${name} cannot be decrypted: its KMS key is invalid, disabled or not usable by this role ` +
          `(${errorMessage(err)}).`,
        { cause: err },
      );
    default:
      return new JanitorError(`Could not read SSM parameter ${name}: ${errorMessage(err)}`, { cause: err });
  }
}
