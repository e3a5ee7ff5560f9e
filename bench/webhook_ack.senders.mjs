// Load generator for webhook_ack.bench.ts, run as its own process so the senders' work does
// not queue on the server's event loop. Every request carries a fresh message_id (autocannon's
// own [<id>] replacement sends nothing in 8.0.0). Prints autocannon's result as JSON.
// usage: node webhook_ack.senders.mjs URL BODY_FILE CONNECTIONS DURATION_S HEADERS_JSON
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const autocannon = createRequire(import.meta.url)('autocannon');
const [url, bodyFile, connections, duration, headersJson] = process.argv.slice(2);
const [head, tail] = readFileSync(bodyFile, 'utf8').split('[<id>]');
let n = 0;
const result = await autocannon({
  url,
  method: 'POST',
  connections: Number(connections),
  duration: Number(duration),
  headers: JSON.parse(headersJson),
  requests: [{ setupRequest: (req) => ({ ...req, body: `${head}${process.pid}-${n++}${tail ?? ''}` }) }],
});
process.stdout.write(JSON.stringify(result));
