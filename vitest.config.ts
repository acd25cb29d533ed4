import { defaultServerConditions } from 'vite';
import { configDefaults, defineConfig } from 'vitest/config';

/** The end-to-end files each bring up a whole mesh: on two cores, two at once starve each other. */
const E2E = ['test/e2e*.test.ts'];

export default defineConfig({
  // Stack files import 'podmesh': in tests its sources, the very modules the tests import (the
  // package's default export is the build in dist/, which the spawned `podmesh` commands run).
  ssr: { resolve: { conditions: ['podmesh-source', ...defaultServerConditions] } },
  resolve: { conditions: ['podmesh-source', ...defaultServerConditions] },
  test: {
    // Spawned `podmesh` commands run dist/: built from the current sources before any test.
    globalSetup: ['test/helpers/build-dist.ts'],
    // Real validators (quadlet, openssl, podman) are slow to start; keep the suite predictable.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      // Two files at once even on two cores (Vitest's default there is one): most of them wait on
      // the processes they start (openssl, podman, php, quadlet, synth), and one at a time left
      // half of CI's 20 minutes idle.
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...E2E], maxWorkers: 2, sequence: { groupOrder: 0 } } },
      // After the rest, one file at a time.
      { extends: true, test: { name: 'e2e', include: E2E, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
