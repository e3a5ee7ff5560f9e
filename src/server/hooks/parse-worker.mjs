// A webhook parse worker (see parse-pool.ts). Plain JavaScript so it starts the same way under
// the CLI, the tests and the benchmarks: it registers tsx itself, then loads the TypeScript check.
import { parentPort } from 'node:worker_threads';
import { deflateRawSync } from 'node:zlib';
import { register } from 'tsx/esm/api';

register();
const { checkWebhookBody } = await import('../../connectors/amplitude/webhook-payload.ts');

parentPort.on('message', ({ id, bytes }) => {
  try {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    const ok = checkWebhookBody(text);
    parentPort.postMessage({ id, ok, deflated: deflateRawSync(text, { level: 1 }) });
  } catch (e) {
    const code = e?.name === 'AmpError' ? e.code : 'internal';
    parentPort.postMessage({ id, error: { code, message: String(e?.message ?? e) } });
  }
});
