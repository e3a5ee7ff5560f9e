import pino, { type Logger } from 'pino';

/**
 * Logs go to stderr so `--json` output on stdout stays machine-readable.
 * Keys, secrets and Authorization headers are redacted wherever they appear.
 */
export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'ampsignal',
      level: opts.level ?? process.env.AMPSIGNAL_LOG_LEVEL ?? 'warn',
      redact: {
        paths: [
          '*.api_key',
          '*.apiKey',
          '*.secret_key',
          '*.webhook_secret',
          'req.headers.authorization',
          'headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

export const log = createLogger();
export type { Logger };
