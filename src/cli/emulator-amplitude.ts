import type { Command } from 'commander';
import { z } from 'zod';
import { startAmplitudeEmulator } from '../emulators/amplitude/index';
import { parseInput } from './output';

const DEFAULT_PROJECT = { apiKey: 'amp-emulator-api-key', secretKey: 'amp-emulator-secret-key' };

const collect = (v: string, prev: string[]): string[] => [...prev, v];
const num = (flag: string) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?$/, `${flag} must be a number`)
    .transform(Number);

const cliSchema = z.object({
  port: z
    .string({ error: 'is required (0 picks a free port)' })
    .regex(/^\d+$/, 'must be a port number (0 picks a free port)')
    .transform(Number)
    .pipe(z.number().max(65535, 'must be at most 65535')),
  host: z.string().min(1).default('127.0.0.1'),
  project: z
    .array(
      z
        .string()
        .regex(/^[^:\s]+:[^:\s]+$/, 'must look like API_KEY:SECRET_KEY')
        .transform((s) => {
          const [apiKey, secretKey] = s.split(':') as [string, string];
          return { apiKey, secretKey };
        }),
    )
    .default([]),
  webhookUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  webhookHeader: z
    .array(
      z
        .string()
        .regex(/^[A-Za-z0-9-]+:\s*\S.*$/, "must look like 'Name: value'")
        .transform((s) => {
          const i = s.indexOf(':');
          return [s.slice(0, i).trim(), s.slice(i + 1).trim()] as const;
        }),
    )
    .max(5, 'Amplitude allows at most 5 custom webhook headers')
    .default([]),
  errorRate: num('--error-rate').pipe(z.number().max(1, 'must be between 0 and 1')).optional(),
  dropRate: num('--drop-rate').pipe(z.number().max(1, 'must be between 0 and 1')).optional(),
  latencyMs: num('--latency-ms').pipe(z.number().int('must be whole milliseconds')).optional(),
  faultRate: num('--fault-rate').pipe(z.number().max(1, 'must be between 0 and 1')).optional(),
  timeoutRate: num('--timeout-rate').pipe(z.number().max(1, 'must be between 0 and 1')).optional(),
  lostRate: num('--lost-rate').pipe(z.number().max(1, 'must be between 0 and 1')).optional(),
  throttleRate: num('--throttle-rate').pipe(z.number().max(1, 'must be between 0 and 1')).optional(),
  hangMs: num('--hang-ms').pipe(z.number().int('must be whole milliseconds').max(600_000)).optional(),
  retryAfter: num('--retry-after').pipe(z.number().int('must be whole seconds').min(1).max(3600)).optional(),
  epsThreshold: num('--eps-threshold').optional(),
  seedCohort: z
    .array(
      z
        .string()
        .regex(/^[A-Za-z0-9_-]+:[^:]+:\d+$/, 'must look like ID:NAME:COUNT')
        .transform((s) => {
          const [id, name, count] = s.split(':') as [string, string, string];
          return { id, name, count: Number(count) };
        }),
    )
    .default([]),
  json: z.boolean().optional(),
});

export function registerAmplitudeEmulatorCli(emulator: Command): void {
  emulator
    .command('amplitude')
    .description('run a fake Amplitude (cohorts API with webhook push, HTTP V2 / Batch events) until SIGINT/SIGTERM')
    .option('--port <port>', 'port to listen on (0 picks a free one)')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--project <key:secret>', 'project API key and secret key (repeatable)', collect, [])
    .option('--webhook-url <url>', 'push cohort membership changes to this URL, like the Webhook cohort destination')
    .option('--webhook-header <header>', "custom webhook header 'Name: value' (repeatable, at most 5)", collect, [])
    .option('--error-rate <0..1>', 'share of requests answered with a random 5xx')
    .option('--drop-rate <0..1>', 'share of requests whose connection is dropped')
    .option('--latency-ms <ms>', 'delay added to every API answer')
    .option(
      '--fault-rate <0..1>',
      'share of requests given a fault, split evenly: 5xx, drop, timeout, lost answer, 429',
    )
    .option('--timeout-rate <0..1>', "share of requests held unanswered past the client's timeout")
    .option('--lost-rate <0..1>', 'share of requests applied, then answered by a dropped connection')
    .option('--throttle-rate <0..1>', 'share of requests answered 429 with Retry-After')
    .option('--hang-ms <ms>', 'how long a timeout fault holds a request at most (default 120000)')
    .option('--retry-after <s>', 'Retry-After seconds of an injected 429 (default 2)')
    .option('--eps-threshold <n>', 'events per second per user/device before 429 (0 = off)')
    .option('--seed-cohort <id:name:count>', 'create a cohort with members user-0… (repeatable)', collect, [])
    .option('--json', 'print the start-up summary as one JSON line')
    .addHelpText(
      'after',
      `
Faults apply to the cohorts API (every download step, the pre-signed file URL included) and to
HTTP V2 / Batch. Emulator-only routes: GET /_emulator/stats (faults by kind, requests inside an
announced Retry-After window), POST /_emulator/faults, POST /_emulator/reset, /_emulator/cohorts…`,
    )
    .action(async (raw: Record<string, unknown>) => {
      const o = parseInput(cliSchema, raw);
      const projects = o.project.length ? o.project : [DEFAULT_PROJECT];
      const faults = {
        ...(o.errorRate !== undefined ? { errorRate: o.errorRate } : {}),
        ...(o.dropRate !== undefined ? { dropRate: o.dropRate } : {}),
        ...(o.latencyMs !== undefined ? { latencyMs: o.latencyMs } : {}),
        ...(o.faultRate !== undefined ? { faultRate: o.faultRate } : {}),
        ...(o.timeoutRate !== undefined ? { timeoutRate: o.timeoutRate } : {}),
        ...(o.lostRate !== undefined ? { lostRate: o.lostRate } : {}),
        ...(o.throttleRate !== undefined ? { throttleRate: o.throttleRate } : {}),
        ...(o.hangMs !== undefined ? { hangMs: o.hangMs } : {}),
        ...(o.retryAfter !== undefined ? { retryAfterSeconds: o.retryAfter } : {}),
      };
      const emu = await startAmplitudeEmulator({
        projects,
        host: o.host,
        port: o.port,
        faults,
        ...(o.epsThreshold !== undefined ? { epsThreshold: o.epsThreshold } : {}),
        ...(o.webhookUrl ? { webhookUrl: o.webhookUrl, webhookHeaders: Object.fromEntries(o.webhookHeader) } : {}),
        cohorts: o.seedCohort.map((c) => ({
          id: c.id,
          name: c.name,
          members: Array.from({ length: c.count }, (_, i) => ({ user_id: `user-${i}` })),
        })),
      });
      const summary = {
        url: emu.url,
        projects,
        cohorts: emu.cohorts.list().map((c) => ({ id: c.id, name: c.name, size: c.size })),
        endpoints: {
          cohorts: `${emu.url}/api/3/cohorts`,
          httpapi: `${emu.url}/2/httpapi`,
          batch: `${emu.url}/batch`,
          inspect: `${emu.url}/_emulator/stats`,
        },
        webhookUrl: o.webhookUrl ?? null,
      };
      if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else {
        process.stdout.write(
          `${[
            `Amplitude emulator listening on ${emu.url}`,
            ...projects.map((p) => `  project  api key ${p.apiKey}  secret key ${p.secretKey}`),
            ...summary.cohorts.map((c) => `  cohort   ${c.id} "${c.name}" (${c.size} members)`),
            `  cohorts  GET ${summary.endpoints.cohorts}`,
            `  events   POST ${summary.endpoints.httpapi}  POST ${summary.endpoints.batch}`,
            `  inspect  GET ${summary.endpoints.inspect}`,
            o.webhookUrl ? `  webhook  pushing cohort changes to ${o.webhookUrl}` : '',
            'Ctrl-C to stop.',
          ]
            .filter(Boolean)
            .join('\n')}\n`,
        );
      }
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await emu.close();
      // Pooled keep-alive sockets of the shared HTTP agent would hold the process open.
      process.exit(0);
    });
}
