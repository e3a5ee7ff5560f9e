import { createServer, request as httpReq, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { addDestination, deleteDestination, listDestinations } from '../../src/app/destinations';
import { addSource, deleteSource } from '../../src/app/sources';
import {
  type AmplitudeEmulator,
  type AmplitudeEmulatorOptions,
  startAmplitudeEmulator,
} from '../../src/emulators/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import type { Context } from '../../src/store';

export const AMP = { apiKey: 'amp_test_key', secretKey: 'amp_test_secret' };
export const OS_APP = { appId: '6f1c2b7e-0a4d-4c8e-9b1f-2d6e5a7c9b10', apiKey: 'os_test_key' };

// Poll Amplitude's request-status every few ms instead of 2 s (read when a client is built).
process.env.AMPSIGNAL_AMPLITUDE_POLL_MS = '10';

export async function startEmulators(amp: Partial<AmplitudeEmulatorOptions> = {}, oneSignalUsers: string[] = []) {
  const amplitude = await startAmplitudeEmulator({ projects: [AMP], pollsBeforeReady: 2, ...amp });
  const onesignal = await startOneSignalEmulator({
    apps: [OS_APP],
    perUserPerSecond: 1000,
    users: { mode: 'seeded', ids: oneSignalUsers.length ? oneSignalUsers : ['placeholder-user'] },
  });
  return { amplitude, onesignal, close: async () => Promise.all([amplitude.close(), onesignal.close()]) };
}

let n = 0;

/**
 * A source for the AMP project and a destination on OS_APP. One source per project and one
 * destination per OneSignal app: the previous test's pair is deleted first (its tags stay in
 * the emulator), so each test starts with a pair of its own. `project` and `app` give other
 * keys for a test that needs two pairs at once.
 */
export async function sourceAndDestination(
  ctx: Context,
  apiUrl: string,
  oneSignalUrl: string,
  opts: {
    budget?: number;
    externalIdProperty?: string;
    project?: { apiKey: string; secretKey: string };
    app?: { appId: string; apiKey: string };
  } = {},
) {
  n++;
  const project = opts.project ?? AMP;
  const app = opts.app ?? OS_APP;
  await retirePairs(ctx, project.apiKey, app.appId);
  const source = await addSource(ctx, {
    name: `project-${n}-${Math.random().toString(36).slice(2, 6)}`,
    api_key: project.apiKey,
    secret_key: project.secretKey,
    api_url: apiUrl,
    ...(opts.budget !== undefined ? { download_budget: opts.budget } : {}),
  });
  const dest = await addDestination(ctx, {
    name: `app-${n}-${Math.random().toString(36).slice(2, 6)}`,
    app_id: app.appId,
    api_key: app.apiKey,
    api_url: oneSignalUrl,
    source_id: source.id,
    ...(opts.externalIdProperty ? { external_id_property: opts.externalIdProperty } : {}),
  });
  return { source, dest };
}

async function retirePairs(ctx: Context, apiKey: string, appId: string): Promise<void> {
  for (const d of await listDestinations(ctx))
    if (d.app_id === appId) await deleteDestination(ctx, d.id, { removeTags: false });
  for (const s of await ctx.store.db.selectFrom('sources').select(['id', 'api_key_enc']).execute())
    if (ctx.secrets.decrypt(s.api_key_enc) === apiKey) await deleteSource(ctx, s.id, { force: true });
}

/**
 * What the proxy does instead of answering a matching request: a status (e.g. 503) of its own,
 * `drop` (the connection closes, no answer), `stall` (no answer until the client gives up), or
 * `lose` (the request reaches the emulator, which acts on it, and the answer is dropped). The
 * first `after` matching requests are let through.
 */
export type ProxyFault = { path: RegExp; with: number | 'drop' | 'stall' | 'lose'; times: number; after?: number };

/**
 * A loopback forwarder in front of a vendor emulator that cuts the body of responses whose path
 * matches `cut` after `afterBytes` bytes and destroys the socket: a download failing midway. A
 * `fault` replaces the answers to the next `times` requests whose path matches.
 */
export async function startCuttingProxy(target: string): Promise<{
  url: string;
  cut: RegExp | null;
  times: number;
  fault: ProxyFault | null;
  close(): Promise<void>;
  server: Server;
}> {
  const t = new URL(target);
  const state: { cut: RegExp | null; afterBytes: number; times: number; fault: ProxyFault | null } = {
    cut: null,
    afterBytes: 200,
    times: Infinity,
    fault: null,
  };
  const server = createServer((req, res) => {
    const fault = state.fault;
    let faulted = fault && fault.times > 0 && fault.path.test(req.url ?? '') ? fault : undefined;
    if (faulted?.after) {
      // The first `after` matching requests pass untouched.
      faulted.after--;
      faulted = undefined;
    }
    if (faulted) faulted.times--;
    if (faulted?.with === 'drop') return void req.socket.destroy();
    if (faulted?.with === 'stall') return;
    if (typeof faulted?.with === 'number') {
      res.writeHead(faulted.with, { 'content-type': 'application/json' });
      return void res.end(
        JSON.stringify({ error: { http_code: faulted.with, message: 'injected by the test proxy' } }),
      );
    }
    const up = httpReq(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        if (faulted?.with === 'lose') {
          upRes.resume();
          upRes.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (state.cut?.test(req.url ?? '') && (upRes.statusCode ?? 0) === 200 && state.times-- > 0) {
          res.flushHeaders();
          let sent = 0;
          upRes.on('data', (chunk: Buffer) => {
            if (sent >= state.afterBytes) return;
            const part = chunk.subarray(0, state.afterBytes - sent);
            sent += part.length;
            // Destroy only once these bytes are on the wire: the client sees a body cut midway.
            res.write(part, () => {
              if (sent >= state.afterBytes) res.socket?.destroy();
            });
          });
          upRes.on('end', () => res.socket?.destroy());
        } else upRes.pipe(res);
      },
    );
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const handle = {
    url: `http://127.0.0.1:${port}`,
    server,
    get cut() {
      return state.cut;
    },
    set cut(v: RegExp | null) {
      state.cut = v;
    },
    /** How many matching responses to cut (default: all). */
    get times() {
      return state.times;
    },
    set times(v: number) {
      state.times = v;
    },
    get fault() {
      return state.fault;
    },
    set fault(v: ProxyFault | null) {
      state.fault = v;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  return handle;
}

export type Emulators = { amplitude: AmplitudeEmulator; onesignal: OneSignalEmulator; close(): Promise<unknown> };

export async function ledgerRows(ctx: Context, syncId: string) {
  return ctx.store.db
    .selectFrom('ledger')
    .select(['external_id', 'desired', 'confirmed', 'source_ts'])
    .where('sync_id', '=', syncId)
    .orderBy('external_id')
    .execute();
}
