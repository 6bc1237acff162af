// An HTTP proxy on 127.0.0.1 in front of a registry that can fail chosen requests (status codes, dropped
// connections), to prove that faults make plans incomplete and never lead to deletes, and can hold a request (or
// its answer) while a test acts at that exact point (test/support/promoter.ts pushes there).
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = { status: number; body?: string; times?: number } | { reset: true; times?: number };

/**
 * Called, and awaited, as a request passes: `request` before it goes on to the registry, `response` after the
 * registry answered and before the client hears. The request waits meanwhile; other requests do not.
 */
export interface ProxyObserver {
  request?(key: string): Promise<void> | void;
  response?(key: string, status: number): Promise<void> | void;
}

export interface FaultProxy {
  readonly url: string;
  /** Hold requests while the observer's hooks run (replaces the previous observer; undefined removes it). */
  observe(observer: ProxyObserver | undefined): void;
  /** Requests seen, as "METHOD path". */
  readonly seen: string[];
  /** Fail requests whose "METHOD path" matches. `times` limits how often (default: always). */
  fail(match: RegExp, fault: Fault): void;
  /**
   * Drop this share of all requests at random (0 stops): half of them before they reach the registry, half after
   * it answered (the request was carried out, the client never hears). `seed` makes the draw repeatable.
   */
  dropRandomly(rate: number, seed?: number): void;
  /** Requests and responses dropped by dropRandomly so far. */
  readonly dropped: { requests: number; responses: number };
  clear(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const rules: { match: RegExp; fault: Fault; left: number }[] = [];
  const seen: string[] = [];
  let dropRate = 0;
  let random = Math.random;
  const dropped = { requests: 0, responses: 0 };
  let observer: ProxyObserver | undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const key = `${req.method} ${req.url}`;
    seen.push(key);
    const watching = observer;
    if (watching?.request) {
      // The body waits in the paused request until the hook is done.
      Promise.resolve(watching.request(key)).then(
        () => forward(req, res, key, watching),
        () => res.destroy(),
      );
      return;
    }
    forward(req, res, key, watching);
  });
  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    key: string,
    watching: ProxyObserver | undefined,
  ): void => {
    const draw = dropRate > 0 ? random() : 1;
    if (draw < dropRate / 2) {
      dropped.requests += 1;
      req.socket.destroy();
      return;
    }
    const dropResponse = draw < dropRate;
    const rule = rules.find((r) => r.left > 0 && r.match.test(key));
    if (rule) {
      rule.left -= 1;
      if ('reset' in rule.fault) {
        req.socket.destroy();
        return;
      }
      res.writeHead(rule.fault.status, { 'content-type': 'application/json' });
      res.end(
        rule.fault.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected fault' }] }),
      );
      return;
    }
    const proxied = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        if (dropResponse) {
          // Carried out by the registry; the answer never reaches the client.
          dropped.responses += 1;
          up.resume();
          up.on('end', () => req.socket.destroy());
          return;
        }
        const answer = (): void => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        };
        if (watching?.response) {
          up.pause();
          Promise.resolve(watching.response(key, up.statusCode ?? 502)).then(answer, () => res.destroy());
        } else answer();
      },
    );
    proxied.on('error', () => res.destroy());
    req.pipe(proxied);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    observe: (o) => {
      observer = o;
    },
    seen,
    fail: (match, fault) => rules.push({ match, fault, left: fault.times ?? Infinity }),
    dropRandomly: (rate, seed) => {
      dropRate = rate;
      random = seed === undefined ? Math.random : mulberry32(seed);
    },
    dropped,
    clear: () => {
      rules.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A small seeded PRNG (mulberry32): the same seed draws the same sequence. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
