'use strict';
// Sends DogStatsD metrics with the real npm hot-shots client as fast as it can for N seconds
// (bounded), in buffered mode (maxBufferSize 8192, as Datadog recommends), and prints how many
// metrics it handed to the socket. Used by tests/bench/dogstatsd_bench.sh's "hot-shots max" rows.
//   node hotshots_max.js udp PORT SECONDS | node hotshots_max.js uds PATH SECONDS
const path = require('node:path');
const StatsD = require(path.join(__dirname, '..', 'e2e', 'node_modules', 'hot-shots'));

const [protocol, target, secondsArg] = process.argv.slice(2);
const seconds = Math.min(Math.max(Number(secondsArg) || 5, 1), 60);
let errors = 0;
const options = { protocol, maxBufferSize: 8192, bufferFlushInterval: 50, errorHandler: () => { errors += 1; } };
if (protocol === 'uds') options.path = target; else { options.host = '127.0.0.1'; options.port = Number(target); }
const client = new StatsD(options);

let sent = 0;
const deadline = Date.now() + seconds * 1000;
const tags = ['env:bench', 'service:hotshots', 'route:/api/v1/users'];
function burst() {
  // 2,000 metrics per turn of the event loop, so hot-shots' own flushes get to run.
  for (let i = 0; i < 2000; i++) {
    const n = sent % 1000;
    switch (sent % 5) {
      case 0: client.increment(`bench.requests.${n % 10}`, 1, tags); break;
      case 1: client.gauge(`bench.queue.${n % 10}`, n, tags); break;
      case 2: client.histogram(`bench.latency.${n % 10}`, n, tags); break;
      case 3: client.distribution(`bench.size.${n % 10}`, n, tags); break;
      default: client.timing(`bench.render.${n % 10}`, n, tags); break;
    }
    sent += 1;
  }
  if (Date.now() < deadline) setImmediate(burst);
  else client.close(() => console.log(JSON.stringify({ protocol, sent, errors, seconds })));
}
burst();
