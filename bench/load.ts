/**
 * Shared by the benchmarks: a load generator run as its own process, the bare node:http baseline
 * the HTTP-ingest benchmarks (ingest, webhook_ack) are compared with in the same run, and the
 * alternation of rounds that lets both sides see the same machine.
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
    execFile(
      process.execPath,
      [script, ...args],
      { maxBuffer: 16 * 1024 * 1024, timeout: (durationS + 60) * 1000 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`load generator failed: ${stderr || err.message}`))
          : resolve(JSON.parse(stdout) as LoadResult),
    );
  });
}

/** The baseline: a bare node:http server that reads the body and answers 200 with `answer`, under `load`. */
export async function againstBareServer(
  answer: string,
  load: (url: string) => Promise<LoadResult>,
): Promise<LoadResult> {
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

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Runs baseline and ours alternately, `rounds` times each, after one unrecorded warm-up round of
 * each. These machines are shared: a baseline measured once, before ours, was seen anywhere
 * between 24,000 and 45,000 requests a second in three runs minutes apart. Ratios are taken per
 * round (neighbours in time) and their median kept. The warm-up: the first round of a fresh
 * server was always the lowest (JIT, SQLite page cache, a parse worker starting), while a bare
 * server has nothing to warm; a long-running `serve` is measured in its steady state.
 */
export async function alternate<B, O>(
  rounds: number,
  baseline: () => Promise<B>,
  ours: () => Promise<O>,
): Promise<Array<{ baseline: B; ours: O }>> {
  await baseline();
  await ours();
  const out: Array<{ baseline: B; ours: O }> = [];
  for (let i = 0; i < rounds; i++) out.push({ baseline: await baseline(), ours: await ours() });
  return out;
}
