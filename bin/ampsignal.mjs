#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader, so a clone works after
// `npm install` with no build step and the CLI always matches the code the tests ran.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
