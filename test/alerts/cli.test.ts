import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openContext } from '../../src/store';
import { cliScope, runCli } from '../cli/proc';
import { describeDialects } from '../helpers/db';
import { type HttpReceiver, type SmtpReceiver, startHttpReceiver, startSmtpReceiver } from './receivers';

const TOKEN = 'T0KEN-in-the-url-PLAINTEXT';
const SLACK_TOKEN = 'sl4ck-token-PLAINTEXT';
const SMTP = { user: 'bot@example.test', password: 'pa55word-PLAINTEXT' };
const SECRETS = [TOKEN, SLACK_TOKEN, SMTP.password];

let hook: HttpReceiver;
let smtp: SmtpReceiver;
beforeAll(async () => {
  hook = await startHttpReceiver();
  smtp = await startSmtpReceiver(SMTP);
});
afterAll(async () => {
  await hook.close();
  await smtp.close();
});

function expectNoSecret(text: string): void {
  for (const s of SECRETS) expect(text).not.toContain(s);
}

/** Every byte a SQLite database keeps on disk, or every row of the alert tables on PostgreSQL. */
async function storedText(url: string): Promise<string> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    return [file, `${file}-wal`]
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f).toString('utf8'))
      .join('\n');
  }
  const ctx = await openContext({ db: url, migrate: 'require' });
  try {
    const tables = ['alert_channels', 'alerts', 'alert_notifications'] as const;
    const rows = await Promise.all(tables.map((t) => ctx.store.db.selectFrom(t).selectAll().execute()));
    return JSON.stringify(rows);
  } finally {
    await ctx.close();
  }
}

// Each test runs the real command a dozen times or more; on a busy two-core machine one start takes seconds.
const SLOW = { timeout: 240_000 };

describeDialects('ampsignal alert (CLI)', (dialect) => {
  const scope = cliScope();

  it('adds channels without ever printing their secrets, sends a sample to each, and deletes them', SLOW, async () => {
    const url = await scope.freshDb(dialect);
    const cli = async (args: string[]) => {
      const r = await runCli(['--db', url, ...args]);
      expectNoSecret(r.stdout + r.stderr);
      return r;
    };
    const before = { hook: hook.accepted().length, mails: smtp.mails.length };

    const added = await cli([
      'alert',
      'channel',
      'add',
      'webhook',
      '--name',
      'ops',
      '--url',
      `${hook.url}/ops?token=${TOKEN}`,
      '--json',
    ]);
    expect(added.code, added.stderr).toBe(0);
    const webhook = JSON.parse(added.stdout);
    expect(webhook).toMatchObject({ name: 'ops', kind: 'webhook', settings: { url: `${hook.url}/…` } });
    const slack = await cli([
      'alert',
      'channel',
      'add',
      'slack',
      '--name',
      'chat',
      '--url',
      `${hook.url}/services/${SLACK_TOKEN}`,
    ]);
    expect(slack.code, slack.stderr).toBe(0);
    expect(slack.stdout).toContain('send a sample: ampsignal alert test chat');
    const mail = await cli([
      'alert',
      'channel',
      'add',
      'email',
      '--name',
      'mail',
      '--host',
      smtp.host,
      '--port',
      String(smtp.port),
      '--security',
      'none',
      '--user',
      SMTP.user,
      '--password',
      SMTP.password,
      '--from',
      'ampsignal@example.test',
      '--to',
      'a@example.test,b@example.test',
      '--json',
    ]);
    expect(mail.code, mail.stderr).toBe(0);
    expect(JSON.parse(mail.stdout).settings).toEqual({
      host: smtp.host,
      port: smtp.port,
      security: 'none',
      user: SMTP.user,
      from: 'ampsignal@example.test',
      to: ['a@example.test', 'b@example.test'],
      password_set: true,
    });

    const list = await cli(['alert', 'channel', 'list', '--json']);
    expect(JSON.parse(list.stdout).map((c: { name: string }) => c.name)).toEqual(['ops', 'chat', 'mail']);
    const human = await cli(['alert', 'channel', 'list']);
    expect(human.stdout).toContain(`smtp:  ${smtp.host}:${smtp.port} (none, user ${SMTP.user} (password set))`);
    const shown = await cli(['alert', 'channel', 'show', webhook.id]);
    expect(shown.stdout).toContain(`url:   ${hook.url}/…`);

    // A sample through each channel, by name or id.
    for (const ref of ['ops', 'chat', 'mail']) {
      const t = await cli(['alert', 'test', ref, '--json']);
      expect(t.code, t.stderr).toBe(0);
      expect(JSON.parse(t.stdout)).toMatchObject({ ok: true, name: ref });
    }
    const got = hook.accepted().slice(before.hook);
    expect(got.map((r) => r.path)).toEqual([`/ops?token=${TOKEN}`, `/services/${SLACK_TOKEN}`]);
    expect(got[0]!.body).toMatchObject({ event: 'test', alert: { kind: 'test' } });
    expect(got[1]!.body.text).toContain('*[TEST] Test alert from ampsignal to "chat"*');
    const mails = smtp.mails.slice(before.mails);
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({ user: SMTP.user, to: ['a@example.test', 'b@example.test'] });
    expect(mails[0]!.headers.subject).toBe('[TEST] Test alert from ampsignal to "mail"');

    // A receiver that refuses: exit 1, its answer on stderr, ok=false in the JSON.
    hook.failNext(1, 404, 'no_service');
    const refused = await cli(['alert', 'test', 'chat', '--json']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the Slack webhook answered 404: no_service');
    expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, error: 'vendor_rejected' });

    const alerts = await cli(['alert', 'list']);
    expect(alerts.stdout.trim()).toBe('no open alerts');
    const evaluated = await cli(['alert', 'evaluate', '--json']);
    expect(JSON.parse(evaluated.stdout)).toEqual({
      conditions: 0,
      opened: [],
      resolved: [],
      sent: 0,
      retrying: 0,
      failed: 0,
    });

    const stored = await storedText(url);
    // What was stored is there to read (the sender address, the URL's origin) but no secret is.
    expect(stored).toContain('ampsignal@example.test');
    expect(stored).toContain(`${hook.url}/…`);
    expectNoSecret(stored);

    const deleted = await cli(['alert', 'channel', 'delete', 'ops']);
    expect(deleted.stdout).toBe(`deleted alert channel ${webhook.id} (ops)\n`);
    const gone = await cli(['alert', 'channel', 'show', 'ops']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('no alert channel "ops"');
  });

  it('refuses bad channel input with the flag to fix, and stores nothing', SLOW, async () => {
    const url = await scope.freshDb(dialect);
    const add = (args: string[]) => runCli(['--db', url, 'alert', 'channel', 'add', ...args]);
    const cases: Array<[string[], string]> = [
      [['webhook', '--name', 'x', '--url', 'ftp://x.example'], '--url: must be an http(s) URL'],
      [
        ['webhook', '--name', 'x', '--url', 'https://x.example', '--host', 'h'],
        '--host does not apply to a webhook channel',
      ],
      [['email', '--name', 'x', '--host', 'h', '--from', 'a@example.test'], '--to: must be a list of e-mail addresses'],
      [
        ['email', '--name', 'x', '--host', 'h', '--from', 'nobody', '--to', 'a@example.test'],
        '--from: must be an e-mail address',
      ],
      [
        ['email', '--name', 'x', '--host', 'h', '--port', 'abc', '--from', 'a@example.test', '--to', 'b@example.test'],
        '--port: must be a whole number',
      ],
      [
        [
          'email',
          '--name',
          'x',
          '--host',
          'h',
          '--password',
          'p',
          '--from',
          'a@example.test',
          '--to',
          'b@example.test',
        ],
        '--user: a password needs a user name',
      ],
      [['pager', '--name', 'x'], 'kind must be one of webhook, slack, email'],
      [['slack', '--url', 'https://x.example'], 'missing --name'],
    ];
    for (const [args, message] of cases) {
      const r = await add(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(message);
    }
    expect((await add(['slack', '--name', 'dup', '--url', 'https://x.example/a'])).code).toBe(0);
    const dup = await add(['slack', '--name', 'dup', '--url', 'https://x.example/b']);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toContain('an alert channel named "dup" already exists');
    const list = await runCli(['--db', url, 'alert', 'channel', 'list', '--json']);
    expect(JSON.parse(list.stdout).map((c: { name: string }) => c.name)).toEqual(['dup']);
  });
});
