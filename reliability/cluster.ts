/**
 * What every reliability scenario stands on: a fresh database, the real `ampsignal` command
 * (bin/ampsignal.mjs → dist/) run as one-shot CLI commands, and a cluster of long-running
 * processes (one `serve` and several `worker`s) that a scenario can kill with -9 and restart.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request, WebSocket } from 'undici';
import { type BenchDatabase, type BenchDialect, freshDatabase } from '../bench/db';

export type Dialect = BenchDialect;
export type { BenchDatabase as Database };
export { freshDatabase };

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = resolve(here, '../bin/ampsignal.mjs');

/** 64 hex characters: the key every process of one scenario shares (encryption at rest). */
export const SECRET_KEY = `${'0'.repeat(62)}a7`;
export const ADMIN_TOKEN = 'reliability-admin-token-7f3c9e';

/** The environment of every process a scenario starts (keys arrive in variables, never in argv). */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('AMPSIGNAL_')) env[k] = v;
  return {
    ...env,
    AMPSIGNAL_SECRET_KEY: SECRET_KEY,
    AMPSIGNAL_ADMIN_TOKEN: ADMIN_TOKEN,
    AMPSIGNAL_LOG_LEVEL: 'warn',
    // Amplitude's cohort export is polled every 2 s in production; the emulator is ready at once.
    AMPSIGNAL_AMPLITUDE_POLL_MS: '50',
    ...extra,
  };
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one CLI command to completion. */
export function cli(
  db: string,
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {},
): Promise<Finished> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, '--db', db, ...args], { env: baseEnv(opts.env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(opts.stdin ?? '');
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`ampsignal ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 120_000} ms: ${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    child.on('close', (code) => {
      clearTimeout(t);
      res({ code, stdout, stderr });
    });
  });
}

/** A CLI command with `--json` that must succeed; its parsed output. */
export async function cliJson<T = Record<string, any>>(
  db: string,
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string } = {},
): Promise<T> {
  const r = await cli(db, [...args, '--json'], opts);
  if (r.code !== 0) throw new Error(`ampsignal ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as T;
}

/** A loopback port with nothing listening on it (bound then released). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const live = new Set<Cluster>();

/** Ctrl-C (or a SIGTERM) of the harness must not leave its serve and worker processes running. */
export function stopClustersOnSignal(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const c of live) for (const m of c.members) m.child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

/** One long-running `serve` or `worker`, restartable after a kill. */
export interface Member {
  role: 'serve' | 'worker';
  child: ChildProcess;
  exited: Promise<number | null>;
  /** Everything it wrote to stderr (its log), over all its lives. */
  log: string[];
}

export interface ClusterOptions {
  db: string;
  dialect: Dialect;
  /** `worker` processes beside `serve` (on SQLite `serve` works jobs too). */
  workers: number;
  port: number;
  env?: Record<string, string>;
  /** Opens the node inspector of `serve` on this loopback port (to read its heap after a full GC). */
  inspectPort?: number;
}

/**
 * One `serve` (on PostgreSQL `--no-worker`: the workers work the jobs) and `workers` `worker`
 * processes. `kill(member)` is a kill -9; `restart(member)` starts the same role again.
 */
export class Cluster {
  readonly members: Member[] = [];
  readonly url: string;
  private stopping = false;

  constructor(private readonly opts: ClusterOptions) {
    this.url = `http://127.0.0.1:${opts.port}`;
    live.add(this);
  }

  async start(): Promise<void> {
    this.members.push(await this.spawn('serve'));
    const workers = await Promise.all(Array.from({ length: this.opts.workers }, () => this.spawn('worker')));
    this.members.push(...workers);
  }

  private args(role: Member['role']): string[] {
    if (role === 'worker') return ['worker', '--concurrency', '4', '--json'];
    const args = ['serve', '--port', String(this.opts.port), '--json'];
    if (this.opts.dialect === 'postgres') args.push('--no-worker');
    return args;
  }

  /** Starts one process and resolves once it printed its start line. */
  private spawn(role: Member['role'], log: string[] = []): Promise<Member> {
    const inspect = role === 'serve' && this.opts.inspectPort ? [`--inspect=127.0.0.1:${this.opts.inspectPort}`] : [];
    const child = spawn(process.execPath, [...inspect, BIN, '--db', this.opts.db, ...this.args(role)], {
      env: baseEnv(this.opts.env),
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.stderr!.on('data', (d) => log.push(String(d)));
    const member: Member = { role, child, exited, log };
    return new Promise((res, rej) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        if (/"status":\s*"(started|listening)"/.test(out)) res(member);
      });
      void exited.then((code) =>
        rej(new Error(`${role} exited (${code}) before starting: ${log.join('').slice(-2000)}`)),
      );
    });
  }

  /** kill -9, then waits for the process to be gone. */
  async kill(m: Member): Promise<void> {
    m.child.kill('SIGKILL');
    await m.exited;
  }

  /** Starts a killed member's role again, in its place. */
  async restart(m: Member): Promise<Member> {
    const next = await this.spawn(m.role, m.log);
    this.members[this.members.indexOf(m)] = next;
    return next;
  }

  /** Processes that died on their own (not killed by the scenario) so far. */
  crashed(): Member[] {
    return this.members.filter((m) => m.child.exitCode !== null && m.child.signalCode === null && !this.stopping);
  }

  /** SIGTERM to all; the exit codes of a clean stop. */
  async stop(): Promise<Array<number | null>> {
    this.stopping = true;
    for (const m of this.members) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGTERM');
    const codes = await Promise.all(
      this.members.map((m) =>
        Promise.race([m.exited, new Promise<number | null>((r) => setTimeout(() => r(-1), 20_000))]),
      ),
    );
    for (const m of this.members) if (m.child.exitCode === null) m.child.kill('SIGKILL');
    live.delete(this);
    return codes;
  }

  logs(): string {
    return this.members.map((m) => m.log.join('')).join('');
  }
}

/** One keep-alive agent for the scenarios' own HTTP calls, patient like a vendor's sender. */
export const http = new Agent({ connections: 64, headersTimeout: 120_000, bodyTimeout: 120_000 });

export interface Answer {
  status: number;
  text: string;
  json: any;
  headers: Record<string, string | string[] | undefined>;
}

/** One HTTP request; a transport failure comes back as status 0 with the error's code as text. */
export async function call(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  try {
    const res = await request(url, {
      dispatcher: http,
      method: (opts.method ?? 'GET') as 'GET',
      headers: opts.headers ?? {},
      body: opts.body ?? null,
    });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, text, json, headers: res.headers };
  } catch (e) {
    return { status: 0, text: (e as { code?: string }).code ?? String(e), json: undefined, headers: {} };
  }
}

/** The admin API of a running `serve`, authenticated with the scenario's token. */
export function api(base: string, path: string, method = 'GET', body?: unknown): Promise<Answer> {
  return call(`${base}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** Polls until `fn` gives a truthy value (no fixed sleeps as synchronisation). */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs: number,
  intervalMs = 100,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A seeded generator (mulberry32): the same seed gives the same scenario. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The heap a process uses after a full garbage collection, through its inspector (Chrome
 * DevTools Protocol): what stays reachable, without the collector's timing in it.
 */
export async function heapAfterGc(inspectPort: number): Promise<number> {
  const list = (await call(`http://127.0.0.1:${inspectPort}/json/list`)).json as Array<{
    webSocketDebuggerUrl: string;
  }>;
  const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
  await new Promise<void>((res, rej) => {
    ws.onopen = () => res();
    ws.onerror = () => rej(new Error('inspector connection failed'));
  });
  let id = 0;
  const pending = new Map<number, (v: any) => void>();
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data)) as { id?: number; result?: unknown };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
  };
  const send = (method: string) =>
    new Promise<any>((res) => {
      pending.set(++id, res);
      ws.send(JSON.stringify({ id, method }));
    });
  try {
    for (let i = 0; i < 3; i++) await send('HeapProfiler.collectGarbage');
    return ((await send('Runtime.getHeapUsage')) as { usedSize: number }).usedSize;
  } finally {
    ws.close();
  }
}
