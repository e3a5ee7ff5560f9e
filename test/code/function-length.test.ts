import { expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script, no type declarations
import { ENGINE_FOLDERS, longFunctions, MAX_FUNCTION_LINES } from '../../scripts/long-functions.mjs';

/**
 * Functions still over the limit while another change rewrites them (issue 12 item 3), by
 * "file name": each entry must go once its function is short, so this list only shrinks.
 */
const OWED: Record<string, string> = {
  'src/sync/cohorts.ts importCohortFile': 'the cohort import moves into the dialect seam (issue 12 item 1)',
  'src/sync/syncs.ts createSync': 'sync creation moves to src/app (issue 12 item 2)',
};

it(`no function in ${ENGINE_FOLDERS.join(', ')} is over ${MAX_FUNCTION_LINES} lines (node scripts/long-functions.mjs lists them)`, () => {
  const found = (longFunctions() as Array<{ file: string; name: string; line: number; lines: number }>).map(
    (f) => `${f.file} ${f.name}`,
  );
  expect(found.filter((f) => !(f in OWED))).toEqual([]);
  expect(Object.keys(OWED).filter((f) => !found.includes(f))).toEqual([]);
});
