import type { Command } from 'commander';
import { registerAmplitudeEmulatorCli } from './emulator-amplitude';
import { registerOneSignalEmulatorCli } from './emulator-onesignal';

export function register(program: Command): void {
  const emulator = program.command('emulator');
  registerOneSignalEmulatorCli(emulator);
  registerAmplitudeEmulatorCli(emulator);
}
