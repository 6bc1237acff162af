// Ctrl-C during `apply`, through the real CLI process against a real registry slowed by a delay proxy: the first
// SIGINT stops new DELETEs, the report of what was done is printed whole, the exit code is 130, and the registry
// is exactly as the report says; apply run again finishes the job.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Plan, Report } from '../../lambda/core/model.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage } from '../../lambda/demo/seed.ts';
import { startDelayProxy, type DelayProxy } from '../bench/delay-proxy.ts';
import { runCli as runCliIn } from '../support/cli-process.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';

const IMAGES = 120;
const STATE_DIR = mkdtempSync(join(tmpdir(), 'rj-interrupt-state-'));
const runCli = (args: string[], onRunning?: (kill: (s: NodeJS.Signals) => void) => void) =>
  runCliIn(args, STATE_DIR, onRunning);
const ACCEPT =
  'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function tags(url: string): Promise<string[]> {
  const res = await fetch(`${url}/v2/big/app/tags/list`);
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

describeEachRegistry('apply interrupted by SIGINT', ({ kind }) => {
  let registry: LocalRegistry;
  let proxy: DelayProxy;
  let dir: string;
  let policyFile: string;
  const digests = new Map<string, string>();

  beforeAll(async () => {
    registry = await startRegistry(kind);
    for (let i = 0; i < IMAGES; i++) {
      const tag = `t${String(i).padStart(3, '0')}`;
      const created = new Date(Date.UTC(2025, 0, 1) + i * 3_600_000).toISOString();
      const image = await pushImage(registry, 'big/app', tag, {
        created,
        layers: [{ seed: `layer-${tag}`, size: 256 }],
      });
      digests.set(tag, image.digest);
    }
    // 60 ms each way: a DELETE takes about 120 ms, so the run lasts seconds and a signal lands mid-way.
    proxy = await startDelayProxy(Number(new URL(registry.url).port), 60);
    dir = mkdtempSync(join(tmpdir(), 'rj-interrupt-'));
    policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, 'rules:\n  - repositories: ["**"]\n    keep: { newest: 1 }\n');
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await registry?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
    rmSync(STATE_DIR, { recursive: true, force: true });
  });

  it('stops, reports what it did, exits 130, and apply run again finishes', async () => {
    const args = ['apply', '--policy', policyFile, '--yes', '--json', '--max-delete-fraction', '1'];
    const interrupted = await runCli(['apply', '--registry', proxy.url, ...args.slice(1)], (kill) => {
      // Signal as soon as the registry itself shows the first deletes.
      let sent = false;
      const poll = setInterval(() => {
        void tags(registry.url).then((t) => {
          if (t.length < IMAGES && !sent) {
            sent = true;
            clearInterval(poll);
            kill('SIGINT');
          }
        });
      }, 20);
    });
    expect(interrupted.code, interrupted.stderr).toBe(130);
    expect(interrupted.stderr).toContain('Interrupted by SIGINT: no new DELETE is sent');
    expect(interrupted.stderr).toMatch(
      /Stopped \(interrupted by SIGINT\): .*To finish, run apply again\.\n$/,
    );
    // Whole lines only: the JSON document is complete and both streams end with a newline.
    expect(interrupted.stdout.endsWith('\n')).toBe(true);
    const { report } = JSON.parse(interrupted.stdout) as { plan: Plan; report: Report };
    expect(report.stopped).toBe('interrupted by SIGINT');

    const deleted = report.entries.filter((e) => e.outcome === 'deleted').map((e) => e.tags?.[0]);
    const unstarted = report.entries.filter((e) => e.outcome === 'skipped').map((e) => e.tags?.[0]);
    expect(deleted.length).toBeGreaterThan(0);
    expect(unstarted.length).toBeGreaterThan(0);
    expect(deleted.length + unstarted.length).toBe(IMAGES - 1);
    expect(report.manifestsDeleted).toBe(deleted.length);
    // The registry is as the report says: what it lists as deleted is gone, the rest is served.
    const left = await tags(registry.url);
    expect(left.sort()).toEqual([...unstarted, 't119'].sort());
    for (const [tag, digest] of digests) {
      const res = await fetch(`${registry.url}/v2/big/app/manifests/${digest}`, {
        method: 'HEAD',
        headers: { accept: ACCEPT },
      });
      expect([tag, res.status]).toEqual([tag, deleted.includes(tag) ? 404 : 200]);
    }

    const again = await runCli(['apply', '--registry', registry.url, ...args.slice(1)]);
    expect(again.code, again.stderr).toBe(0);
    expect(await tags(registry.url)).toEqual(['t119']);
  }, 180_000);
});
