import type { Command } from 'commander';

// Placeholder until the emulator lands.
export function registerAmplitudeEmulatorCli(_emulator: Command): void {}
