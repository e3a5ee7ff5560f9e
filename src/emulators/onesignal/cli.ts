import type { Command } from 'commander';

// Placeholder until the emulator lands.
export function registerOneSignalEmulatorCli(_emulator: Command): void {}
