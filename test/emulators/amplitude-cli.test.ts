import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('ampsignal emulator amplitude (CLI)', () => {
  it('starts with --port 0 --json, serves a seeded cohort, and exits on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [
        'bin/ampsignal.mjs',
        'emulator',
        'amplitude',
        '--port',
        '0',
        '--json',
        '--project',
        'cli-key:cli-secret',
        '--seed-cohort',
        'c9:Nine:3',
      ],
      { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let out = '';
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
    });
    const summary = JSON.parse(line);
    expect(summary.projects).toEqual([{ apiKey: 'cli-key', secretKey: 'cli-secret' }]);
    expect(summary.cohorts).toEqual([{ id: 'c9', name: 'Nine', size: 3 }]);
    const res = await request(`${summary.url}/api/3/cohorts`, {
      headers: { authorization: `Basic ${Buffer.from('cli-key:cli-secret').toString('base64')}` },
    });
    expect(((await res.body.json()) as any).cohorts[0]).toMatchObject({ id: 'c9', size: 3 });
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
  });

  it('rejects bad flags with one line and exit code 2', async () => {
    const child = spawn(
      process.execPath,
      ['bin/ampsignal.mjs', 'emulator', 'amplitude', '--port', '0', '--project', 'nocolon'],
      {
        cwd: process.cwd(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toMatch(/--project #1: must look like API_KEY:SECRET_KEY/);
  });
});
