import { defineConfig } from 'vitest/config';

// Two tiers, named: `unit` needs no registry process and no container engine; `integration` starts real
// registries on 127.0.0.1 and real containers (podman). `npm run test:unit` / `npm run test:integration`.
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration suites start their own registries and containers; two cores here.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**'],
          // Files in a worker share one module graph (the CDK, the AWS SDK and our modules load once per worker,
          // not once per file): a file that mocks a module or an AWS client puts it back in afterAll.
          isolate: false,
        },
      },
      {
        extends: true,
        test: { name: 'integration', include: ['test/integration/**/*.test.ts'] },
      },
    ],
  },
});
