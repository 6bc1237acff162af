// Writes a bcrypt htpasswd file and the registry `auth:` section that uses it, for basic-auth integration tests.
import bcrypt from 'bcryptjs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Write `dir/htpasswd` with one bcrypt line per user; returns its path. */
export function writeHtpasswd(dir: string, users: Readonly<Record<string, string>>): string {
  const path = join(dir, 'htpasswd');
  // Cost 4 (bcrypt's minimum) keeps the registry's per-request password check fast in tests.
  const lines = Object.entries(users).map(([user, password]) => `${user}:${bcrypt.hashSync(password, 4)}`);
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o600 });
  return path;
}

/** The `auth:` block for LocalRegistryOptions.extraConfig. */
export function htpasswdAuthConfig(path: string, realm = 'registry-janitor-test'): string {
  return ['auth:', '  htpasswd:', `    realm: ${realm}`, `    path: ${path}`].join('\n');
}
