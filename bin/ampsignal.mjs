#!/usr/bin/env node
// The installed command runs the compiled bundle in dist/ (`npm run build`; a clone builds it
// on `npm install`, the published package ships it).
let main;
try {
  ({ main } = await import('../dist/cli.mjs'));
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes('dist/cli.mjs')) throw e;
  console.error('ampsignal: dist/ is missing; run `npm run build` in the project folder first');
  process.exit(1);
}
// The demo sits above every other layer (src/demo): the command line is composed here.
await main(process.argv, {
  demo: {
    describe:
      'Run an end-to-end demo against in-process OneSignal and Amplitude emulators (throwaway database unless --db is given)',
    load: () => import('../dist/demo.mjs'),
  },
});
