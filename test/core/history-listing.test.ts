// The container listing's parser (lambda/core/history-listing.ts): what a good listing becomes, and that every
// hostile or partial one (from a host or a bucket that cannot be trusted) is refused whole, saying why.
import { describe, expect, it } from 'vitest';
import { HistoryError } from '../../lambda/core/errors.ts';
import { isRepositoryName } from '../../lambda/core/contract.ts';
import { parseListing } from '../../lambda/core/history-listing.ts';

const ROOT = '/var/lib/registry';
const TOP = `${ROOT}/docker/registry/v2/repositories`;
const hex = (c: string) => c.repeat(64);
const line = (t: number, repo: string, h: string) =>
  `${t} ${TOP}/${repo}/_manifests/revisions/sha256/${h}/link`;
const text = (...lines: string[]) => lines.map((l) => `${l}\n`).join('');
const expectation = (count: number) => ({
  source: 'registry container registry on i-1: /var/lib/registry',
  root: ROOT,
  count,
});

describe('parseListing', () => {
  it('reads every revision with its push time, repositories and digests sorted', () => {
    const listing = parseListing(
      text(
        line(1_767_225_600, 'team1/app', hex('b')),
        line(1_700_000_000, 'team1/app', hex('a')),
        line(1_767_225_601, 'base', hex('c')),
      ),
      expectation(3),
    );
    expect(listing.source).toBe('registry container registry on i-1: /var/lib/registry');
    expect([...listing.repositories]).toEqual([
      ['base', [{ digest: `sha256:${hex('c')}`, pushedAt: '2026-01-01T00:00:01.000Z' }]],
      [
        'team1/app',
        [
          { digest: `sha256:${hex('a')}`, pushedAt: '2023-11-14T22:13:20.000Z' },
          { digest: `sha256:${hex('b')}`, pushedAt: '2026-01-01T00:00:00.000Z' },
        ],
      ],
    ]);
  });

  it('takes an empty listing of an empty registry', () => {
    expect(parseListing('', expectation(0)).repositories.size).toBe(0);
  });

  it('takes a storage root with a trailing slash', () => {
    const listing = parseListing(text(line(1, 'a', hex('a'))), { ...expectation(1), root: `${ROOT}/` });
    expect([...listing.repositories.keys()]).toEqual(['a']);
  });

  it.each([
    {
      name: 'a count that differs from the summary (a partial upload)',
      body: text(line(1, 'a', hex('a'))),
      count: 2,
      why: /1 lines where the host counted 2; it is not complete/,
    },
    {
      name: 'a last line cut short',
      body: `${line(1, 'a', hex('a'))}\n${line(1, 'a', hex('b'))}`,
      count: 2,
      why: /last line is cut short/,
    },
    {
      name: 'no modification time',
      body: text(`${TOP}/a/_manifests/revisions/sha256/${hex('a')}/link`),
      count: 1,
      why: /line 1 does not start with a modification time/,
    },
    {
      name: 'a negative time',
      body: text(`-5 ${TOP}/a/_manifests/revisions/sha256/${hex('a')}/link`),
      count: 1,
      why: /modification time/,
    },
    {
      name: 'a fractional time',
      body: text(`1.5 ${TOP}/a/_manifests/revisions/sha256/${hex('a')}/link`),
      count: 1,
      why: /modification time/,
    },
    {
      name: 'a path outside the storage root',
      body: text(`1 /etc/docker/registry/v2/repositories/a/_manifests/revisions/sha256/${hex('a')}/link`),
      count: 1,
      why: /line 1 is not a revision link under \/var\/lib\/registry\/docker\/registry\/v2\/repositories\//,
    },
    {
      name: 'a path that climbs out (..)',
      body: text(line(1, '../../etc', hex('a'))),
      count: 1,
      why: /names no valid repository/,
    },
    {
      name: 'a tag link, not a revision',
      body: text(`1 ${TOP}/a/_manifests/tags/latest/current/link`),
      count: 1,
      why: /names no valid repository|no sha256 digest/,
    },
    {
      name: 'a digest that is not sha256 hex',
      body: text(line(1, 'a', 'A'.repeat(64))),
      count: 1,
      why: /no sha256 digest where the revision's should be/,
    },
    { name: 'a short digest', body: text(line(1, 'a', 'a'.repeat(63))), count: 1, why: /no sha256 digest/ },
    {
      name: 'an upper-case repository',
      body: text(line(1, 'Team/App', hex('a'))),
      count: 1,
      why: /line 1 names no valid repository/,
    },
    {
      name: 'a repository with a space',
      body: text(line(1, 'team 1/app', hex('a'))),
      count: 1,
      why: /names no valid repository/,
    },
    {
      name: 'a reserved folder as a repository',
      body: text(line(1, 'a/_layers', hex('a'))),
      count: 1,
      why: /names no valid repository/,
    },
    {
      name: 'a repository name with a line break smuggled in',
      body: `1 ${TOP}/a\n/_manifests/revisions/sha256/${hex('a')}/link\n`,
      count: 1,
      why: /line 1 is not a revision link/,
    },
    {
      name: 'the same revision twice',
      body: text(line(1, 'a', hex('a')), line(2, 'a', hex('a'))),
      count: 2,
      why: /line 2 lists a@sha256:a{64} a second time/,
    },
    {
      name: 'an empty line',
      body: `${line(1, 'a', hex('a'))}\n\n`,
      count: 2,
      why: /line 2 does not start with a modification time/,
    },
  ])('refuses $name', ({ body, count, why }) => {
    let caught: unknown;
    try {
      parseListing(body, expectation(count));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(HistoryError);
    expect((caught as Error).message).toMatch(
      /^the storage listing from registry container registry on i-1: \/var\/lib\/registry was refused: /,
    );
    expect((caught as Error).message).toMatch(why);
  });

  it.each(['relative/root', '/var/lib/reg istry', '/var/lib/$(x)', ''])(
    'refuses the storage root %j',
    (root) => {
      expect(() => parseListing('', { ...expectation(0), root })).toThrow(
        /the storage root .* is not an absolute path/,
      );
    },
  );

  it('reads 100,000 revisions', () => {
    const lines: string[] = [];
    for (let r = 0; r < 200; r += 1) {
      for (let i = 0; i < 500; i += 1) {
        const h = (r * 500 + i).toString(16).padStart(64, '0');
        lines.push(line(1_700_000_000 + i * 86_400, `team${r}/app`, h));
      }
    }
    const listing = parseListing(text(...lines), expectation(100_000));
    expect(listing.repositories.size).toBe(200);
    expect([...listing.repositories.values()].reduce((n, r) => n + r.length, 0)).toBe(100_000);
  });
});

describe('isRepositoryName', () => {
  it.each(['a', 'team1/app', 'a.b_c-d/e__f', 'a--b', `${'a'.repeat(255)}`])('takes %s', (name) => {
    expect(isRepositoryName(name)).toBe(true);
  });
  it.each(['', 'A', 'a/', '/a', 'a//b', '-a', 'a_', 'a..b', 'a___b', `${'a'.repeat(256)}`, 'a b', '_layers'])(
    'refuses %j',
    (name) => {
      expect(isRepositoryName(name)).toBe(false);
    },
  );
});
