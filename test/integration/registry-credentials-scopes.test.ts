// Token scopes and where credentials go (issue 9 items 6 and 7), through the CLI against a real distribution
// 2.8 registry with token auth and the real test token server, which records every scope asked for.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../lambda/cli/main.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { cli } from '../support/cli.ts';
import { htpasswdAuthConfig, writeHtpasswd } from '../support/htpasswd.ts';
import { startLocalRegistry, type LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { SCENARIO_POLICY, seedScenario } from '../../lambda/demo/scenario.ts';
import { startTokenServer, type TokenServer } from '../support/token-server.ts';

const PASSWORD = 'ci-pw';
const users = {
  ci: {
    password: PASSWORD,
    grants: [
      { type: 'repository' as const, name: '*', actions: ['*'] },
      { type: 'registry' as const, name: 'catalog', actions: ['*'] },
    ],
  },
};

describe('token scopes and credentials against a real registry (distribution 2.8)', () => {
  let dir: string;
  let policyFile: string;
  let tokens: TokenServer;
  let otherHostTokens: TokenServer;
  let registry: LocalRegistry;
  let otherHostRegistry: LocalRegistry;
  let htpasswdRegistry: LocalRegistry;
  const login = ['--username', 'ci', '--password-stdin'];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rj-scopes-'));
    policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, SCENARIO_POLICY);
    // Seed without auth, then serve the same storage behind token auth.
    const storageDir = join(dir, 'storage');
    const open = await startLocalRegistry({ storageDir });
    try {
      await seedScenario(open);
    } finally {
      await open.dispose();
    }
    [tokens, otherHostTokens] = await Promise.all([
      startTokenServer({ users }),
      startTokenServer({ users, host: '127.0.0.2' }),
    ]);
    [registry, otherHostRegistry, htpasswdRegistry] = await Promise.all([
      startLocalRegistry({ storageDir, extraConfig: tokens.registryAuthConfig() }),
      startLocalRegistry({ extraConfig: otherHostTokens.registryAuthConfig() }),
      startLocalRegistry({ extraConfig: htpasswdAuthConfig(writeHtpasswd(dir, { ci: PASSWORD })) }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([registry?.dispose(), otherHostRegistry?.dispose(), htpasswdRegistry?.dispose()]);
    await Promise.all([tokens?.stop(), otherHostTokens?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Repository → the actions asked for it, over the token requests from index `from` on. */
  const asked = (from: number): Map<string, Set<string>> => {
    const out = new Map<string, Set<string>>();
    for (const r of tokens.requests.slice(from)) {
      for (const scope of r.scopes) {
        const m = /^repository:(.+):([^:]+)$/.exec(scope);
        if (!m) continue;
        const set = out.get(m[1]!) ?? new Set<string>();
        for (const a of m[2]!.split(',')) set.add(a);
        out.set(m[1]!, set);
      }
    }
    return out;
  };
  const withAction = (scopes: Map<string, Set<string>>, action: string): string[] =>
    [...scopes].filter(([, actions]) => actions.has(action)).map(([name]) => name);

  it('plan asks for pull only, in every repository', async () => {
    const from = tokens.requests.length;
    const r = await cli(
      ['plan', '--registry', registry.url, '--policy', policyFile, '--allow-insecure-http', ...login],
      { stdin: `${PASSWORD}\n` },
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT.ok);
    const scopes = asked(from);
    expect(scopes.size).toBeGreaterThan(3);
    expect([...scopes.values()].every((a) => a.size === 1 && a.has('pull'))).toBe(true);
    expect(tokens.requests.slice(from).every((q) => q.status === 200)).toBe(true);
  });

  it('apply asks for delete only in the repositories it deletes from, never in a protected one', async () => {
    const planned = await cli(
      [
        'plan',
        '--registry',
        registry.url,
        '--policy',
        policyFile,
        '--json',
        '--allow-insecure-http',
        ...login,
      ],
      { stdin: `${PASSWORD}\n` },
    );
    expect(planned.code).toBe(EXIT.ok);
    const plan = JSON.parse(planned.out) as Plan;
    const deleting = plan.repositories
      .filter((repo) => repo.deleteTags.length > 0 || repo.deleteManifests.length > 0)
      .map((repo) => repo.name)
      .sort();
    const protectedRepos = plan.repositories
      .filter((repo) => repo.name.startsWith('legacy/'))
      .map((x) => x.name);
    expect(deleting.length).toBeGreaterThan(0);
    expect(protectedRepos.length).toBeGreaterThan(0);
    expect(plan.repositories.length).toBeGreaterThan(deleting.length);

    const from = tokens.requests.length;
    const r = await cli(
      [
        'apply',
        '--registry',
        registry.url,
        '--policy',
        policyFile,
        '--yes',
        '--allow-insecure-http',
        ...login,
      ],
      { stdin: `${PASSWORD}\n` },
    );
    expect(r.code).toBe(EXIT.ok);
    const scopes = asked(from);
    expect(withAction(scopes, 'delete').sort()).toEqual(deleting);
    for (const name of protectedRepos) expect([...(scopes.get(name) ?? [])]).toEqual(['pull']);
    // 2.8 removes tags with placeholder manifests (PUT needs push): only where it deletes.
    expect(withAction(scopes, 'push').every((name) => deleting.includes(name))).toBe(true);
  });

  it('a token realm on another host gets the credentials only with --token-realm-host', async () => {
    const args = [
      'plan',
      '--registry',
      otherHostRegistry.url,
      '--policy',
      policyFile,
      '--allow-insecure-http',
    ];
    const refused = await cli([...args, ...login], { stdin: `${PASSWORD}\n` });
    expect(refused.code).not.toBe(EXIT.ok);
    expect(refused.out + refused.err).toMatch(
      /on host 127\.0\.0\.2, not the registry's own .*--token-realm-host 127\.0\.0\.2/,
    );
    expect(otherHostTokens.requests).toEqual([]);

    const allowed = await cli([...args, '--token-realm-host', '127.0.0.2', ...login], {
      stdin: `${PASSWORD}\n`,
    });
    expect(allowed.err).toBe('');
    expect(allowed.code).toBe(EXIT.ok);
    expect(otherHostTokens.requests.length).toBeGreaterThan(0);
    expect(otherHostTokens.requests.every((q) => q.user === 'ci' && q.status === 200)).toBe(true);
  });

  it('htpasswd over plain http: refused with the fix unless --allow-insecure-http', async () => {
    const args = ['plan', '--registry', htpasswdRegistry.url, '--policy', policyFile, ...login];
    const refused = await cli(args, { stdin: `${PASSWORD}\n` });
    expect(refused.code).toBe(EXIT.badInput);
    expect(refused.err).toMatch(/plain http.*use an https:\/\/ registry URL, or.*--allow-insecure-http/);
    const allowed = await cli([...args, '--allow-insecure-http'], { stdin: `${PASSWORD}\n` });
    expect(allowed.err).toBe('');
    expect(allowed.code).toBe(EXIT.ok);
  });
});
