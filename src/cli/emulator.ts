import type { Command } from 'commander';
import { registerAmplitudeEmulatorCli } from '../emulators/amplitude/cli';
import { registerOneSignalEmulatorCli } from '../emulators/onesignal/cli';

export function register(program: Command): void {
  const emulator = program.command('emulator');
  registerOneSignalEmulatorCli(emulator);
  registerAmplitudeEmulatorCli(emulator);
}
