import nodemailer from 'nodemailer';
import { AmpError } from '../../errors';
import { VERSION } from '../../telemetry/version';
import { type AlertMessage, headline, plainText } from './message';

/**
 * How the SMTP connection is protected: `tls` = TLS from the first byte (port 465),
 * `starttls` = plain then upgraded, and refused if the server cannot upgrade (587),
 * `none` = no TLS at all (a relay on localhost or a private network).
 */
export const SMTP_SECURITY = ['starttls', 'tls', 'none'] as const;
export type SmtpSecurity = (typeof SMTP_SECURITY)[number];

export interface EmailSettings {
  host: string;
  port: number;
  security: SmtpSecurity;
  user: string | null;
  from: string;
  to: string[];
}

const TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 };

/**
 * Sends one alert as a plain-text e-mail, on a connection of its own (alerts are rare; a pool
 * would hold a socket open for nothing). Its Message-ID is the notification id, so a repeat
 * after a lost answer threads with (and can be dropped as) the first.
 */
export async function sendEmail(
  s: EmailSettings,
  password: string | null,
  m: AlertMessage,
  signal?: AbortSignal,
): Promise<void> {
  const transport = nodemailer.createTransport({
    host: s.host,
    port: s.port,
    secure: s.security === 'tls',
    requireTLS: s.security === 'starttls',
    ignoreTLS: s.security === 'none',
    ...(s.user ? { auth: { user: s.user, pass: password ?? '' } } : {}),
    ...TIMEOUTS,
    // Alerts carry no attachments: never let message fields read files or URLs.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  });
  const onAbort = () => transport.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await transport.sendMail({
      from: s.from,
      to: s.to,
      subject: headline(m),
      text: plainText(m),
      messageId: `<${m.id}@ampsignal>`,
      headers: { 'X-Ampsignal-Event': m.event, 'X-Ampsignal-Condition': m.alert.condition },
      xMailer: `ampsignal/${VERSION}`,
    });
  } catch (e) {
    throw smtpError(e, s);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    transport.close();
  }
}

/**
 * nodemailer's error → the catalogue. Its `permanent` flag is RFC 5321's reading of the reply
 * code (5xx but 503); a 4xx reply, a dropped connection or a timeout is worth another try; a
 * refused login is not (the password is wrong until someone changes it).
 */
export function smtpError(e: unknown, s: Pick<EmailSettings, 'host' | 'port'>): AmpError {
  const err = e as { code?: string; responseCode?: number; permanent?: boolean; message?: string };
  const message = `SMTP ${s.host}:${s.port}: ${(err.message ?? String(e)).replace(/\s+/g, ' ').trim().slice(0, 300)}`;
  const status = typeof err.responseCode === 'number' ? err.responseCode : undefined;
  const opts = { cause: e, ...(status !== undefined ? { status } : {}) };
  if (err.code === 'EAUTH' || err.code === 'ENOAUTH') return new AmpError('vendor_auth', message, opts);
  if (err.code === 'ETIMEDOUT') return new AmpError('timeout', message, opts);
  if (err.permanent === true) return new AmpError('vendor_rejected', message, opts);
  if (status !== undefined && status >= 400 && status < 600) return new AmpError('vendor_unavailable', message, opts);
  if (err.code === 'EENVELOPE' || err.code === 'EMESSAGE' || err.code === 'EREQUIRETLS' || err.code === 'ECONFIG')
    return new AmpError('vendor_rejected', message, opts);
  return new AmpError('network', message, opts);
}
