'use strict';
// The real npm hot-shots client (Datadog mode) against the real dogwatch agent, over UDP and over
// the unix datagram socket. The local intake decodes the series v2 and sketch protobufs and the
// event / service-check JSON; the assertions run on those decoded payloads.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Suite, runApp, waitFor, freePort } = require('./lib/suite');

const APP = path.join(__dirname, 'apps', 'statsd-app.js');

// Every series point the intake received, flattened: {metric, tags, host, type, interval, ts, value}.
async function seriesPoints(suite) {
  const out = [];
  for (const { decoded } of await suite.payloads('/api/v2/series')) {
    for (const s of decoded.series || []) {
      const host = (s.resources || []).find((r) => r.type === 'host');
      for (const p of s.points || []) {
        out.push({
          metric: s.metric, tags: s.tags || [], host: host ? host.name : '', type: s.type || 'UNSPECIFIED',
          interval: Number(s.interval || 0), ts: Number(p.timestamp || 0), value: Number(p.value || 0),
        });
      }
    }
  }
  return out;
}

async function sketchPoints(suite) {
  const out = [];
  for (const { decoded } of await suite.payloads('/api/beta/sketches')) {
    for (const s of decoded.sketches || []) {
      for (const d of s.dogsketches || []) {
        out.push({ metric: s.metric, tags: s.tags || [], host: s.host, cnt: Number(d.cnt || 0), min: d.min || 0,
          max: d.max || 0, sum: d.sum || 0, avg: d.avg || 0, k: d.k || [], n: d.n || [] });
      }
    }
  }
  return out;
}

const only = (points, metric) => points.filter((p) => p.metric === metric);
const sumValues = (points) => points.reduce((acc, p) => acc + p.value, 0);
const last = (points) => points.reduce((a, b) => (b.ts >= a.ts ? b : a));

function checkTags(tags, expected) {
  for (const tag of expected) assert.ok(tags.includes(tag), `tag ${tag} in ${JSON.stringify(tags)}`);
  assert.equal(new Set(tags).size, tags.length, `tags are unique: ${JSON.stringify(tags)}`);
  assert.deepEqual([...tags].sort(), tags, 'tags are sorted');
}

async function scenario(t, protocol) {
  const dsdPort = await freePort();
  const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dogwatch-dsd-'));
  fs.chmodSync(socketDir, 0o755);
  const socket = path.join(socketDir, 'dsd.socket');
  const suite = await Suite.start({
    yaml: [
      `dogstatsd_port: ${dsdPort}`,
      `dogstatsd_socket: ${socket}`,
      'dogstatsd_origin_detection: true',
      'dogstatsd_origin_detection_client: true',
      'dogstatsd_tags: [from:dogstatsd_tags]',
      'tags: [team:core]',
      'env: e2e-metrics',
      'metrics_flush_interval: 1',
      'hostname: e2e-host',
      'enable_host_checks: true',
    ].join('\n'),
  });
  t.after(async () => {
    const code = await suite.stop();
    fs.rmSync(socketDir, { recursive: true, force: true });
    assert.equal(code, 0, 'agent exits cleanly on SIGTERM');
  });
  await waitFor('the DogStatsD socket', () => fs.existsSync(socket));

  const prefix = `e2e.${protocol}.`;
  const app = await runApp(APP, { APP_PROTOCOL: protocol, APP_PORT: String(dsdPort), APP_SOCKET: socket, APP_PREFIX: prefix }, 30000);
  assert.equal(app.code, 0, app.stderr);

  // Wait for the 10 s bucket to close and be flushed.
  const points = await waitFor('the aggregated series', async () => {
    const all = await seriesPoints(suite);
    const want = [`${prefix}requests`, `${prefix}queue.depth`, `${prefix}latency.max`, `${prefix}users`, `${prefix}render.avg`];
    return want.every((m) => only(all, m).length > 0) ? all : null;
  }, 40000);
  const globalTags = ['app:e2e-metrics', 'env:e2e-metrics', 'from:dogstatsd_tags', 'team:core'];

  // count: 3 × 1 at @0.5 → 6 in the bucket, sent as a rate of 0.6/s over interval 10.
  const requests = only(points, `${prefix}requests`);
  assert.equal(requests.length, 1, JSON.stringify(requests));
  assert.equal(requests[0].type, 'RATE');
  assert.equal(requests[0].interval, 10);
  assert.ok(Math.abs(requests[0].value - 0.6) < 1e-9, `rate ${requests[0].value}`);
  assert.equal(requests[0].host, 'e2e-host');
  assert.equal(requests[0].ts % 10, 0, 'points are stamped with their bucket start');
  checkTags(requests[0].tags, [...globalTags, 'route:/x']);

  // gauge: the last value.
  const depth = only(points, `${prefix}queue.depth`);
  assert.equal(last(depth).value, 42.5);
  assert.equal(last(depth).type, 'GAUGE');
  checkTags(last(depth).tags, [...globalTags, 'queue:high']);

  // histogram 1..100: max, median, avg, count (a rate), 95th percentile.
  const hist = (suffix) => only(points, `${prefix}latency.${suffix}`);
  assert.equal(hist('max')[0].value, 100);
  assert.equal(hist('median')[0].value, 50);
  assert.equal(hist('avg')[0].value, 50.5);
  assert.equal(hist('count')[0].type, 'RATE');
  assert.ok(Math.abs(hist('count')[0].value - 10) < 1e-9, `count rate ${hist('count')[0].value}`);
  assert.equal(hist('95percentile')[0].value, 95);
  checkTags(hist('max')[0].tags, [...globalTags, 'db:pg']);

  // timer = histogram.
  assert.equal(only(points, `${prefix}render.avg`)[0].value, 500);
  assert.equal(only(points, `${prefix}render.max`)[0].value, 750);

  // set: distinct values.
  assert.equal(only(points, `${prefix}users`)[0].value, 3);

  // distribution: an agent sketch with exact count/min/max/sum.
  const sketches = await waitFor('the distribution sketch', async () => {
    const s = only(await sketchPoints(suite), `${prefix}payload.size`);
    return s.length ? s : null;
  }, 20000);
  assert.equal(sketches.length, 1);
  assert.equal(sketches[0].cnt, 10);
  assert.equal(sketches[0].min, 1);
  assert.equal(sketches[0].max, 10);
  assert.equal(sketches[0].sum, 55);
  assert.equal(sketches[0].avg, 5.5);
  assert.equal(sketches[0].k.length, sketches[0].n.length);
  assert.equal(sketches[0].n.reduce((a, b) => a + b, 0), 10);
  assert.equal(sketches[0].host, 'e2e-host');
  checkTags(sketches[0].tags, globalTags);

  // Event: title/text by length (the text holds '|' and a newline), fields and tags.
  const events = await waitFor('the event', async () => {
    const found = [];
    for (const { decoded } of await suite.payloads('/intake/')) {
      for (const list of Object.values(decoded.events || {})) {
        for (const e of list) if (e.msg_title === `${prefix}deploy`) found.push(e);
      }
    }
    return found.length ? found : null;
  }, 20000);
  assert.equal(events.length, 1);
  assert.equal(events[0].msg_text, 'line1\nline2 with | pipe');
  assert.equal(events[0].alert_type, 'warning');
  assert.equal(events[0].priority, 'low');
  assert.equal(events[0].aggregation_key, 'agg1');
  assert.equal(events[0].host, 'h1');
  for (const tag of [...globalTags, 'ev:1']) assert.ok(events[0].tags.includes(tag), `event tag ${tag}`);

  // Service check: status, message (m: last), host, tags.
  const checks = await waitFor('the service check', async () => {
    const found = [];
    for (const { decoded } of await suite.payloads('/api/v1/check_run')) {
      for (const c of decoded) if (c.check === `${prefix}can_connect`) found.push(c);
    }
    return found.length ? found : null;
  }, 20000);
  assert.equal(checks.length, 1);
  assert.equal(checks[0].status, 1);
  assert.equal(checks[0].message, 'slow m:ish');
  assert.equal(checks[0].host_name, 'h2');
  for (const tag of [...globalTags, 'chk:1']) assert.ok(checks[0].tags.includes(tag), `check tag ${tag}`);

  // The host checks ran into the same pipeline, and host metadata was sent.
  assert.ok(points.some((p) => p.metric === 'system.cpu.user' || p.metric === 'system.mem.total'), 'host check series');
  const metadata = await suite.payloads('/intake/');
  assert.ok(metadata.some(({ decoded }) => decoded.internalHostname === 'e2e-host' && decoded.systemStats), 'host metadata');

  // Status: packets on the right transport, no parse errors, nothing shed.
  const status = await suite.status();
  const dsd = (status.components || []).find((c) => c.name === 'dogstatsd');
  assert.ok(dsd, JSON.stringify(status.components));
  const counters = dsd.counters || {};
  assert.ok(Number(counters[protocol === 'uds' ? 'packets_unix' : 'packets_udp']) > 0, JSON.stringify(counters));
  for (const [name, value] of Object.entries(counters)) {
    if (name.startsWith('parse_errors_') || name.startsWith('dropped_')) assert.equal(Number(value), 0, `${name} = ${value}`);
  }
}

test('dd-trace\'s metrics through the trace-agent\'s /dogstatsd/v2/proxy reach the aggregator', async (t) => {
  const dsdPort = await freePort();
  const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dogwatch-dsd-'));
  fs.chmodSync(socketDir, 0o755);
  const socket = path.join(socketDir, 'dsd.socket');
  const suite = await Suite.start({
    yaml: [`dogstatsd_port: ${dsdPort}`, `dogstatsd_socket: ${socket}`, 'metrics_flush_interval: 1',
      'enable_host_checks: false', 'hostname: e2e-host'].join('\n'),
  });
  t.after(async () => {
    const code = await suite.stop();
    fs.rmSync(socketDir, { recursive: true, force: true });
    assert.equal(code, 0, 'agent exits cleanly on SIGTERM');
  });
  const app = await runApp(path.join(__dirname, 'apps', 'traced-app.js'), {
    DD_SERVICE: 'e2e-runtime', DD_ENV: 'e2e', DD_TRACE_AGENT_URL: suite.traceUrl(),
    DD_RUNTIME_METRICS_ENABLED: 'true', APP_REQUESTS: '1', APP_LINGER_MS: '11000',
  }, 60000);
  assert.equal(app.code, 0, app.stderr);
  // dd-trace sends its own metrics (client and exporter health, runtime metrics where its native
  // module is present) over HTTP to the trace-agent, which relays the lines to DogStatsD.
  const points = await waitFor('dd-trace\'s series', async () => {
    const all = await seriesPoints(suite);
    return all.some((p) => p.metric.startsWith('datadog.dogstatsd.client.')) ? all : null;
  }, 40000);
  const client = points.find((p) => p.metric === 'datadog.dogstatsd.client.metrics');
  assert.ok(client, `datadog.dogstatsd.client.metrics among ${[...new Set(points.map((p) => p.metric))].slice(0, 40)}`);
  assert.equal(client.type, 'RATE');
  for (const tag of ['service:e2e-runtime', 'client:nodejs', 'client_transport:http']) {
    assert.ok(client.tags.includes(tag), `${tag} in ${JSON.stringify(client.tags)}`);
  }
  const status = await suite.status();
  const dsd = (status.components || []).find((c) => c.name === 'dogstatsd');
  const received = Number(dsd.counters.packets_unix || 0) + Number(dsd.counters.packets_udp || 0);
  assert.ok(received > 0, JSON.stringify(dsd.counters));
});

test('hot-shots over UDP: exact aggregates, events, service checks, tags', async (t) => {
  await scenario(t, 'udp');
});

test('hot-shots over the unix datagram socket', async (t) => {
  const unixDgram = path.join(__dirname, 'node_modules', 'unix-dgram', 'build', 'Release', 'unix_dgram.node');
  assert.ok(fs.existsSync(unixDgram),
    `hot-shots' uds transport needs the native unix-dgram module, which was not built (${unixDgram}); ` +
    'scripts/test.sh builds it with npm ci (install scripts on, nodedir=/usr)');
  await scenario(t, 'uds');
});
