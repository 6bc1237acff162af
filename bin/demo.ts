// `npm run demo`: the whole job on an embedded registry. Starts docker-registry on a free loopback port with a
// temp dir, seeds a small realistic set, shows the plan, applies it, garbage-collects, and compares disk use.
import { filesystemHistory } from '../lambda/adapters/history-fs.ts';
import { createRegistryClient } from '../lambda/adapters/registry-client.ts';
import { DEFAULT_MAX_DELETE_FRACTION } from '../lambda/config.ts';
import { runJob } from '../lambda/core/job.ts';
import { parsePolicy } from '../lambda/core/policy.ts';
import { formatBytes, formatPlan, formatReport } from '../lambda/core/report.ts';
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
  const before = registry.diskUsage();
  // The job the Lambda and the CLI run: probe, inventory, plan, guard, deletes.
  const { plan: thePlan, report } = await runJob({
    client,
    policy,
    now: new Date(),
    dryRun: false,
    maxDeleteFraction: DEFAULT_MAX_DELETE_FRACTION,
    // The registry's storage root, as `--storage PATH` gives it: untagged history is listed and judged too.
    history: filesystemHistory(registry.storageDir),
    onPlan: (p) => {
      out(formatPlan(p));
      out(
        `Applying: ${(p.summary.deleteFraction * 100).toFixed(0)}% of the tags go, within the default ` +
          `${DEFAULT_MAX_DELETE_FRACTION * 100}% delete guard.\n`,
      );
    },
  });
  out(formatReport(report!, thePlan));

  out('Running docker-registry garbage-collect (registry stopped, as the readonly/offline GC modes do)…');
  await registry.stop();
  const gc = registry.garbageCollect();
  out('  ' + (gc.split('\n').find((l) => /blobs marked/.test(l)) ?? 'garbage-collect finished'));
  await registry.start();
  const after = registry.diskUsage();

  const verify = await verifyKept(thePlan, await scanRegistry(client, { policy }), client);
  out(
    `Verified after restart: ${verify.tagsChecked} kept tags, ${verify.manifestsChecked} manifests and ` +
      `${verify.blobsChecked} blobs all served${verify.problems.length > 0 ? `; PROBLEMS:\n  ${verify.problems.join('\n  ')}` : '.'}`,
  );
  out(
    `Disk: ${formatBytes(before)} before, ${formatBytes(after)} after (${formatBytes(before - after)} freed; plan ` +
      `estimated ${formatBytes(thePlan.summary.bytesFreed)}, ${formatBytes(thePlan.summary.untaggedBytesFreed ?? 0)} ` +
      `of it untagged history).`,
  );
  out(`\nNext: run the same against your registry, starting with a plan (nothing is deleted):`);
  out(`  npm run cli -- plan --registry https://registry.internal:5000 --policy retention-policy.yaml`);
  process.exitCode = verify.problems.length > 0 || report!.failures.length > 0 ? 1 : 0;
} finally {
  await client.close();
  await registry.dispose();
}
