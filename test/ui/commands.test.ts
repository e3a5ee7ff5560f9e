import type { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main';
import { buildServer } from '../../src/server/app';
import { describeEachDialect } from '../helpers/db';
import { TOKEN } from './harness';

/**
 * Every `ampsignal …` command a page shows must be one the CLI accepts: the command exists,
 * each flag shown is one of its options, and its required arguments are written out (the
 * catalog once showed `source add --name …`, which the CLI refuses without `amplitude`).
 */

const PAGES = [
  '/',
  '/catalog',
  '/sources',
  '/sources/new',
  '/destinations',
  '/destinations/new',
  '/cohorts',
  '/streams',
  '/streams/new',
];

function commandsIn(html: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/<code[^>]*>([^<]*)<\/code>/g)) {
    const text = (m[1] ?? '')
      .replace(/&amp;/g, '&')
      .replace(/&#39;/g, "'")
      .replace(/&quot;/g, '"')
      .trim();
    if (text.startsWith('ampsignal ')) out.push(text);
  }
  return out;
}

async function problemWith(shown: string): Promise<string | undefined> {
  const words = shown.split(/\s+/).slice(1);
  const program = await buildProgram(['node', 'ampsignal', ...words]);
  let cmd: Command = program;
  let i = 0;
  while (i < words.length) {
    const next = cmd.commands.find((c) => c.name() === words[i]);
    if (!next) break;
    cmd = next;
    i++;
  }
  if (cmd === program) return `"${shown}": no such command`;
  if (cmd.commands.length > 0) return `"${shown}": "${cmd.name()}" needs a subcommand`;
  const rest = words.slice(i);
  for (const w of rest.filter((x) => x.startsWith('--'))) {
    if (!cmd.options.some((o) => o.long === w)) return `"${shown}": ${cmd.name()} has no option ${w}`;
  }
  const required = cmd.registeredArguments.filter((a) => a.required).length;
  const firstFlag = rest.findIndex((w) => w.startsWith('-'));
  const positional = (firstFlag === -1 ? rest : rest.slice(0, firstFlag)).length;
  const flagsShown = rest.some((w) => w.startsWith('--'));
  // A bare reference ("ampsignal cohort import") names a command; a command with flags is one to run.
  if (flagsShown && positional < required)
    return `"${shown}": ${cmd.name()} takes ${required} argument(s) before its flags (${cmd.registeredArguments.map((a) => a.name()).join(', ')})`;
  return undefined;
}

describeEachDialect('commands shown in the web UI', (db) => {
  let app: FastifyInstance;
  let cookie = '';

  beforeAll(async () => {
    app = await buildServer({ ctx: db().ctx, adminToken: TOKEN });
    const signIn = await app.inject({ url: `/?token=${TOKEN}` });
    cookie = String(signIn.headers['set-cookie']).split(';')[0]!;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('are commands the CLI accepts, with their required arguments', async () => {
    const shown = new Set<string>();
    for (const url of PAGES) {
      const r = await app.inject({ url, headers: { cookie } });
      expect(r.statusCode, url).toBe(200);
      for (const c of commandsIn(r.body)) shown.add(c);
    }
    expect(shown.size).toBeGreaterThan(2);
    const problems = (await Promise.all([...shown].map(problemWith))).filter(Boolean);
    expect(problems).toEqual([]);
  });

  it('the check itself refuses the command the catalog used to show', async () => {
    expect(await problemWith('ampsignal source add --name … --region us --api-key … --secret-key …')).toMatch(
      /takes 1 argument\(s\) before its flags \(kind\)/,
    );
    expect(await problemWith('ampsignal cohort list --sauce …')).toMatch(/no option --sauce/);
  });
});
