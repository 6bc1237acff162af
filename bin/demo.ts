// `npm run demo`: the whole job on an embedded registry. Starts docker-registry on a free loopback port with a
// temp dir, seeds a small realistic set, shows the plan, applies it, garbage-collects, and compares disk use.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filesystemHistory } from '../lambda/adapters/history-fs.ts';
import { fileJournal } from '../lambda/adapters/journal-file.ts';
import { createRegistryClient } from '../lambda/adapters/registry-client.ts';
import { DEFAULT_MAX_DELETE_FRACTION } from '../lambda/config.ts';
import { runJob } from '../lambda/core/job.ts';
import { parsePolicy } from '../lambda/core/policy.ts';
import { DEFAULT_UNDO_WINDOW_HOURS } from '../lambda/core/contract.ts';
import { formatBytes, formatPlan, formatReport, when } from '../lambda/core/report.ts';
import { restoreRunCommand } from '../lambda/core/undo.ts';
import { scanRegistry } from '../lambda/core/scan.ts';
import { verifyKept } from '../lambda/core/verify.ts';
import {
  registryBinaryAvailable,
  REGISTRY_BINARY,
  startLocalRegistry,
} from '../lambda/demo/local-registry.ts';
import { SCENARIO_POLICY, seedHistory, seedScenario } from '../lambda/demo/scenario.ts';

const out = (s: string): void => void process.stdout.write(s + '\n');

if (!registryBinaryAvailable()) {
  process.stderr.write(
    `The demo runs a real registry, but "${REGISTRY_BINARY}" was not found.\n` +
      `Install it (Debian/Ubuntu): sudo apt-get install -y docker-registry\n` +
      `or point DOCKER_REGISTRY_BIN at a distribution registry binary.\n`,
  );
  process.exit(2);
}

const registry = await startLocalRegistry();
const client = createRegistryClient({ url: registry.url });
try {
  out(`Started docker-registry at ${registry.url} (storage ${registry.storageDir}).`);
  await seedScenario(registry, { layerSize: 256 * 1024 });
  const history = await seedHistory(registry, { layerSize: 256 * 1024 });
  out(`Seeded 6 repositories: Docker and OCI images on shared base layers, multi-arch indexes, aliases,`);
  out(`signatures, a 1970-stamped reproducible build, a protected and an unmatched repository, and untagged`);
  out(
    `history in ${history.repository} (main pushed 4 times, a multi-arch nightly pushed twice), listed from the ` +
      `storage as --storage does.\n`,
  );
  out(`Policy (the same format as retention-policy.yaml):\n${SCENARIO_POLICY}`);

  const policy = parsePolicy(SCENARIO_POLICY, 'demo policy');
  const storage = filesystemHistory(registry.storageDir);
  // A push is as old as its revision link (what the listing reads, and what the sweep checks): the scenario's
  // images were pushed seconds ago, so they are made to look pushed an hour before tonight's run.
  const tonight = new Date();
  const anHourAgo = new Date(tonight.getTime() - 3_600_000);
  for (const [repository, revisions] of (await storage.list()).repositories) {
    for (const r of revisions)
      if (Date.parse(r.pushedAt) > anHourAgo.getTime()) registry.setPushedAt(repository, r.digest, anHourAgo);
  }
  const journalDir = mkdtempSync(join(tmpdir(), 'rj-demo-journal-'));
  const journalFile = join(journalDir, 'journal.json');
  const journal = fileJournal(journalFile, { registry: registry.url, warn: (m) => out(`warning: ${m}`) });
  const before = registry.diskUsage();

  // The job the Lambda and the CLI run (probe, inventory, plan, guard, deletes), as `apply --storage` runs it:
  // two-phase, with the default undo window.
  const night = (now: Date) =>
    runJob({
      client,
      policy,
      now,
      dryRun: false,
      maxDeleteFraction: DEFAULT_MAX_DELETE_FRACTION,
      history: storage,
      journal,
      undoWindowHours: DEFAULT_UNDO_WINDOW_HOURS,
      onPlan: (p) => {
        out(formatPlan(p));
        out(
          `Applying: ${(p.summary.deleteFraction * 100).toFixed(0)}% of the tags go, within the default ` +
            `${DEFAULT_MAX_DELETE_FRACTION * 100}% delete guard.\n`,
        );
      },
    });
  const garbageCollect = async (): Promise<number> => {
    out('Running docker-registry garbage-collect (registry stopped, as the readonly/offline GC modes do)…');
    await registry.stop();
    const gc = registry.garbageCollect();
    out('  ' + (gc.split('\n').find((l) => /blobs marked/.test(l)) ?? 'garbage-collect finished'));
    await registry.start();
    return registry.diskUsage();
  };

  out(`Tonight (${when(tonight.toISOString())}):\n`);
  const first = await night(tonight);
  out(formatReport(first.report!, first.plan));
  const undo = first.report!.undo;
  if (undo?.runId !== undefined) {
    out(
      `Run ${undo.runId}: until ${when(undo.undoUntil)} this brings back every tag it removed (while the demo's ` +
        `registry runs):\n` +
        `  ${restoreRunCommand(registry.url, undo.runId, ` --journal ${journalFile}`)}\n`,
    );
  }
  const afterTonight = await garbageCollect();

  const tomorrow = new Date(tonight.getTime() + (DEFAULT_UNDO_WINDOW_HOURS + 1) * 3_600_000);
  out(
    `\nTomorrow night (${when(tomorrow.toISOString())}, the demo's clock moved ${DEFAULT_UNDO_WINDOW_HOURS + 1} hours ` +
      `ahead): the undo window has passed, so the sweep deletes what tonight untagged, each manifest still ` +
      `untagged and not pushed again.\n`,
  );
  const second = await night(tomorrow);
  out(formatReport(second.report!, second.plan));
  const after = await garbageCollect();

  const verify = await verifyKept(second.plan, await scanRegistry(client, { policy }), client);
  out(
    `Verified after restart: ${verify.tagsChecked} kept tags, ${verify.manifestsChecked} manifests and ` +
      `${verify.blobsChecked} blobs all served${verify.problems.length > 0 ? `; PROBLEMS:\n  ${verify.problems.join('\n  ')}` : '.'}`,
  );
  const s1 = first.plan.summary;
  out(
    `Disk: ${formatBytes(before)} before, ${formatBytes(afterTonight)} after tonight ` +
      `(${formatBytes(before - afterTonight)} freed; plan estimated ${formatBytes(s1.bytesFreed)}, untagged history), ` +
      `${formatBytes(after)} after tomorrow (${formatBytes(afterTonight - after)} freed; tonight's plan estimated ` +
      `${formatBytes(s1.bytesPending ?? 0)} untagged tonight, reclaimed after the window).`,
  );
  rmSync(journalDir, { recursive: true, force: true });
  out(`\nNext: run the same against your registry, starting with a plan (nothing is deleted):`);
  out(`  npm run cli -- plan --registry https://registry.internal:5000 --policy retention-policy.yaml`);
  process.exitCode =
    verify.problems.length > 0 || first.report!.failures.length > 0 || second.report!.failures.length > 0
      ? 1
      : 0;
} finally {
  await client.close();
  await registry.dispose();
}
