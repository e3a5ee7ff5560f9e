// Load generator for webhook_ack.bench.ts, run as its own process so the senders' work does
// not queue on the server's event loop. Every request carries a fresh message_id (autocannon's
// own [<id>] replacement sends nothing in 8.0.0).
// usage: node webhook_ack.senders.mjs URL BODY_FILE CONNECTIONS DURATION_S HEADERS_JSON
import { readFileSync } from 'node:fs';
import { postLoad } from './post-load.mjs';

const [url, bodyFile, connections, duration, headersJson] = process.argv.slice(2);
const [head, tail] = readFileSync(bodyFile, 'utf8').split('[<id>]');
await postLoad({ url, connections, duration, headersJson }, (n) => `${head}${process.pid}-${n}${tail ?? ''}`);
