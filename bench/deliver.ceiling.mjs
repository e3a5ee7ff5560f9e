// Load generator for deliver.bench.ts (the ceiling): autocannon in its own process, so building
// requests and reading answers shares no event loop with the engine or the emulator it measures.
// One PATCH per user, exactly the path, headers and body the engine sends for that user.
// usage: node deliver.ceiling.mjs URL APP_ID USERS_FILE CONNECTIONS HEADERS_JSON BODY
// Prints {requests, seconds, non2xx, errors} as JSON.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const autocannon = createRequire(import.meta.url)('autocannon');
const [url, appId, usersFile, connections, headersJson, body] = process.argv.slice(2);
const users = readFileSync(usersFile, 'utf8')
  .split('\n')
  .filter((l) => l.length > 0);
let i = 0;
// autocannon reports a run of `amount` requests at its next one-second tick, so its own duration
// is the run's time rounded up to a whole second (plus a few ms): 20,000 requests in 1.2 s or in
// 1.9 s both read as 2.04 s. The ceiling is timed here, from the start to the last answer.
let answered = 0;
let lastAnswerAt = 0;
const startedAt = performance.now();
const result = await new Promise((resolve, reject) => {
  const instance = autocannon(
    {
      url,
      connections: Number(connections),
      amount: users.length,
      requests: [
        {
          method: 'PATCH',
          headers: JSON.parse(headersJson),
          setupRequest: (req) => ({
            ...req,
            path: `/apps/${appId}/users/by/external_id/${encodeURIComponent(users[i++ % users.length])}`,
            body,
          }),
        },
      ],
    },
    (err, r) => (err ? reject(err) : resolve(r)),
  );
  instance.on('response', () => {
    answered++;
    lastAnswerAt = performance.now();
  });
});
process.stdout.write(
  JSON.stringify({
    requests: answered,
    seconds: (lastAnswerAt - startedAt) / 1000,
    non2xx: result.non2xx,
    errors: result.errors,
  }),
);
