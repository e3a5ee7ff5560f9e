import type { Command } from 'commander';

// Placeholder: `cohort list --source ID` arrives with the Amplitude-source issue.
export function registerAmplitudeCohortCommands(_cohort: Command): void {}
