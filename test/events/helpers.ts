import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/server/app';
import type { Context } from '../../src/store';

/** Our server on an ephemeral loopback port. */
export async function startServer(
  ctx: Context,
  opts: { bodyLimit?: number } = {},
): Promise<{ app: FastifyInstance; base: string }> {
  const app = await buildServer({ ctx, ...opts });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (!addr || typeof addr !== 'object') throw new Error('server has no address');
  return { app, base: `http://127.0.0.1:${addr.port}` };
}

export function postEvents(
  base: string,
  streamId: string,
  secret: string | undefined,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return fetch(`${base}/hooks/onesignal/events/${streamId}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(secret === undefined ? {} : { authorization: `Bearer ${secret}` }),
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, json: (await r.json()) as any }));
}

let n = 0;
/** A realistic nested-shape event as the README template renders it. */
export function nestedEvent(
  over: {
    kind?: string;
    id?: string;
    externalId?: string;
    subscriptionId?: string;
    tags?: Record<string, string>;
  } = {},
) {
  n++;
  return {
    event: {
      kind: over.kind ?? 'message.push.clicked',
      id: over.id ?? `0b6c2d9e-0000-4000-8000-${String(n).padStart(12, '0')}`,
      timestamp: 1708559115,
      datetime: '2024-02-21T23:45:15.228Z',
      app_id: 'app-1',
      subscription_device_type: 'iOS',
      subscription_id: over.subscriptionId ?? `sub-${n}-aaaaaaaa`,
      onesignal_id: `os-${n}`,
      external_id: over.externalId ?? `user_${n}`,
      data: { failure_reason: '' },
    },
    message: {
      id: 'msg-1',
      name: 'Spring sale',
      title: { en: 'Spring sale!' },
      contents: 'Save 20% today',
      template_id: 'tpl-1',
    },
    user: { language: 'en', tags: over.tags ?? {} },
  };
}

/** Polls a condition until it holds or the deadline passes. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}
