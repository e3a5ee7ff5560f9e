import { connect, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addSource } from '../../src/app/sources';
import { createStream } from '../../src/events/streams';
import { buildServer } from '../../src/server/app';
import { describeEachDialect } from '../helpers/db';

/**
 * Trickling clients (issue 11: after a 401 or 404, 40 of 40 trickling connections stayed open
 * 330 s). Raw sockets, as such a client would use: each test sees the server end the connection.
 */
describeEachDialect('connection and request time limits', (db) => {
  let app: FastifyInstance;
  let port: number;
  let source: { id: string; webhook_secret: string };
  let streamId: string;

  beforeAll(async () => {
    const { ctx } = db();
    app = await buildServer({ ctx, timeouts: { headersMs: 1_000, requestMs: 2_000 } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
    source = await addSource(ctx, { name: 'trickle', api_key: 'k', secret_key: 's', api_url: 'http://127.0.0.1:9' });
    streamId = (await createStream(ctx, { name: 'trickle', amplitudeApiKey: 'k', amplitudeUrl: 'http://127.0.0.1:9' }))
      .row.id;
  });
  afterAll(async () => app?.close());

  /** Opens a socket, sends `head`, then one byte of `drip` every 100 ms; resolves when the server closes it. */
  function trickle(head: string, drip: string): { closedWithin: Promise<number>; received: () => string } {
    const started = Date.now();
    let got = '';
    const socket: Socket = connect(port, '127.0.0.1');
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      got += d;
    });
    socket.on('error', () => {});
    socket.write(head);
    let i = 0;
    const timer = setInterval(() => {
      if (!socket.destroyed && socket.writable) socket.write(drip[i++ % drip.length]!);
    }, 100);
    const closedWithin = new Promise<number>((resolve) => {
      const done = () => {
        clearInterval(timer);
        resolve(Date.now() - started);
      };
      socket.on('close', done);
      // A connection still open after 8 s is what the test catches.
      setTimeout(() => {
        socket.destroy();
      }, 8_000).unref();
    });
    return { closedWithin, received: () => got };
  }

  const post = (path: string, auth: string) =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer ${auth}\r\nContent-Length: 100000\r\n\r\n{`;

  it('a 401 or 404 answered before the body ends the connection at once, however the client trickles', async () => {
    const cases = [
      ['wrong cohort-webhook secret', post(`/hooks/amplitude/cohorts/${source.id}`, 'wrong'), '401'],
      ['unknown source', post('/hooks/amplitude/cohorts/src_unknown', 'x'), '404'],
      ['wrong stream secret', post(`/hooks/onesignal/events/${streamId}`, 'wrong'), '401'],
      ['unknown stream', post('/hooks/onesignal/events/str_unknown', 'x'), '404'],
    ] as const;
    const runs = cases.map(([name, head, status]) => ({ name, status, t: trickle(head, '"x",') }));
    for (const r of runs) {
      const ms = await r.t.closedWithin;
      expect(r.t.received(), r.name).toMatch(new RegExp(`^HTTP/1.1 ${r.status}`));
      expect(ms, r.name).toBeLessThan(1_500);
    }
  });

  it('headers trickled in one line at a time are cut off at the headers limit', async () => {
    const t = trickle('POST /hooks/onesignal/events/str_x HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: 1\r\n');
    const ms = await t.closedWithin;
    expect(ms).toBeLessThan(3_500);
  });

  it('an authenticated body trickled byte by byte is cut off at the request limit', async () => {
    const t = trickle(post(`/hooks/amplitude/cohorts/${source.id}`, source.webhook_secret), '"user",');
    const ms = await t.closedWithin;
    expect(ms).toBeGreaterThanOrEqual(1_900);
    expect(ms).toBeLessThan(4_500);
  });
});
