import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { AmpError } from '../errors';
import type { DatabaseTarget } from './url';

/**
 * API keys at rest: AES-256-GCM with a random 96-bit IV per value, stored as
 * `v1.<iv>.<tag>.<ciphertext>` (base64url). The key comes from AMPSIGNAL_SECRET_KEY
 * (64 hex chars or 32 bytes base64) or, failing that, a key file created with mode 0600
 * beside the SQLite database (or in ./.ampsignal for PostgreSQL). Every process that shares a
 * PostgreSQL database must share the key: set AMPSIGNAL_SECRET_KEY there.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new AmpError('secret_key_invalid', 'the secret key must be 32 bytes');
    this.key = key;
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join(
      '.',
    );
  }

  decrypt(sealed: string): string {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) {
      throw new AmpError('secret_key_invalid', 'a stored secret is not in the expected format');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new AmpError(
        'secret_key_invalid',
        'a stored secret cannot be decrypted with this key: AMPSIGNAL_SECRET_KEY (or the key file) differs from the one used to store it',
      );
    }
  }
}

function parseKey(raw: string): Buffer {
  const s = raw.trim();
  if (/^[0-9a-f]{64}$/i.test(s)) return Buffer.from(s, 'hex');
  const b = Buffer.from(s, 'base64');
  if (b.length === 32) return b;
  throw new AmpError('secret_key_invalid', 'AMPSIGNAL_SECRET_KEY must be 32 bytes as 64 hex characters or base64');
}

export function keyFilePath(target: DatabaseTarget): string {
  if (target.dialect === 'sqlite' && target.path !== ':memory:') return join(dirname(target.path), 'secret.key');
  return resolve('.ampsignal', 'secret.key');
}

export function loadSecretBox(target: DatabaseTarget): SecretBox {
  const env = process.env.AMPSIGNAL_SECRET_KEY;
  if (env) return new SecretBox(parseKey(env));
  const file = keyFilePath(target);
  if (existsSync(file)) return new SecretBox(parseKey(readFileSync(file, 'utf8')));
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  // 'wx' fails if another process created the file meanwhile; then we read theirs.
  try {
    writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    return new SecretBox(key);
  } catch {
    return new SecretBox(parseKey(readFileSync(file, 'utf8')));
  }
}

/** Constant-time comparison of a presented secret with the expected one. */
export function secretsEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
