// Shared by the senders scripts (ingest, webhook_ack): POSTs with autocannon, a fresh body per
// request from `bodyOf(n)`, and prints autocannon's result as JSON on stdout.
import { createRequire } from 'node:module';

const autocannon = createRequire(import.meta.url)('autocannon');

export async function postLoad({ url, connections, duration, headersJson }, bodyOf) {
  let n = 0;
  const result = await autocannon({
    url,
    method: 'POST',
    connections: Number(connections),
    duration: Number(duration),
    headers: JSON.parse(headersJson),
    requests: [{ setupRequest: (req) => ({ ...req, body: bodyOf(n++) }) }],
  });
  process.stdout.write(JSON.stringify(result));
}
