// Builds the registry client from the flags and the environment (URL, credentials, TLS, concurrency).
import { createRegistryClient, type RegistryHttpClient } from '../adapters/registry-client.ts';
import { ConfigError } from '../core/errors.ts';
import { DEFAULT_CONCURRENCY, MAX_CONCURRENCY } from '../core/contract.ts';
import { number, readText, type Values } from './args.ts';
import { userPath, type CliIo } from './io.ts';

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export async function buildClient(
  values: Values,
  io: CliIo,
  forDelete: boolean,
): Promise<RegistryHttpClient> {
  const url = values.registry ?? io.env.REGISTRY_URL;
  if (!url)
    throw new ConfigError(
      '--registry is required (or set REGISTRY_URL), e.g. --registry https://registry.internal:5000',
    );
  const username = values.username ?? io.env.REGISTRY_USERNAME;
  let password = io.env.REGISTRY_PASSWORD;
  if (values['password-stdin']) {
    if (io.stdin.isTTY)
      throw new ConfigError(
        '--password-stdin reads the password from a pipe, e.g. `cat pw | registry-janitor …`',
      );
    password = await readStdin(io.stdin);
  }
  if ((username === undefined) !== (password === undefined)) {
    throw new ConfigError(
      username === undefined
        ? 'a password was given without a user: add --username (or REGISTRY_USERNAME)'
        : `user "${username}" needs a password: --password-stdin or REGISTRY_PASSWORD`,
    );
  }
  return createRegistryClient({
    url,
    ...(username !== undefined && password !== undefined ? { username, password } : {}),
    ...(values['ca-file'] ? { caPem: readText(userPath(io, values['ca-file']), 'the CA file') } : {}),
    ...(values.insecure ? { insecure: true } : {}),
    concurrency: number(values.concurrency, '--concurrency', 1, MAX_CONCURRENCY, DEFAULT_CONCURRENCY, true),
    actions: forDelete ? 'pull,delete' : 'pull',
    ...(values['allow-insecure-http'] ? { allowInsecureHttp: true } : {}),
    ...(values['token-realm-host'] ? { tokenRealmHosts: values['token-realm-host'] } : {}),
    ...(values['max-list-pages'] !== undefined
      ? {
          maxListPages: number(
            values['max-list-pages'],
            '--max-list-pages',
            1,
            Number.MAX_SAFE_INTEGER,
            0,
            true,
          ),
        }
      : {}),
    ...(values['max-list-entries'] !== undefined
      ? {
          maxListEntries: number(
            values['max-list-entries'],
            '--max-list-entries',
            1,
            Number.MAX_SAFE_INTEGER,
            0,
            true,
          ),
        }
      : {}),
  });
}
