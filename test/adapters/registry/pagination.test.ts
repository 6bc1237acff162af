// Pagination against a hostile registry (issue 9 item 11): a loopback server whose Link keeps changing `last`
// (so no next-page link repeats), or advances forever. Each server stops on its own after SERVER_BOUND pages,
// so a client without caps ends (and its test fails) instead of hanging.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistryClient, type RegistryHttpClient } from '../../../lambda/adapters/registry-client.ts';
import { EXIT, main } from '../../../lambda/cli/main.ts';
import { RegistryError } from '../../../lambda/core/errors.ts';

const SERVER_BOUND = 3000;

interface Hostile {
  readonly url: string;
  readonly pages: () => number;
  readonly methods: string[];
}

let server: Server | undefined;
let client: RegistryHttpClient | undefined;

afterEach(async () => {
  await client?.close();
  client = undefined;
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** Serves catalog and tag pages; `lastOf(n)` is the `last` the Link of page n names, `size` the entries. */
async function hostile(lastOf: (page: number) => string, size = 1): Promise<Hostile> {
  let served = 0;
  const methods: string[] = [];
  server = createServer((req, res) => {
    methods.push(req.method ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    const page = served++;
    const names = Array.from({ length: size }, (_, i) => `r${page}x${i}`);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (page < SERVER_BOUND) {
      headers.link = `<${url.pathname}?n=${size}&last=${encodeURIComponent(lastOf(page))}>; rel="next"`;
    }
    res.writeHead(200, headers);
    res.end(JSON.stringify(url.pathname === '/v2/_catalog' ? { repositories: names } : { tags: names }));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pages: () => served,
    methods,
  };
}

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  const outcome = await p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) {
    throw new Error(
      `the listing ended without an error, after the server's own bound of ${SERVER_BOUND} pages`,
    );
  }
  expect(outcome.error).toBeInstanceOf(RegistryError);
  return outcome.error as RegistryError;
}

// Page n's Link goes back before page n-1's: "b0", "a1", "b2", "a3", … No link repeats, none advances.
const seesaw = (n: number): string => `${n % 2 === 0 ? 'b' : 'a'}${n}`;
// Always forward: "p000000", "p000001", …
const forward = (n: number): string => `p${String(n).padStart(6, '0')}`;

describe('pagination of a hostile registry', () => {
  it('a catalog whose `last` goes back is an error at once, naming the link', async () => {
    const h = await hostile(seesaw);
    client = createRegistryClient({ url: h.url });
    const err = await failure(client.listRepositories());
    expect(err.message).toMatch(
      /pagination of the catalog of http:\/\/127\.0\.0\.1:\d+ does not advance: after last=b0/,
    );
    expect(err.details.code).toBe('PAGINATION_LOOP');
    expect(h.pages()).toBe(2);
    expect(h.methods.every((m) => m === 'GET')).toBe(true);
  });

  it('a tag list whose `last` goes back is an error at once', async () => {
    const h = await hostile(seesaw);
    client = createRegistryClient({ url: h.url });
    const err = await failure(client.listTags('app'));
    expect(err.message).toMatch(/pagination of the tags of app does not advance/);
  });

  it('a catalog that advances forever stops at the page cap, naming the cap and the flag', async () => {
    const h = await hostile(forward);
    client = createRegistryClient({ url: h.url, maxListPages: 50 });
    const err = await failure(client.listRepositories());
    expect(err.message).toMatch(
      /stopped listing the catalog of .*: it runs to more than 50 pages.*raise the cap with --max-list-pages N \(client option maxListPages, MAX_LIST_PAGES\)/,
    );
    expect(err.details.code).toBe('LIST_TOO_LONG');
    expect(h.pages()).toBe(50);
  });

  it('a tag list over the entry cap stops, naming the cap and the flag', async () => {
    const h = await hostile(forward, 30);
    client = createRegistryClient({ url: h.url, maxListEntries: 100 });
    const err = await failure(client.listTags('app'));
    expect(err.message).toMatch(
      /stopped listing the tags of app: it runs to more than 100 entries.*--max-list-entries N \(client option maxListEntries, MAX_LIST_ENTRIES\)/,
    );
    expect(h.pages()).toBe(4);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses a cap of %s', (cap) => {
    expect(() => createRegistryClient({ url: 'http://r.test', maxListPages: cap })).toThrow(
      /maxListPages must be a whole number of at least 1/,
    );
  });

  it('apply against a registry whose catalog never ends: a clear error, and no DELETE is sent', async () => {
    const h = await hostile(forward, 5);
    const dir = mkdtempSync(join(tmpdir(), 'rj-hostile-'));
    try {
      const policy = join(dir, 'policy.yaml');
      writeFileSync(policy, 'rules:\n  - repositories: ["**"]\n    keep:\n      newest: 1\n');
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const stdin = new PassThrough();
      let text = '';
      stdout.on('data', (d: Buffer) => (text += d.toString()));
      stderr.on('data', (d: Buffer) => (text += d.toString()));
      stdin.end('');
      const args = ['apply', '--registry', h.url, '--policy', policy, '--yes', '--max-list-pages', '20'];
      const code = await main(args, { stdout, stderr, stdin, env: {} });
      // An incomplete plan is a failed read: exit 1, as plan gives.
      expect(code).toBe(EXIT.failed);
      expect(text).toMatch(/more than 20 pages.*--max-list-pages N/);
      // The probe's catalog read (which then skips the probe) and the inventory's each stop at the cap.
      expect(h.pages()).toBe(40);
      expect(h.methods.filter((m) => m !== 'GET')).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
