#!/usr/bin/env node
// Compiles src/ into dist/: one ESM bundle per entry point (the CLI and each worker thread),
// with shared chunks split out so a command loads only the modules it uses. Dependencies stay
// external (installed beside the package). Types are checked separately by `tsc --noEmit`.
import { rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = resolve(root, 'dist');

rmSync(dist, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  // Worker threads are found at run time as `new URL('./NAME.mjs', import.meta.url)`: every
  // output sits flat in dist/ so that holds from any chunk, as it does beside the sources.
  entryPoints: {
    cli: 'src/cli/main.ts',
    demo: 'src/demo/command.ts',
    'parse-worker': 'src/server/hooks/parse-worker-thread.ts',
    'checkpoint-worker': 'src/store/checkpoint-worker.mjs',
  },
  outdir: dist,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  // The JSX runtime is named here, not read from a tsconfig.json near the working directory.
  jsx: 'automatic',
  jsxImportSource: '@kitajs/html',
  logLevel: 'warning',
});
