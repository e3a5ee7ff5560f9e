// Load generator for ingest.bench.ts, run as its own process so building bodies and reading
// answers does not queue on the measured server's event loop (the bare baseline gets the same
// treatment). Every request is one realistic OneSignal event (README template shape) with a
// fresh event id, so none takes the cheaper duplicate path.
// usage: node ingest.senders.mjs URL CONNECTIONS DURATION_S HEADERS_JSON
import { postLoad } from './post-load.mjs';

const [url, connections, duration, headersJson] = process.argv.slice(2);
// Distinct per sender process, so two runs against one database never collide on event ids.
const prefix = (process.pid % 0xffff).toString(16).padStart(4, '0');

function eventBody(n) {
  return JSON.stringify({
    event: {
      kind: n % 3 ? 'message.push.received' : 'message.push.clicked',
      id: `7c1e${prefix}-2b1a-4c8e-9f00-${String(n).padStart(12, '0')}`,
      timestamp: 1708559115 + n,
      datetime: '2024-02-21T23:45:15.228Z',
      app_id: '5eb5a37e-b458-11e3-ac11-000c2940e62c',
      subscription_device_type: 'iOS',
      subscription_id: `a5b8e0c2-1d3f-4a6b-8c9d-${String(n % 5000).padStart(12, '0')}`,
      onesignal_id: `0f9a1b2c-3d4e-4f5a-8b6c-${String(n % 5000).padStart(12, '0')}`,
      external_id: `user_${n % 5000}`,
      data: {
        failure_reason: '',
        page_name: '',
        page_id: '',
        target_name: '',
        target_id: '',
        live_activity_id: '',
        live_activity_type: '',
      },
    },
    message: {
      id: 'b1c2d3e4-0000-4000-8000-000000000001',
      name: 'Spring sale',
      template_id: 'tpl-1',
      url: 'https://example.com/sale',
    },
    user: {
      external_id: `user_${n % 5000}`,
      onesignal_id: '',
      language: 'en',
      tags: { plan: 'pro', amp_cohort_c1: '1', first_seen: '2023-10-01' },
    },
  });
}

await postLoad({ url, connections, duration, headersJson }, eventBody);
