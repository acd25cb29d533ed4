import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real validators (quadlet, openssl, podman) are slow to start; keep the suite predictable.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
