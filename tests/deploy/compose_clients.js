'use strict';
// Client side of tests/deploy/compose_test.sh: real, unmodified dd-trace and hot-shots (from
// tests/e2e/node_modules) send a trace and DogStatsD metrics to the ports the compose stack
// publishes; then the payloads the stack delivered to its test intake are read back through
// `agent intake list/show` (decoded JSON) and checked field by field.
//   APM_PORT, DSD_PORT     published trace-agent (tcp) and DogStatsD (udp) ports on 127.0.0.1
//   INTAKE_URL             the test intake, e.g. http://127.0.0.1:5580
//   AGENT_CLI              an `agent` executable (the one staged into the image)
//   RUN_ID                 unique per run: names the metrics and tags the spans
//   CONTAINER_IDS          ids of the stack's containers the process-agent must report
//   WAIT_SECONDS           how long to wait for the payloads (default 120)
// Prints one JSON line with the facts it verified; exits non-zero with the reason otherwise.
const { execFile } = require('node:child_process');
const assert = require('node:assert/strict');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const apmPort = Number(env('APM_PORT'));
const dsdPort = Number(env('DSD_PORT'));
const intakeUrl = env('INTAKE_URL');
const agentCli = env('AGENT_CLI');
const runId = env('RUN_ID');
const waitMs = Number(process.env.WAIT_SECONDS || 120) * 1000;
const containerIds = (process.env.CONTAINER_IDS || '').split(/\s+/).filter(Boolean);
// The trace-agent as the process-agent (pid: host) sees it: the image's executable.
const TRACE_AGENT_EXE = '/opt/dogwatch/bin/trace-agent';

const SERVICE = 'compose-web';
const RESOURCE = 'GET /compose/:id';
const ENV_TAG = 'compose-test';
const metricPrefix = `dogwatch.compose.${runId}.`;
const GAUGE_VALUE = 42.5;
const INCREMENTS = 3;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// dd-trace: configured like any application, through its init options.
const tracer = require('dd-trace').init({
  url: `http://127.0.0.1:${apmPort}`,
  service: SERVICE,
  env: ENV_TAG,
  flushInterval: 200,
  startupLogs: false,
  runtimeMetrics: false,
  telemetry: { enabled: false },
  remoteConfig: { enabled: false },
});
const StatsD = require('hot-shots');

function sendTrace() {
  tracer.trace('web.request', { resource: RESOURCE, type: 'web' }, (root) => {
    root.setTag('run.id', runId);
    root.setTag('http.method', 'GET');
    root.setTag('http.status_code', '200');
    tracer.trace('compose.work', { resource: 'compute', service: `${SERVICE}-worker` }, (child) => {
      child.setTag('run.id', runId);
    });
  });
}

async function sendMetrics() {
  const errors = [];
  const client = new StatsD({
    host: '127.0.0.1', port: dsdPort, protocol: 'udp', datadog: true,
    globalTags: { run: runId },
    errorHandler: (err) => errors.push(String(err)),
  });
  for (let i = 0; i < INCREMENTS; i++) client.increment(`${metricPrefix}requests`, 1, ['route:/compose']);
  client.gauge(`${metricPrefix}queue.depth`, GAUGE_VALUE, ['queue:main']);
  await new Promise((resolve) => client.close(resolve));
  if (errors.length) throw new Error(`hot-shots: ${errors.join('; ')}`);
}

function cli(args) {
  return new Promise((resolve, reject) => {
    execFile(agentCli, args, { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`agent ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

// Everything the intake holds, decoded, fetched once per sequence number.
const seen = new Map();
async function poll() {
  const since = seen.size ? Math.max(...seen.keys()) : 0;
  const list = await cli(['intake', 'list', '--url', intakeUrl, '--since', String(since), '--limit', '1000']);
  for (const meta of list) {
    if (seen.has(meta.seq)) continue;
    const decoded = meta.decode_status === 'ok' ? await cli(['intake', 'show', String(meta.seq), '--url', intakeUrl]) : null;
    seen.set(meta.seq, { meta, decoded });
  }
}
const payloads = (path) => [...seen.values()].filter(({ meta }) => meta.path === path);

function spans() {
  const out = [];
  for (const { meta, decoded } of payloads('/api/v0.2/traces')) {
    for (const tp of (decoded && decoded.tracerPayloads) || []) {
      for (const chunk of tp.chunks || []) for (const span of chunk.spans || []) out.push({ span, tp, meta });
    }
  }
  return out.filter(({ span }) => (span.meta || {})['run.id'] === runId);
}

function points(name) {
  const out = [];
  for (const { meta, decoded } of payloads('/api/v2/series')) {
    for (const s of (decoded && decoded.series) || []) {
      if (s.metric !== name) continue;
      for (const p of s.points || []) {
        out.push({ type: s.type, tags: s.tags || [], interval: Number(s.interval), value: Number(p.value), meta });
      }
    }
  }
  return out;
}

// process-agent payloads (CollectorProc / CollectorContainer, decoded from their protobuf).
function processAgentFacts() {
  const containers = new Set();
  for (const { decoded } of payloads('/api/v1/container')) {
    for (const c of (decoded && decoded.body && decoded.body.containers) || []) containers.add(c.id);
  }
  let traceAgent = null;
  let processes = 0;
  for (const { decoded } of payloads('/api/v1/collector')) {
    if (!decoded || !decoded.header || decoded.header.type_name !== 'CollectorProc') continue;
    for (const p of decoded.body.processes || []) {
      processes++;
      const args = (p.command && p.command.args) || [];
      if (args[0] === TRACE_AGENT_EXE) traceAgent = p;
    }
  }
  return { containers, traceAgent, processes };
}

async function main() {
  sendTrace();
  // Sent once, after the stack reported healthy: the counter must be counted exactly.
  await sendMetrics();
  const deadline = Date.now() + waitMs;
  let last = '';
  for (;;) {
    await poll();
    const s = spans();
    const gauge = points(`${metricPrefix}queue.depth`);
    const counter = points(`${metricPrefix}requests`);
    const counted = counter.reduce((acc, p) => acc + p.value * p.interval, 0);
    const pa = processAgentFacts();
    const missing = containerIds.filter((id) => !pa.containers.has(id));
    last = `spans=${s.length} gauge_points=${gauge.length} counted=${counted} payloads=${seen.size} ` +
      `trace_agent_process=${Boolean(pa.traceAgent)} containers_missing=${missing.length}`;
    if (s.length >= 2 && gauge.length >= 1 && Math.abs(counted - INCREMENTS) < 1e-9 && pa.traceAgent &&
        missing.length === 0) break;
    if (Date.now() > deadline) throw new Error(`timed out waiting for the payloads at ${intakeUrl}: ${last}`);
    await sleep(1000);
  }

  // Trace: the root span and its child, as decoded from the AgentPayload protobuf.
  const s = spans();
  const root = s.find(({ span }) => span.name === 'web.request');
  const child = s.find(({ span }) => span.name === 'compose.work');
  assert.ok(root, 'root span web.request');
  assert.ok(child, 'child span compose.work');
  assert.equal(root.meta.decode_status, 'ok');
  assert.equal(root.span.service, SERVICE);
  assert.equal(root.span.resource, RESOURCE);
  assert.equal(root.span.type, 'web');
  assert.equal(root.span.meta['http.status_code'], '200');
  assert.equal(root.tp.env, ENV_TAG);
  assert.equal(child.span.service, `${SERVICE}-worker`);
  assert.equal(child.span.resource, 'compute');
  assert.equal(String(child.span.traceID), String(root.span.traceID), 'child in the same trace');
  assert.equal(String(child.span.parentID), String(root.span.spanID), 'child points at the root');
  assert.ok(Number(root.span.duration) > 0, 'root span has a duration');

  // Metrics: series v2, as decoded from the protobuf.
  const gauge = points(`${metricPrefix}queue.depth`);
  for (const p of gauge) {
    assert.equal(p.type, 'GAUGE');
    assert.equal(p.value, GAUGE_VALUE);
    assert.ok(p.tags.includes('queue:main') && p.tags.includes(`run:${runId}`), `gauge tags ${p.tags}`);
  }
  const counter = points(`${metricPrefix}requests`).filter((p) => p.value !== 0);
  for (const p of counter) {
    assert.equal(p.type, 'RATE');
    assert.ok(p.tags.includes('route:/compose') && p.tags.includes(`run:${runId}`), `counter tags ${p.tags}`);
  }
  const counted = counter.reduce((acc, p) => acc + p.value * p.interval, 0);
  assert.equal(counted, INCREMENTS);

  // Processes and containers: the stack's own trace-agent (user dogwatch) and containers.
  const pa = processAgentFacts();
  assert.equal(pa.traceAgent.user.uid, 10001, 'the trace-agent runs as dogwatch');
  assert.ok(pa.traceAgent.pid > 1, 'a host pid');
  for (const id of containerIds) assert.ok(pa.containers.has(id), `container ${id} reported`);

  console.log(JSON.stringify({
    ok: true,
    trace: {
      service: root.span.service, resource: root.span.resource, env: root.tp.env,
      trace_id: String(root.span.traceID), child: `${child.span.service}/${child.span.name}`,
    },
    gauge: { metric: `${metricPrefix}queue.depth`, value: gauge[0].value, tags: gauge[0].tags },
    counter: { metric: `${metricPrefix}requests`, type: 'RATE', counted, points: counter.length },
    process_agent: {
      processes: pa.processes, trace_agent_pid: pa.traceAgent.pid, trace_agent_uid: pa.traceAgent.user.uid,
      stack_containers_reported: containerIds.length,
    },
    intake_payloads: seen.size,
    paths: [...new Set([...seen.values()].map(({ meta }) => meta.path))].sort(),
  }));
  // dd-trace keeps timers alive; the verdict is in.
  process.exit(0);
}

main().catch((err) => {
  console.error(`compose_clients: ${err.stack || err}`);
  process.exit(1);
});
