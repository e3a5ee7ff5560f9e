import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // The multi-process scale-out proof runs on its own (`npm run test:scale`): it still stalls now
    // and then on a graphile-worker named queue that stays locked (issue #3 is open for it), and a
    // flaky test must not decide whether the rest of the suite lands.
    exclude: process.env.AMPSIGNAL_SCALE_TESTS ? ['**/node_modules/**'] : ['**/node_modules/**', 'test/scale/**'],
    pool: 'forks',
    // Two cores on these machines; each test file also runs emulators and sometimes child processes.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    env: {
      // A fixed key so tests never write key files into the working tree.
      AMPSIGNAL_SECRET_KEY: '0'.repeat(63) + '1',
      AMPSIGNAL_LOG_LEVEL: 'silent',
    },
  },
});
