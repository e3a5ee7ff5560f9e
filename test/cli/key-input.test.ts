import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { openContext } from '../../src/store';
import { describeDialects } from '../helpers/db';
import { cliScope } from './proc';

const BIN = resolve(__dirname, '../../bin/ampsignal.mjs');
const scope = cliScope();

/** Runs the CLI with `stdin` piped in; resolves with the exit code and output. */
function run(args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; argv: string[] }>((done) => {
    const argv = [BIN, ...args];
    const child = spawn(process.execPath, argv, { env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(opts.stdin ?? '');
    child.on('close', (code) => done({ code, stdout, stderr, argv }));
  });
}

/**
 * Keys as arguments show in `ps` and shell history (issue 11 item 11). Every key flag also takes
 * `-` (standard input) and `--<flag>-env NAME`; what is stored is the key itself.
 */
describeDialects('API keys from the environment or standard input', (dialect) => {
  it('source, destination and stream add take keys from an environment variable or standard input', async () => {
    const url = await scope.freshDb(dialect);
    expect((await run(['--db', url, 'migrate'])).code).toBe(0);
    const keys = {
      ampApi: 'amp-api-key-from-env-7f3a',
      ampSecret: 'amp-secret-from-stdin-91c2',
      onesignal: 'onesignal-key-from-stdin-55d0',
      stream: 'stream-amp-key-from-env-0b8e',
    };
    const source = await run(
      ['--db', url, 'source', 'add', 'amplitude', '--name', 'p', '--api-key-env', 'AMP_KEY', '--secret-key', '-'],
      { env: { AMP_KEY: keys.ampApi }, stdin: `${keys.ampSecret}\n` },
    );
    const dest = await run(
      [
        ...['--db', url, 'destination', 'add', 'onesignal', '--name', 'd'],
        ...['--app-id', '6f1c2b7e-0a4d-4c8e-9b1f-2d6e5a7c9b10', '--api-key', '-', '--json'],
      ],
      { stdin: `${keys.onesignal}\n` },
    );
    const stream = await run(
      ['--db', url, 'stream', 'add', '--name', 's', '--amplitude-api-key-env', 'STREAM_KEY', '--json'],
      { env: { STREAM_KEY: keys.stream } },
    );
    for (const r of [source, dest, stream]) {
      expect(r.code, r.stderr).toBe(0);
      // Not in the command line (what `ps` shows), nor in what the command printed.
      for (const k of Object.values(keys)) {
        expect(r.argv.join(' ')).not.toContain(k);
        expect(r.stdout + r.stderr).not.toContain(k);
      }
    }

    const ctx = await openContext({ db: url, migrate: 'require' });
    try {
      const s = await ctx.store.db.selectFrom('sources').selectAll().executeTakeFirstOrThrow();
      const d = await ctx.store.db.selectFrom('destinations').selectAll().executeTakeFirstOrThrow();
      const st = await ctx.store.db.selectFrom('streams').selectAll().executeTakeFirstOrThrow();
      expect(ctx.secrets.decrypt(s.api_key_enc)).toBe(keys.ampApi);
      expect(ctx.secrets.decrypt(s.secret_key_enc)).toBe(keys.ampSecret);
      expect(ctx.secrets.decrypt(d.api_key_enc)).toBe(keys.onesignal);
      expect(ctx.secrets.decrypt(st.amplitude_api_key_enc)).toBe(keys.stream);
    } finally {
      await ctx.close();
    }
  });

  it('mistakes are one line and exit 2: an unset variable, two keys from standard input, a flag and its -env both', async () => {
    const url = await scope.freshDb(dialect);
    expect((await run(['--db', url, 'migrate'])).code).toBe(0);
    const cases: Array<[string[], RegExp, { env?: Record<string, string>; stdin?: string }?]> = [
      [['stream', 'add', '--name', 's', '--amplitude-api-key-env', 'NOT_SET_ANYWHERE'], /NOT_SET_ANYWHERE is not set/],
      [
        ['source', 'add', 'amplitude', '--name', 'p', '--api-key', '-', '--secret-key', '-'],
        /only one key can come from standard input/,
        { stdin: 'a\nb\n' },
      ],
      [
        [
          'destination',
          'add',
          'onesignal',
          '--name',
          'd',
          '--app-id',
          '6f1c2b7e-0a4d-4c8e-9b1f-2d6e5a7c9b10',
          '--api-key',
          'k',
          '--api-key-env',
          'K',
        ],
        /give --api-key or --api-key-env, not both/,
        { env: { K: 'v' } },
      ],
      [['stream', 'add', '--name', 's', '--amplitude-api-key', '-'], /standard input had no key/, { stdin: '' }],
    ];
    for (const [args, message, opts] of cases) {
      const r = await run(['--db', url, ...args], opts);
      expect(r.code, args.join(' ')).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0], args.join(' ')).toMatch(message);
    }
  });
});
