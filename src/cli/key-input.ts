import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { AmpError } from '../errors';

/**
 * API keys given as arguments are visible in `ps` and kept in shell history. Every key flag
 * (`--api-key`, `--secret-key`, `--amplitude-api-key`) therefore takes, besides the key itself:
 *  - `-`: the key is the first line of standard input (`printf %s "$KEY" | ampsignal … --api-key -`);
 *  - `--<flag>-env NAME`: the key is the value of the environment variable NAME.
 */
export function keyOption(cmd: Command, flag: string, what: string): Command {
  return cmd
    .option(`--${flag} <key>`, `${what}; "-" reads it from standard input`)
    .option(`--${flag}-env <name>`, `read the ${what.replace(/ \(.*\)$/, '')} from this environment variable`);
}

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/** Replaces `-` and `--<flag>-env` in `opts` by the keys they name (one line, exit 2 on a problem). */
export async function resolveKeys(opts: Record<string, unknown>, flags: string[]): Promise<void> {
  const fromStdin = flags.filter((f) => opts[camel(f)] === '-');
  if (fromStdin.length > 1) {
    throw new AmpError(
      'invalid_input',
      `only one key can come from standard input (${fromStdin.map((f) => `--${f} -`).join(', ')}); give the other with --${fromStdin[1]}-env NAME`,
    );
  }
  for (const flag of flags) {
    const key = camel(flag);
    const envName = opts[`${key}Env`];
    if (envName === undefined) continue;
    if (opts[key] !== undefined) throw new AmpError('invalid_input', `give --${flag} or --${flag}-env, not both`);
    opts[key] = fromEnvironment(flag, String(envName));
  }
  if (fromStdin[0]) opts[camel(fromStdin[0])] = await firstLineOfStdin(fromStdin[0]);
}

function fromEnvironment(flag: string, name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    throw new AmpError(
      'invalid_input',
      `--${flag}-env wants the name of an environment variable, not "${name.slice(0, 40)}"`,
    );
  const value = process.env[name]?.trim();
  if (!value)
    throw new AmpError('invalid_input', `--${flag}-env: the environment variable ${name} is not set or empty`);
  return value;
}

async function firstLineOfStdin(flag: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(`--${flag}: paste the key and press Enter: `);
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  let line: string | undefined;
  for await (const l of rl) {
    line = l;
    break;
  }
  rl.close();
  process.stdin.destroy();
  const key = line?.trim();
  if (!key) throw new AmpError('invalid_input', `--${flag} -: standard input had no key on its first line`);
  return key;
}
