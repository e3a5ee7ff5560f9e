import { Command, CommanderError } from 'commander';
import { VERSION } from '../telemetry/version';

type Register = (program: Command) => void;

export interface Group {
  describe: string;
  load: () => Promise<{ register: Register }>;
}

// Each command group is loaded only when its command is run: the server, the job queues and the
// emulators cost most of a second to load, which `runs list` or `--version` should not pay.
// The top-level `--help` lists the groups from these descriptions without loading any of them.
const GROUPS: Record<string, Group> = {
  source: {
    describe: 'Amplitude projects that cohorts come from (one source per project)',
    load: () => import('./source'),
  },
  destination: { describe: 'OneSignal apps that cohorts are synced to', load: () => import('./destination') },
  cohort: { describe: 'Cohorts: import from a file, list', load: () => import('./cohort') },
  sync: { describe: 'Syncs: a cohort mirrored onto a OneSignal destination as a tag', load: () => import('./sync') },
  runs: { describe: 'Run history: counters, per-record outcomes, held runs', load: () => import('./runs') },
  user: {
    describe: "One user across syncs: is the tag wanted, carried, and the last outcomes (why it is or isn't there)",
    load: () => import('./user'),
  },
  stream: { describe: 'OneSignal Event Streams forwarded to Amplitude', load: () => import('./stream') },
  'dead-letters': {
    describe: 'events Amplitude refused or that could not be sent, each with its reason',
    load: () => import('./dead-letters'),
  },
  alert: {
    describe: 'alerts: channels (JSON webhook, Slack, e-mail), open alerts, a test send',
    load: () => import('./alert'),
  },
  plan: {
    describe: 'configuration as code: what apply would create, change or delete (-f ampsignal.yaml)',
    load: () => import('./config'),
  },
  apply: {
    describe: 'configuration as code: make the database match a file (-f ampsignal.yaml; --prune deletes the rest)',
    load: () => import('./config'),
  },
  export: {
    describe:
      'configuration as code: write the current configuration as a file, keys as environment variable references',
    load: () => import('./config'),
  },
  serve: {
    describe: 'serve HTTP (webhooks, API, UI, /healthz); on SQLite also the scheduler and workers',
    load: () => import('./serve'),
  },
  worker: {
    describe: 'work jobs (scheduled pulls, deliveries, webhook application, event forwarding) until SIGTERM',
    load: () => import('./worker'),
  },
  migrate: {
    describe: "apply pending database migrations (ours, and graphile-worker's on PostgreSQL)",
    load: () => import('./migrate'),
  },
  emulator: {
    describe: 'run a faithful fake of a vendor API, for development and tests',
    load: () => import('./emulator'),
  },
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

/** `extra` adds groups that live above the CLI's floor (the demo, src/demo), composed by the bin. */
export async function buildProgram(argv: string[] = [], extra: Record<string, Group> = {}): Promise<Command> {
  const groups = { ...GROUPS, ...extra };
  const program = new Command('ampsignal')
    .description('Sync Amplitude cohorts to OneSignal tags, and OneSignal message events to Amplitude.')
    .version(VERSION, '-V, --version', 'print the version')
    .option(
      '--db <url>',
      'database URL: sqlite:PATH or postgres://… (default: $AMPSIGNAL_DATABASE_URL, else sqlite:./.ampsignal/ampsignal.db)',
    )
    .showHelpAfterError('(run with --help for usage)');
  const name = groupOf(argv.slice(2));
  const group = name && Object.hasOwn(groups, name) ? groups[name] : undefined;
  if (group) {
    (await group.load()).register(program);
    program.commands.find((c) => c.name() === name)?.description(group.describe);
  } else {
    // No known group: the usage is all commander will print, so list the groups unloaded.
    for (const [n, g] of Object.entries(groups)) program.command(n).description(g.describe);
  }
  // Every command throws instead of exiting, so a wrong flag exits 2 instead of commander's 1.
  const override = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(override);
  };
  override(program);
  return program;
}

export async function main(argv: string[], extra: Record<string, Group> = {}): Promise<void> {
  try {
    const program = await buildProgram(argv, extra);
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version are not errors; commander already printed the usage complaint.
      process.exitCode =
        e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? 0 : 2;
      return;
    }
    // Loaded on failure only: the output helpers bring the store, which --version never needs.
    (await import('./output')).reportError(e);
  }
}
