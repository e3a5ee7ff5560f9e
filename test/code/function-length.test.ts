import { expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script, no type declarations
import { ENGINE_FOLDERS, longFunctions, MAX_FUNCTION_LINES } from '../../scripts/long-functions.mjs';

it(`no function in ${ENGINE_FOLDERS.join(', ')} is over ${MAX_FUNCTION_LINES} lines (node scripts/long-functions.mjs lists them)`, () => {
  const found = (longFunctions() as Array<{ file: string; name: string; line: number; lines: number }>).map(
    (f) => `${f.file} ${f.name}`,
  );
  expect(found).toEqual([]);
});
