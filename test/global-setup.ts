import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/** The CLI tests run the shipped command (bin/ampsignal.mjs → dist/), so it is built from the sources first. */
export default function setup(): void {
  execFileSync(process.execPath, [resolve(__dirname, '../scripts/build.mjs')], { stdio: 'inherit' });
}
