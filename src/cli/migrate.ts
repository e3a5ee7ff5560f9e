import type { Command } from 'commander';

// Placeholder: this command group is filled in by its issue.
export function register(_program: Command): void {}
