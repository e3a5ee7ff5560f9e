import { Command, CommanderError } from 'commander';
import { reportError } from './output';

type Register = (program: Command) => void;

// Each command group is loaded only when its command is run: importing every group pulls in
// fastify, graphile-worker, both emulators and the UI, which costs seconds of start-up for a
// one-line `sync run`. `--help` (or an unknown command) still loads them all.
const GROUPS: Record<string, () => Promise<{ register: Register }>> = {
  source: () => import('./source'),
  destination: () => import('./destination'),
  cohort: () => import('./cohort'),
  sync: () => import('./sync'),
  runs: () => import('./runs'),
  stream: () => import('./stream'),
  'dead-letters': () => import('./dead-letters'),
  serve: () => import('./serve'),
  worker: () => import('./worker'),
  migrate: () => import('./migrate'),
  emulator: () => import('./emulator'),
  demo: () => import('./demo'),
};

/** The first argument that is not a global option (or its value): the command group. */
function groupOf(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--db') {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return a;
  }
  return undefined;
}

export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command('ampsignal')
    .description('Sync Amplitude cohorts to OneSignal tags, and OneSignal message events to Amplitude.')
    .option('--db <url>', 'database URL: sqlite:PATH or postgres://… (default: $AMPSIGNAL_DATABASE_URL, else sqlite:./.ampsignal/ampsignal.db)')
    .showHelpAfterError('(run with --help for usage)');
  const group = groupOf(argv.slice(2));
  const wanted = group && GROUPS[group] ? [group] : Object.keys(GROUPS);
  for (const name of wanted) (await GROUPS[name]!()).register(program);
  // Every command throws instead of exiting, so a wrong flag exits 2 instead of commander's 1.
  const override = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(override);
  };
  override(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version are not errors; commander already printed the usage complaint.
      process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? 0 : 2;
      return;
    }
    reportError(e);
  }
}
