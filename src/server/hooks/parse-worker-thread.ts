// The webhook parse worker's body (see parse-pool.ts): the same check as the in-thread path,
// answering with the summary and the text raw-deflated for the store.
import { parentPort } from 'node:worker_threads';
import { deflateRawSync } from 'node:zlib';
import { checkWebhookBody } from '../../connectors/amplitude/webhook-payload';

const port = parentPort;
if (!port) throw new Error('parse-worker-thread runs only as a worker thread');

port.on('message', ({ id, bytes, receivedAt }: { id: number; bytes: Uint8Array; receivedAt: number }) => {
  try {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    const ok = checkWebhookBody(text, receivedAt);
    port.postMessage({ id, ok, deflated: deflateRawSync(text, { level: 1 }) });
  } catch (e) {
    const err = e as { name?: string; code?: string; message?: string };
    const code = err?.name === 'AmpError' ? err.code : 'internal';
    port.postMessage({ id, error: { code, message: String(err?.message ?? e) } });
  }
});
