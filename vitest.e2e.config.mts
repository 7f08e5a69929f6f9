import { defineConfig } from 'vitest/config';

// End-to-end tests drive the built app (npm run build) in browser mode with Debian's Chromium.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.test.ts'],
    environment: 'node',
    testTimeout: 900_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: false
  }
});
