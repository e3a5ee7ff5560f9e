/**
 * Shared by the HTTP-ingest benchmarks (ingest, webhook_ack): a load generator run as its own
 * process, and the bare node:http baseline it is compared with in the same run.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';

export interface LoadResult {
  requests: { total: number };
  latency: { p50: number; p99: number; max: number };
  non2xx: number;
  errors: number;
}

/**
 * Runs a senders script (autocannon with the benchmark's bodies) in its own process and parses
 * the JSON it prints: in the server's process it would compete for the one event loop and
 * measure mostly itself.
 */
export function loadFromProcess(script: string, args: string[], durationS: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, ...args], { maxBuffer: 16 * 1024 * 1024, timeout: (durationS + 60) * 1000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`load generator failed: ${stderr || err.message}`)) : resolve(JSON.parse(stdout) as LoadResult),
    );
  });
}

/** The baseline: a bare node:http server that reads the body and answers 200 with `answer`, under `load`. */
export async function againstBareServer(answer: string, load: (url: string) => Promise<LoadResult>): Promise<LoadResult> {
  const bare = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answer);
    });
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
  try {
    return await load(`http://127.0.0.1:${(bare.address() as { port: number }).port}/`);
  } finally {
    await new Promise((r) => bare.close(r));
  }
}
