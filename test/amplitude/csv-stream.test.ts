import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { csvRecords, streamExternalIds } from '../../src/connectors/amplitude/csv-stream';

async function* chunks(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function collect(buf: Buffer, property = 'user_id', chunk = 7) {
  const ids: string[] = [];
  const r = await streamExternalIds(chunks(buf, chunk), property, (id) => {
    ids.push(id);
  });
  return { ids, ...r };
}

describe('cohort file CSV stream', () => {
  it('strips the tab Amplitude puts before headers and values, quoted or not', async () => {
    const csv = '"\tamplitude_id","\tuser_id"\n"\t101","\talice"\n\t102,\tbob\n"\t103",""\n\t"104","\tcarol, jr"\n';
    const r = await collect(Buffer.from(csv));
    expect(r.ids).toEqual(['alice', 'bob', 'carol, jr']);
    expect(r.skippedAnonymous).toBe(1);
    expect(r.rows).toBe(4);
  });

  it('gunzips by magic bytes, even split across tiny chunks and with no Content-Encoding to say so', async () => {
    const lines = ['amplitude_id,user_id'];
    for (let i = 0; i < 5000; i++) lines.push(`${i},${i % 10 === 0 ? '' : `user-${i}`}`);
    const gz = gzipSync(Buffer.from(lines.join('\n')));
    const r = await collect(gz, 'user_id', 1);
    expect(r.rows).toBe(5000);
    expect(r.skippedAnonymous).toBe(500);
    expect(r.ids).toHaveLength(4500);
    expect(r.ids[0]).toBe('user-1');
  });

  it('reads a gzip inside a gzip (a .csv.gz served with Content-Encoding: gzip)', async () => {
    const r = await collect(gzipSync(gzipSync(Buffer.from('user_id\nu1\nu2\n'))));
    expect(r.ids).toEqual(['u1', 'u2']);
  });

  it('maps identity to a user property column and counts rows without it as anonymous', async () => {
    const csv = '\tamplitude_id,\tuser_id,\temail\n\t1,\tu1,\ta@x.io\n\t2,\tu2,\n\t3,,\tc@x.io\n';
    const r = await collect(Buffer.from(csv), 'email');
    expect(r.ids).toEqual(['a@x.io', 'c@x.io']);
    expect(r.skippedAnonymous).toBe(1);
  });

  it('names the missing column when the mapped property is not in the file', async () => {
    await expect(collect(Buffer.from('amplitude_id,user_id\n1,u1\n'), 'email')).rejects.toThrow(
      /no "email" column \(columns: amplitude_id, user_id\)/,
    );
  });

  it('fails on a truncated gzip instead of returning a partial snapshot', async () => {
    const lines = ['user_id'];
    for (let i = 0; i < 20000; i++) lines.push(`user-${i}`);
    const gz = gzipSync(Buffer.from(lines.join('\n')));
    const cut = gz.subarray(0, Math.floor(gz.length / 2));
    await expect(collect(cut, 'user_id', 1024)).rejects.toMatchObject({ code: 'network' });
  });

  it('an empty file is an empty snapshot', async () => {
    const recs = [];
    for await (const r of csvRecords(chunks(Buffer.alloc(0), 10))) recs.push(r);
    expect(recs).toEqual([]);
  });
});
