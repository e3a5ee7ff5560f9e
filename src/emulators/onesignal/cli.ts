import type { Command } from 'commander';
import { z } from 'zod';
import { emit, parseInput, reportError } from '../../cli/output';
import { DEFAULT_APP } from './constants';
import { startOneSignalEmulator } from './index';

const intFlag = (min: number) => z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(min);
const rateFlag = z.coerce.number({ error: 'must be a number' }).min(0).max(1, 'must be between 0 and 1');

const cliSchema = z.object({
  port: intFlag(0).max(65535),
  host: z.string().min(1).default('127.0.0.1'),
  app: z.array(z.string().regex(/^[^:\s]+:\S+$/, 'must look like APP_ID:API_KEY')).default([]),
  rateLimit: intFlag(0).optional(),
  perUserLimit: intFlag(0).optional(),
  viewRateLimit: intFlag(0).optional(),
  maxTags: intFlag(1).optional(),
  errorRate: rateFlag.optional(),
  dropRate: rateFlag.optional(),
  latencyMs: intFlag(0).optional(),
  seedCount: intFlag(0).optional(),
  seedFile: z.string().min(1).optional(),
  json: z.boolean().optional(),
});

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Adds `ampsignal emulator onesignal`. */
export function registerOneSignalEmulatorCli(emulatorCmd: Command): void {
  emulatorCmd
    .command('onesignal')
    .description('run a fake OneSignal REST API (users, tags, segments, rate limits, faults) until Ctrl-C')
    .requiredOption('--port <port>', 'port to listen on (0 = any free port)')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--app <id:key>', 'an app id and its API key (repeatable; default: one fixed demo app)', collect)
    .option('--rate-limit <n>', 'user-endpoint requests per second per app (0 = off; default 1000)')
    .option('--per-user-limit <n>', 'requests per second per user (0 = off; default 1)')
    .option('--view-rate-limit <n>', 'view-user requests per second per app (0 = off; default 1)')
    .option('--max-tags <n>', 'tags per user (default 20)')
    .option('--error-rate <r>', 'fraction of requests answered with a 5xx (0..1)')
    .option('--drop-rate <r>', 'fraction of requests whose connection is dropped unanswered (0..1)')
    .option('--latency-ms <n>', 'delay added before every answer')
    .option('--seed-count <n>', 'create users user-0 … user-(N-1) in every app')
    .option('--seed-file <file>', 'create the users listed in this file, one external id per line')
    .option('--json', 'print the start-up line as JSON')
    .action(async (raw: Record<string, unknown>) => {
      try {
        const o = parseInput(cliSchema, raw);
        const apps = o.app.length
          ? o.app.map((s) => {
              const i = s.indexOf(':');
              return { appId: s.slice(0, i), apiKey: s.slice(i + 1) };
            })
          : [DEFAULT_APP];
        const seeded = o.seedCount !== undefined || o.seedFile !== undefined;
        const emu = await startOneSignalEmulator({
          apps,
          host: o.host,
          port: o.port,
          ...(o.rateLimit !== undefined && { rateLimitPerSecond: o.rateLimit }),
          ...(o.perUserLimit !== undefined && { perUserPerSecond: o.perUserLimit }),
          ...(o.viewRateLimit !== undefined && { viewRateLimitPerSecond: o.viewRateLimit }),
          ...(o.maxTags !== undefined && { maxTagsPerUser: o.maxTags }),
          faults: { errorRate: o.errorRate ?? 0, dropRate: o.dropRate ?? 0, latencyMs: o.latencyMs ?? 0 },
          users: seeded ? { mode: 'seeded', count: o.seedCount, file: o.seedFile } : { mode: 'empty' },
        });
        emit(
          o.json,
          {
            url: emu.url,
            port: emu.port,
            apps: emu.apps.map((a) => ({ app_id: a.appId, api_key: a.apiKey })),
            users: emu.state.userCount(),
          },
          () =>
            [
              `OneSignal emulator listening on ${emu.url}`,
              ...emu.apps.map((a) => `  app ${a.appId}  key ${a.apiKey}`),
              `  ${emu.state.userCount()} users per app; inspect at ${emu.url}/_emulator/state?summary=1`,
              'Ctrl-C to stop.',
            ].join('\n'),
        );
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            resolve();
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
        await emu.close();
      } catch (e) {
        reportError(e);
      }
    });
}
