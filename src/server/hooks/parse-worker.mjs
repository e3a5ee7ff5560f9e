// Beside the sources (tests, benches) the parse worker is TypeScript: this shim loads it through
// tsx. The build emits dist/parse-worker.mjs, compiled, which parse-pool.ts finds by the same name.
import { register } from 'tsx/esm/api';

register();
await import('./parse-worker-thread.ts');
