import { defineConfig } from 'vitest/config';

// Data-safety and security proofs (issue 13): the malformed-input corpus, kill -9 of workers and servers,
// hostile model files, the hardened transports. Slower than the unit suite; CI runs it after it.
export default defineConfig({
  test: {
    include: ['test/safety/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/setup/importer-fixtures.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: false
  }
});
