// `npm run bench -- --mode startup`: how long the CLI takes to start, as a user runs it, in a copy of the checkout
// (so the checkout's own dist/ is left alone): `--help`, and a plan of a tiny local registry (2 repositories,
// 6 tags), each cold (no bundle yet: bin/registry-janitor.js builds it, then runs), from the warm bundle, and
// through tsx as before the bundle (its compile cache warm after the first run). Median of N runs each.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage } from '../../lambda/demo/seed.ts';
import { copyCheckout, run, viaBin, viaTsx, type Run } from '../support/checkout-copy.ts';

export interface StartupOptions {
  readonly dir: string;
  readonly rounds: number;
  readonly say: (line: string) => void;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return Math.round(s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2);
};

export async function startupMode({ dir, rounds, say }: StartupOptions): Promise<Record<string, unknown>> {
  mkdirSync(dir, { recursive: true });
  const copy = copyCheckout(dir);
  const registry = await startLocalRegistry();
  try {
    for (const repo of ['team/api', 'team/web']) {
      for (let i = 1; i <= 3; i++) {
        await pushImage(registry, repo, `v${i}`, {
          created: new Date(Date.UTC(2025, 0, i)).toISOString(),
          layers: [{ seed: `${repo}-${i}`, size: 256 }],
        });
      }
    }
    const policy = join(copy, 'startup-policy.yaml');
    writeFileSync(policy, 'rules:\n  - repositories: ["**"]\n    keep: { newest: 2 }\n');
    const commands: Record<string, string[]> = {
      help: ['--help'],
      plan: ['plan', '--registry', registry.url, '--policy', policy],
    };
    const timed = async (what: string, go: () => Promise<Run>): Promise<number> => {
      const r = await go();
      if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr}`);
      return r.ms;
    };
    const result: Record<string, Record<string, unknown>> = {};
    // The first tsx run fills its compile cache; it is reported apart.
    const tsxFirst = await timed('tsx', () => viaTsx(copy, commands.help!));
    for (const [name, args] of Object.entries(commands)) {
      const cold: number[] = [];
      const warm: number[] = [];
      const tsx: number[] = [];
      for (let i = 0; i < rounds; i++) {
        say(`startup ${name}: round ${i + 1}/${rounds}`);
        rmSync(join(copy, 'dist'), { recursive: true, force: true });
        cold.push(await timed('cold', () => viaBin(copy, args)));
        warm.push(await timed('warm', () => viaBin(copy, args)));
        tsx.push(await timed('tsx', () => viaTsx(copy, args)));
      }
      result[name] = {
        coldMs: median(cold),
        warmMs: median(warm),
        tsxMs: median(tsx),
        samples: { cold: cold.map(Math.round), warm: warm.map(Math.round), tsx: tsx.map(Math.round) },
      };
    }
    // What any node command costs on this machine now: the floor under every figure.
    const nodeAlone: number[] = [];
    for (let i = 0; i < rounds; i++) {
      nodeAlone.push(await timed('node -e 0', () => run(copy, [process.execPath, '-e', '0'])));
    }
    return {
      mode: 'startup',
      rounds,
      registry: '2 repositories, 6 tags, keep newest 2',
      ...result,
      tsxFirstHelpMs: Math.round(tsxFirst),
      nodeAloneMs: median(nodeAlone),
    };
  } finally {
    await registry.dispose();
    rmSync(copy, { recursive: true, force: true });
  }
}
