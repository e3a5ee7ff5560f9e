import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** What a local HTTP receiver got: one entry per request, answered or not. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
  /** The status it was answered with. */
  status: number;
}

/**
 * A webhook receiver on loopback, standing in for a JSON webhook endpoint or a Slack incoming
 * webhook. `failNext(n, status)` answers the next n requests with `status`.
 */
export interface HttpReceiver {
  url: string;
  received: Received[];
  /** Requests answered 2xx (what the receiver accepted). */
  accepted(): Received[];
  failNext(n: number, status: number, body?: string): void;
  /** Answers every request this much later (a slow receiver keeps its sender busy). */
  delay(ms: number): void;
  close(): Promise<void>;
}

export async function startHttpReceiver(): Promise<HttpReceiver> {
  let delayMs = 0;
  const received: Received[] = [];
  let failures: { left: number; status: number; body: string } = { left: 0, status: 500, body: '' };
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        /* keep the text */
      }
      const fail = failures.left > 0;
      if (fail) failures.left--;
      const status = fail ? failures.status : 200;
      received.push({ path: req.url ?? '', headers: req.headers, body, status });
      setTimeout(
        () => res.writeHead(status, { 'content-type': 'text/plain' }).end(fail ? failures.body : 'ok'),
        delayMs,
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    accepted: () => received.filter((r) => r.status >= 200 && r.status < 300),
    failNext(n, status, body = 'unavailable') {
      failures = { left: n, status, body };
    },
    delay(ms) {
      delayMs = ms;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface Mail {
  from: string;
  to: string[];
  user: string | undefined;
  raw: string;
  headers: Record<string, string>;
}

/**
 * A local SMTP server (the smtp-server package): plain SMTP on loopback with AUTH, which
 * accepts only the given user and password and keeps every message.
 */
export interface SmtpReceiver {
  host: string;
  port: number;
  mails: Mail[];
  /** Accepts each message this much later. */
  delay(ms: number): void;
  close(): Promise<void>;
}

/** RFC 2047 encoded words (`=?UTF-8?Q?…?=`, `=?UTF-8?B?…?=`) as text; the space between two of them goes. */
function decodeWords(v: string): string {
  return v.replace(/\?=\s+=\?/g, '?==?').replace(/=\?utf-8\?([qb])\?([^?]*)\?=/gi, (_m, enc: string, text: string) =>
    enc.toLowerCase() === 'b'
      ? Buffer.from(text, 'base64').toString('utf8')
      : Buffer.from(
          text
            .replace(/_/g, ' ')
            .replace(/=([0-9a-f]{2})/gi, (_x, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
          'latin1',
        ).toString('utf8'),
  );
}

function headersOf(raw: string): Record<string, string> {
  const head = raw.split(/\r?\n\r?\n/)[0] ?? '';
  const out: Record<string, string> = {};
  // Unfold continuation lines, then one header per line.
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).toLowerCase()] = decodeWords(line.slice(i + 1).trim());
  }
  return out;
}

export async function startSmtpReceiver(login: { user: string; password: string }): Promise<SmtpReceiver> {
  const mails: Mail[] = [];
  let delayMs = 0;
  const server = new SMTPServer({
    logger: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    onAuth(auth, _session, cb) {
      if (auth.username === login.user && auth.password === login.password) return cb(null, { user: auth.username });
      return cb(new Error('Invalid username or password'));
    },
    onData(stream, session, cb) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => (raw += d));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          raw,
          headers: headersOf(raw),
        });
        setTimeout(() => cb(), delayMs);
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    mails,
    delay(ms) {
      delayMs = ms;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
