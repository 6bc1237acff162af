// A TCP proxy on 127.0.0.1 that holds every chunk, in each direction, for a fixed time before passing it on,
// so a local registry answers like one across a network (10 ms each way ≈ 20 ms per round trip; a new
// connection costs one round trip more).
// Run as its own process (`tsx delay-proxy.ts TARGET_PORT DELAY_MS`) so its work never competes with the
// event loop of the client being measured; it prints its port as one JSON line.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';

export interface DelayProxy {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Forward `from` to `to`, each chunk `delayMs` later. Timers of equal length fire in the order they were set,
 * so bytes stay in order, and an end or a close (scheduled the same way) comes after the data before it.
 */
function pipeDelayed(from: Socket, to: Socket, delayMs: number): void {
  let buffered = 0;
  const later = (fn: () => void): void => void setTimeout(fn, delayMs);
  from.on('data', (chunk: Buffer) => {
    buffered += chunk.length;
    // Hold back the sender while much is buffered, as a network would.
    if (buffered > 4 * 1024 * 1024) from.pause();
    later(() => {
      buffered -= chunk.length;
      if (!to.destroyed) to.write(chunk);
      if (from.isPaused() && buffered < 1024 * 1024) from.resume();
    });
  });
  // A peer closing (the registry does after each HEAD: undici asks it to) must not cut off data still delayed.
  let ended = false;
  from.on('end', () => {
    ended = true;
    later(() => to.end());
  });
  from.on('close', () => {
    if (!ended) later(() => to.destroy());
  });
}

export async function startDelayProxy(targetPort: number, delayMs: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    client.setNoDelay(true);
    // A new connection costs a round trip on a network (SYN, SYN-ACK) before the request can go: hold the
    // client's first bytes that long. (A TLS handshake would cost one or two more; this models plain TCP.)
    client.pause();
    setTimeout(() => client.resume(), 2 * delayMs);
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    upstream.setNoDelay(true);
    sockets.add(client).add(upstream);
    for (const s of [client, upstream]) {
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    pipeDelayed(client, upstream, delayMs);
    pipeDelayed(upstream, client, delayMs);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [target, delay] = process.argv.slice(2).map(Number);
  if (!Number.isInteger(target) || !(delay! >= 0)) {
    process.stderr.write('usage: tsx test/bench/delay-proxy.ts TARGET_PORT DELAY_MS\n');
    process.exit(2);
  }
  const proxy = await startDelayProxy(target!, delay!);
  process.stdout.write(JSON.stringify({ port: proxy.port }) + '\n');
  // The parent ends us by closing our stdin (or by killing us by pid).
  process.stdin.resume();
  process.stdin.on('end', () => void proxy.close().then(() => process.exit(0)));
}
