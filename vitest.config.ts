import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // Two cores on these machines; each test file also runs emulators and sometimes child processes.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    env: {
      // A fixed key so tests never write key files into the working tree.
      AMPSIGNAL_SECRET_KEY: `${'0'.repeat(63)}1`,
      AMPSIGNAL_LOG_LEVEL: 'silent',
    },
  },
});
