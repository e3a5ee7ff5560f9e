import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadsThisMonth } from '../../src/connectors/amplitude/budget';
import { refreshSourceCohorts } from '../../src/connectors/amplitude/cohorts';
import { AmplitudeCohortsClient } from '../../src/connectors/amplitude/cohorts-api';
import { startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { runSync } from '../../src/sync/run';
import { createSync } from '../../src/sync/syncs';
import { describeEachDialect } from '../helpers/db';
import {
  AMP,
  type Emulators,
  type ProxyFault,
  sourceAndDestination,
  startCuttingProxy,
  startEmulators,
} from './fixtures';

const users = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
const MEMBERS = users('flaky', 150);

/** Every request of a pull, by path: the free list, then the download's three steps (and the S3 leg). */
const STEPS: Record<string, RegExp> = {
  list: /^\/api\/3\/cohorts/,
  request: /^\/api\/5\/cohorts\/request\/coh_/,
  poll: /^\/api\/5\/cohorts\/request-status\//,
  file: /\/file$/,
  s3: /^\/_s3\//,
};

describeEachDialect('Amplitude pull under faults: every step retried within the one download', (db) => {
  let emu: Emulators;
  let proxy: Awaited<ReturnType<typeof startCuttingProxy>>;
  beforeAll(async () => {
    // 150 members above redirectAbove 100: the file comes as a 302 to the "S3" URL, so every leg is exercised.
    emu = await startEmulators({ redirectAbove: 100, pollsBeforeReady: 2 }, MEMBERS);
    proxy = await startCuttingProxy(emu.amplitude.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await emu?.close();
  });

  async function flakySync(cohortId: string) {
    const { ctx } = db();
    const { source, dest } = await sourceAndDestination(ctx, proxy.url, emu.onesignal.url);
    emu.amplitude.cohorts.upsert({ id: cohortId, name: cohortId, members: MEMBERS.map((user_id) => ({ user_id })) });
    await refreshSourceCohorts(ctx, source.id);
    const sync = await createSync(ctx, { cohortId, destinationId: dest.id, cadence: 'manual' });
    return { ctx, source, sync };
  }

  it('a 5xx, a dropped connection or a lost answer at any step completes the run and spends one download', async () => {
    const { ctx, source, sync } = await flakySync('coh_steps');
    const faults: Array<[string, ProxyFault['with']]> = [];
    for (const step of Object.keys(STEPS)) for (const f of [503, 'drop'] as const) faults.push([step, f]);
    // An answer lost after Amplitude acted on it: the request step created a job we never heard of.
    faults.push(['request', 'lose'], ['poll', 'lose'], ['file', 'lose']);
    let runs = 0;
    for (const [step, fault] of faults) {
      const emulatorDownloads = emu.amplitude.cohorts.downloads();
      proxy.fault = { path: STEPS[step]!, with: fault, times: 1 };
      const run = await runSync(ctx, sync.id);
      runs++;
      expect({ step, fault, status: run.status, error: run.error }).toEqual({
        step,
        fault,
        status: 'completed',
        error: null,
      });
      expect(run.members).toBe(MEMBERS.length);
      expect(proxy.fault?.times).toBe(0); // the fault did hit that step
      // The budget counts one download per pull, however many requests the pull took.
      expect(await downloadsThisMonth(ctx, source.id)).toBe(runs);
      if (!(step === 'request' && fault === 'lose'))
        expect(emu.amplitude.cohorts.downloads()).toBe(emulatorDownloads + 1);
    }
    expect(emu.onesignal.state.getUser('flaky-149')).toMatchObject({ [sync.tag_key]: '1' });
  });

  it('at a 20% fault rate (5xx and dropped connections) every pull completes, each counted once', async () => {
    const { ctx, source, sync } = await flakySync('coh_rate');
    proxy.fault = null;
    emu.amplitude.setFaults({ cohorts: { errorRate: 0.15, dropRate: 0.05 } });
    try {
      const statuses: string[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await runSync(ctx, sync.id)).status);
      expect(statuses).toEqual(Array(10).fill('completed'));
      expect(await downloadsThisMonth(ctx, source.id)).toBe(10);
      const stats = emu.amplitude.stats().cohorts.requests;
      // The faults did happen: failed answers and dropped connections among the requests.
      expect((stats['500'] ?? 0) + (stats['502'] ?? 0) + (stats['503'] ?? 0) + (stats['504'] ?? 0)).toBeGreaterThan(0);
    } finally {
      emu.amplitude.setFaults({});
    }
  });
});

describe('the cohort API client retries a request that times out', () => {
  it('at every step (list, request, poll, file), each within its own tries', async () => {
    const amplitude = await startAmplitudeEmulator({
      projects: [AMP],
      pollsBeforeReady: 1,
      cohorts: [{ id: 'coh_slow', name: 'Slow', members: users('slow', 5).map((user_id) => ({ user_id })) }],
    });
    const proxy = await startCuttingProxy(amplitude.url);
    try {
      const client = new AmplitudeCohortsClient({
        baseUrl: proxy.url,
        apiKey: AMP.apiKey,
        secretKey: AMP.secretKey,
        pollIntervalMs: 10,
        timeoutMs: 300,
      });
      const stall = (step: string) => {
        proxy.fault = { path: STEPS[step]!, with: 'stall', times: 1 };
      };
      stall('list');
      expect((await client.listCohorts()).map((c) => c.id)).toEqual(['coh_slow']);
      expect(client.requests).toBe(2);
      stall('request');
      const requestId = await client.requestDownload('coh_slow');
      stall('poll');
      await client.waitUntilReady(requestId);
      stall('file');
      const text = await client.readFile(requestId, async (body) => {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(Buffer.from(c));
        return gunzipSync(Buffer.concat(chunks)).toString();
      });
      expect(text).toContain('slow-4');
      expect(proxy.fault?.times).toBe(0);
      // One download job at Amplitude: the stalled request never reached it.
      expect(amplitude.cohorts.downloads()).toBe(1);
    } finally {
      await proxy.close();
      await amplitude.close();
    }
  });
});

describeEachDialect('cohort list --refresh', (db) => {
  it('retries a 5xx and a dropped connection and lists the cohorts', async () => {
    const { ctx, url } = db();
    const amplitude = await startAmplitudeEmulator({
      projects: [AMP],
      cohorts: [{ id: 'coh_listed', name: 'Listed', members: [{ user_id: 'a' }] }],
    });
    try {
      const { source } = await sourceAndDestination(ctx, amplitude.url, 'http://127.0.0.1:9');
      amplitude.cohorts.forceNext(503);
      amplitude.cohorts.forceNext(0);
      const out = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
        execFile(
          process.execPath,
          [
            resolve(__dirname, '../../bin/ampsignal.mjs'),
            '--db',
            url,
            'cohort',
            'list',
            '--source',
            source.id,
            '--refresh',
            '--json',
          ],
          { env: process.env, timeout: 30_000 },
          (err, stdout, stderr) => done({ code: err ? 1 : 0, stdout, stderr }),
        ),
      );
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      expect((JSON.parse(out.stdout) as Array<{ id: string }>).map((c) => c.id)).toEqual(['coh_listed']);
      const requests = amplitude.stats().cohorts.requests;
      expect([requests['503'], requests.dropped, requests['200']]).toEqual([1, 1, 1]);
    } finally {
      await amplitude.close();
    }
  });
});
