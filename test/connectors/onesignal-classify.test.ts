import { describe, expect, it } from 'vitest';
import type { HttpResponse } from '../../src/connectors/http';
import { classifyResponse, vendorErrorText } from '../../src/connectors/onesignal/classify';

const res = (status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse => ({
  status,
  headers,
  text: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('OneSignal error envelopes', () => {
  it('reads string, object, success:false and empty bodies', () => {
    expect(vendorErrorText(JSON.stringify({ errors: ['API rate limit exceeded.'], limit: 'App ID' }))).toBe(
      'API rate limit exceeded.',
    );
    expect(
      vendorErrorText(
        JSON.stringify({ errors: [{ code: 'auth-1', title: "This operation requires 'Authorization'" }] }),
      ),
    ).toBe("This operation requires 'Authorization' (auth-1)");
    expect(vendorErrorText(JSON.stringify({ success: false, errors: ['Segment name is already taken.'] }))).toBe(
      'Segment name is already taken.',
    );
    expect(vendorErrorText(JSON.stringify({ success: false }))).toBeUndefined();
    expect(vendorErrorText('')).toBeUndefined();
    expect(vendorErrorText('<html>\n Bad Gateway </html>')).toBe('<html> Bad Gateway </html>');
  });
});

describe('classifyResponse', () => {
  it('treats 2xx as success, but not {success:false}', () => {
    expect(classifyResponse(res(202, { properties: {} }), 'update_user')).toBeNull();
    expect(classifyResponse(res(200, ''), 'test_connection')).toBeNull();
    const e = classifyResponse(res(200, { success: false, errors: ['nope'] }), 'create_segment');
    expect(e?.code).toBe('vendor_rejected');
    expect(e?.message).toContain('nope');
  });

  it('429 is rate_limited with Retry-After, 60 s when unreadable', () => {
    const e = classifyResponse(
      res(429, { errors: ['API rate limit exceeded'] }, { 'retry-after': '3' }),
      'update_user',
    );
    expect(e?.code).toBe('rate_limited');
    expect(e?.kind).toBe('retryable');
    expect(e?.retryAfterMs).toBe(3000);
    expect(classifyResponse(res(429, '', { 'retry-after': 'soon' }), 'update_user')?.retryAfterMs).toBe(60_000);
    expect(classifyResponse(res(429, ''), 'update_user')?.retryAfterMs).toBe(60_000);
  });

  it('408 and 5xx are retryable', () => {
    for (const s of [408, 500, 502, 503, 504]) {
      const e = classifyResponse(res(s, { errors: ['upstream'] }), 'update_user');
      expect(e?.kind, String(s)).toBe('retryable');
      expect(e?.message).toContain('upstream');
    }
  });

  it('401/403 and a bad app id are destination-fatal with the vendor text', () => {
    const denied = "Access denied.  Please include an 'Authorization: ...' header with a valid API key";
    const e403 = classifyResponse(res(403, { errors: [denied] }), 'test_connection');
    expect(e403?.code).toBe('vendor_auth');
    expect(e403?.kind).toBe('destination_fatal');
    expect(e403?.message).toContain('Access denied. Please include');
    expect(classifyResponse(res(403, ''), 'update_user')?.code).toBe('vendor_auth');
    expect(classifyResponse(res(401, { errors: [{ code: 'auth-1', title: 'x' }] }), 'update_user')?.code).toBe(
      'vendor_auth',
    );
    const app = classifyResponse(
      res(400, { errors: ['app_id not found. You may be missing a Content-Type: application/json header.'] }),
      'update_user',
    );
    expect(app?.kind).toBe('destination_fatal');
    expect(app?.message).toContain('app_id not found');
  });

  it('404 on a user update is a skip; elsewhere it is terminal', () => {
    const e = classifyResponse(
      res(404, { errors: [{ code: 'user-not-found', title: 'User not found' }] }),
      'update_user',
    );
    expect(e?.code).toBe('vendor_not_found');
    expect(e?.kind).toBe('skip');
    expect(classifyResponse(res(404, { success: false }), 'delete_segment')?.code).toBe('vendor_rejected');
  });

  it('other 4xx are terminal with the vendor text', () => {
    const e = classifyResponse(
      res(400, { errors: ['Please limit your tag updates to 100 per request'] }),
      'update_user',
    );
    expect(e?.code).toBe('vendor_rejected');
    expect(e?.kind).toBe('terminal');
    expect(e?.message).toContain('Please limit your tag updates to 100 per request');
    expect(
      classifyResponse(
        res(409, { errors: [{ code: 'user-2', title: 'One or more Aliases claimed by another User' }] }),
        'update_user',
      )?.kind,
    ).toBe('terminal');
  });
});
