import type { Command } from 'commander';
import { z } from 'zod';
import { DEFAULT_APP } from '../emulators/onesignal/constants';
import { startOneSignalEmulator } from '../emulators/onesignal/index';
import { emit, parseInput, reportError } from './output';

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
  faultRate: rateFlag.optional(),
  timeoutRate: rateFlag.optional(),
  lostRate: rateFlag.optional(),
  throttleRate: rateFlag.optional(),
  hangMs: intFlag(0).max(600_000).optional(),
  retryAfter: intFlag(1).max(3600).optional(),
  acceptUnknownUsers: z.boolean().optional(),
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
    .option(
      '--fault-rate <r>',
      'fraction of requests given a fault, split evenly: 5xx, drop, timeout, lost answer, 429',
    )
    .option('--timeout-rate <r>', "fraction of requests held unanswered past the client's timeout")
    .option('--lost-rate <r>', 'fraction of requests applied, then answered by a dropped connection')
    .option('--throttle-rate <r>', 'fraction of requests answered 429 with Retry-After')
    .option('--hang-ms <n>', 'how long a timeout fault holds a request at most (default 120000)')
    .option('--retry-after <s>', 'Retry-After seconds of an injected 429 (default 2)')
    .option('--accept-unknown-users', 'answer 202 to updates of unknown users without applying them')
    .option('--seed-count <n>', 'create users user-0 … user-(N-1) in every app')
    .option('--seed-file <file>', 'create the users listed in this file, one external id per line')
    .option('--json', 'print the start-up line as JSON')
    .addHelpText(
      'after',
      `
Emulator-only routes (no auth, not rate limited, no faults):
  GET    /_emulator/state[?app_id=&summary=1]        users, segments, limits, faults, stats
  GET    /_emulator/users/APP_ID/EXTERNAL_ID         one user's tags
  PATCH  /_emulator/users/APP_ID/EXTERNAL_ID         drift: {"tags":{"k":"v","gone":""}} ("" or null deletes)
  DELETE /_emulator/users/APP_ID/EXTERNAL_ID         drift: delete the user
  GET    /_emulator/segments/APP_ID/SEGMENT_ID/users[?now=MS]   users the segment's tag filters select
  POST   /_emulator/users                            seed {"ids":[…]} or {"count":N,"start":S}
  POST   /_emulator/faults | /_emulator/limits | /_emulator/behaviour   change settings at runtime
  POST   /_emulator/reset                            back to the start-up state
Stats count requests inside an announced Retry-After window (retryAfterViolations) and
per-user 1/s violations (perUserViolations).`,
    )
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
          faults: {
            errorRate: o.errorRate ?? 0,
            dropRate: o.dropRate ?? 0,
            latencyMs: o.latencyMs ?? 0,
            ...(o.faultRate !== undefined && { faultRate: o.faultRate }),
            ...(o.timeoutRate !== undefined && { timeoutRate: o.timeoutRate }),
            ...(o.lostRate !== undefined && { lostRate: o.lostRate }),
            ...(o.throttleRate !== undefined && { throttleRate: o.throttleRate }),
            ...(o.hangMs !== undefined && { hangMs: o.hangMs }),
            ...(o.retryAfter !== undefined && { retryAfterSeconds: o.retryAfter }),
          },
          acceptUnknownUsers: o.acceptUnknownUsers ?? false,
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
