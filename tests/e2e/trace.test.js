'use strict';
// The real npm dd-trace against the real dogwatch suite: traces and stats arrive at the local
// intake, which decodes the AgentPayload protobuf and StatsPayload msgpack; the assertions run on
// those decoded payloads.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Suite, runApp, waitFor } = require('./lib/suite');

const APP = path.join(__dirname, 'apps', 'traced-app.js');

function allSpans(tracePayloads) {
  const spans = [];
  for (const { decoded } of tracePayloads) {
    for (const tp of decoded.tracerPayloads || []) {
      for (const chunk of tp.chunks || []) {
        for (const span of chunk.spans || []) spans.push({ span, chunk, tp, payload: decoded });
      }
    }
  }
  return spans;
}

function statsGroups(statsPayloads) {
  const groups = [];
  for (const { decoded } of statsPayloads) {
    for (const client of decoded.Stats || []) {
      for (const bucket of client.Stats || []) {
        for (const g of bucket.Stats || []) groups.push({ ...g, clientComputed: decoded.ClientComputed, client });
      }
    }
  }
  return groups;
}

function sum(groups, pred, field) {
  return groups.filter(pred).reduce((acc, g) => acc + Number(g[field] || 0), 0);
}

async function scenario(t, { transport, protocol, clientStats }) {
  const suite = await Suite.start();
  t.after(async () => {
    const code = await suite.stop();
    assert.equal(code, 0, 'agent exits cleanly on SIGTERM');
  });
  const env = {
    DD_SERVICE: 'e2e-web',
    DD_ENV: 'e2e',
    DD_TRACE_DEBUG: 'true',
    DD_TRACE_AGENT_PROTOCOL_VERSION: protocol,
    DD_TRACE_STATS_COMPUTATION_ENABLED: clientStats ? 'true' : 'false',
    DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'true',
    DD_REMOTE_CONFIGURATION_ENABLED: 'true',
    APP_REQUESTS: '3',
    APP_LINGER_MS: clientStats ? '12000' : '2500',
  };
  if (transport === 'unix') env.DD_TRACE_AGENT_URL = `unix://${suite.apmSocket}`;
  else env.DD_TRACE_AGENT_URL = suite.traceUrl();
  const app = await runApp(APP, env, 60000);
  assert.equal(app.code, 0, app.stderr);

  // dd-trace's debug log: no failed request to the agent (traces, stats, telemetry, config).
  const clientErrors = (app.stdout + app.stderr).split('\n').filter((l) =>
    /Error|error sending|failed|ECONNREFUSED|status code [45]\d\d(?!.*v0\.7\/config)/i.test(l) &&
    !/boom|"error":|error\.(message|type|stack)|work\.fail|Remote Configuration|v0\.7\/config/.test(l));
  assert.deepEqual(clientErrors, [], 'dd-trace logged errors talking to the agent');

  const traces = await waitFor('3 traces at the intake', async () => {
    const payloads = await suite.payloads('/api/v0.2/traces');
    const roots = allSpans(payloads).filter(({ span }) => span.name === 'web.request');
    return roots.length >= 3 ? payloads : null;
  });
  for (const { meta } of traces) assert.equal(meta.decode_status, 'ok');
  const spans = allSpans(traces);
  assert.equal(spans.length, 12, 'four spans per request');

  const byName = (name) => spans.filter(({ span }) => span.name === name);
  // Nested spans share the root's trace id and point at it.
  for (const { span: root } of byName('web.request')) {
    const children = spans.filter(({ span }) => span.parentID === root.spanID);
    assert.equal(children.length, 3);
    for (const { span } of children) assert.equal(span.traceID, root.traceID);
    assert.equal(root.service, 'e2e_web', 'service normalized like the Datadog agent');
    assert.equal(root.meta.env, 'e2e');
    assert.equal(root.metrics._top_level, 1);
  }
  // SQL obfuscation: literals replaced, IN list collapsed, comment removed.
  for (const { span } of byName('pg.query')) {
    assert.equal(span.service, 'e2e-postgres');
    assert.equal(span.resource, 'SELECT name, email FROM users WHERE id = ? AND status IN ( ? )');
    assert.equal(span.metrics._top_level, 1, 'a span in another service is top-level');
  }
  // Redis: keys stay, values go (Datadog's redis obfuscator).
  for (const { span } of byName('redis.command')) assert.match(span.meta['redis.raw_command'], /^SET user:\d:profile \?$/);
  // The error span.
  for (const { span } of byName('work.fail')) {
    assert.equal(span.error, 1);
    assert.equal(span.meta['error.message'], 'boom');
    assert.equal(span.metrics._top_level, undefined);
  }
  // Sampling: dd-trace's priority travels on the chunk.
  for (const { chunk } of spans) assert.equal(chunk.priority, 1);
  for (const { tp } of spans) {
    assert.equal(tp.languageName, 'nodejs');
    assert.equal(tp.env, 'e2e');
  }

  // Stats: computed by the agent, or by the client and forwarded.
  const stats = await waitFor('stats at the intake', async () => {
    const groups = statsGroups(await suite.payloads('/api/v0.2/stats'));
    return sum(groups, (g) => g.Name === 'web.request', 'Hits') >= 3 ? groups : null;
  }, 40000);
  const web = (g) => g.Name === 'web.request' && g.Service === 'e2e_web';
  const pg = (g) => g.Name === 'pg.query' && g.Service === 'e2e-postgres';
  assert.equal(sum(stats, web, 'Hits'), 3);
  assert.equal(sum(stats, web, 'TopLevelHits'), 3);
  assert.equal(sum(stats, web, 'Errors'), 0);
  assert.equal(sum(stats, pg, 'Hits'), 3);
  // The agent marks a span top-level when its parent is in another service; dd-trace's own stats
  // only count the trace root, and client-computed stats are forwarded as the tracer computed them.
  assert.equal(sum(stats, pg, 'TopLevelHits'), clientStats ? 0 : 3);
  if (clientStats) assert.ok(stats.some((g) => g.clientComputed || g.client.Lang === 'javascript'));

  const status = await suite.status();
  const trace = status.components.find((c) => c.name === 'trace-agent');
  assert.ok(trace, 'trace-agent reports to agent status');
  assert.ok(Number(trace.counters.spans_received) >= 12);
}

test('dd-trace over TCP, protocol v0.4, agent-computed stats', (t) => scenario(t, { transport: 'tcp', protocol: '0.4', clientStats: false }));
test('dd-trace over the unix socket, protocol v0.5', (t) => scenario(t, { transport: 'unix', protocol: '0.5', clientStats: false }));
test('dd-trace over TCP with client-computed stats', (t) => scenario(t, { transport: 'tcp', protocol: '0.4', clientStats: true }));
