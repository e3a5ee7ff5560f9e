import { Command, CommanderError } from 'commander';
import { reportError } from './output';
import { register as registerCohort } from './cohort';
import { register as registerDeadLetters } from './dead-letters';
import { register as registerDemo } from './demo';
import { register as registerDestination } from './destination';
import { register as registerEmulator } from './emulator';
import { register as registerMigrate } from './migrate';
import { register as registerRuns } from './runs';
import { register as registerServe } from './serve';
import { register as registerSource } from './source';
import { register as registerStream } from './stream';
import { register as registerSync } from './sync';
import { register as registerWorker } from './worker';

export function buildProgram(): Command {
  const program = new Command('ampsignal')
    .description('Sync Amplitude cohorts to OneSignal tags, and OneSignal message events to Amplitude.')
    .option('--db <url>', 'database URL: sqlite:PATH or postgres://… (default: $AMPSIGNAL_DATABASE_URL, else sqlite:./.ampsignal/ampsignal.db)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of [
    registerSource,
    registerDestination,
    registerCohort,
    registerSync,
    registerRuns,
    registerStream,
    registerDeadLetters,
    registerServe,
    registerWorker,
    registerMigrate,
    registerEmulator,
    registerDemo,
  ]) {
    register(program);
  }
  // Subcommands inherit exitOverride so a wrong flag exits 2 instead of commander's 1.
  const override = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(override);
  };
  override(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
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
