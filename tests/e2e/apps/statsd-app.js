'use strict';
// An app using the real, unmodified npm hot-shots client in Datadog mode. It sends one of every
// DogStatsD message kind with values whose aggregates the test knows exactly, then closes.
//   APP_PROTOCOL=udp|uds, APP_PORT / APP_SOCKET, APP_PREFIX (metric name prefix).
const StatsD = require('hot-shots');

// hot-shots samples client-side (`Math.random() < rate`). Sending every sampled value makes the
// aggregated rate exact; the client itself is untouched.
Math.random = () => 0;

const protocol = process.env.APP_PROTOCOL || 'udp';
const prefix = process.env.APP_PREFIX || 'e2e.';
const errors = [];
const options = {
  datadog: true,
  protocol,
  globalTags: { app: 'e2e-metrics' },
  errorHandler: (err) => errors.push(String(err && err.stack || err)),
};
if (protocol === 'uds') options.path = process.env.APP_SOCKET;
else { options.host = '127.0.0.1'; options.port = Number(process.env.APP_PORT); }
if (process.env.APP_BUFFER) options.maxBufferSize = Number(process.env.APP_BUFFER);

const client = new StatsD(options);

async function main() {
  // All of a kind must land in one 10 s bucket: start early in a bucket.
  while ((Date.now() / 1000) % 10 > 6) await new Promise((r) => setTimeout(r, 100));

  for (let i = 0; i < 3; i++) client.increment(`${prefix}requests`, 1, 0.5, ['route:/x']);
  client.gauge(`${prefix}queue.depth`, 1, ['queue:high']);
  client.gauge(`${prefix}queue.depth`, 2, ['queue:high']);
  client.gauge(`${prefix}queue.depth`, 42.5, ['queue:high']);
  for (let v = 1; v <= 100; v++) client.histogram(`${prefix}latency`, v, ['db:pg']);
  for (let v = 1; v <= 10; v++) client.distribution(`${prefix}payload.size`, v);
  for (const user of ['a', 'b', 'c', 'a']) client.set(`${prefix}users`, user);
  client.timing(`${prefix}render`, 250);
  client.timing(`${prefix}render`, 750);
  client.event(`${prefix}deploy`, 'line1\nline2 with | pipe', { alert_type: 'warning', aggregation_key: 'agg1', priority: 'low', source_type_name: 'e2e', hostname: 'h1' }, ['ev:1']);
  client.check(`${prefix}can_connect`, client.CHECKS.WARNING, { message: 'slow m:ish', hostname: 'h2' }, ['chk:1']);
  await new Promise((resolve) => client.close(resolve));
  if (errors.length) {
    console.error(errors.join('\n'));
    process.exit(1);
  }
  console.log(JSON.stringify({ sent: true, protocol }));
}

main().catch((err) => { console.error(err); process.exit(1); });
