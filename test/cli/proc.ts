import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { afterEach } from 'vitest';
import { freshDatabaseUrl, type TestDialect } from '../helpers/db';

const BIN = resolve(__dirname, '../../bin/ampsignal.mjs');

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI to completion. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
  cwd?: string,
): Promise<Finished> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`ampsignal ${args.join(' ')} did not finish in ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      res({ code, stdout, stderr });
    });
  });
}

export interface LongRunning {
  child: ChildProcessWithoutNullStreams;
  /** The first stdout JSON document (the start line of `serve --json` / `worker --json`). */
  started: Promise<Record<string, any>>;
  exited: Promise<Finished>;
  stderr(): string;
}

/** Starts a long-running CLI command (serve, worker) and resolves `started` on its JSON start line. */
export function startCli(args: string[], env: Record<string, string> = {}, cwd?: string): LongRunning {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, cwd });
  let stdout = '';
  let stderr = '';
  let onStart: (v: Record<string, any>) => void;
  let onFail: (e: Error) => void;
  const started = new Promise<Record<string, any>>((res, rej) => {
    onStart = res;
    onFail = rej;
  });
  child.stdout.on('data', (d) => {
    stdout += d;
    // `--json` pretty-prints one object: parse once it is complete.
    try {
      onStart(JSON.parse(stdout));
    } catch {
      /* not complete yet */
    }
  });
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<Finished>((res) => {
    child.on('close', (code) => {
      onFail(new Error(`process exited (${code}) before starting: ${stderr}`));
      res({ code, stdout, stderr });
    });
  });
  return { child, started, exited, stderr: () => stderr };
}

/** A loopback port with nothing listening on it (bound then released). */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/**
 * For CLI tests: fresh (unmigrated) databases and long-running children that are released
 * after each test, killed if still running.
 */
export function cliScope(): {
  freshDb(dialect: TestDialect): Promise<string>;
  start(args: string[], env?: Record<string, string>, cwd?: string): LongRunning;
} {
  const cleanups: Array<() => Promise<void>> = [];
  const children: LongRunning[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.child.exitCode === null) c.child.kill('SIGKILL');
    await Promise.all(cleanups.splice(0).map((c) => c()));
  });
  return {
    async freshDb(dialect) {
      const { url, cleanup } = await freshDatabaseUrl(dialect);
      cleanups.push(cleanup);
      return url;
    },
    start(args, env = {}, cwd) {
      const c = startCli(args, env, cwd);
      children.push(c);
      return c;
    },
  };
}
