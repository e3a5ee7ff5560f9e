import { expect } from 'vitest';
import { AmpError } from '../../src/errors';

/** The AmpError `p` rejects with; the test fails if `p` resolves or rejects with anything else. */
export async function caught(p: Promise<unknown>): Promise<AmpError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AmpError);
    return e as AmpError;
  }
  throw new Error('expected a rejection');
}
