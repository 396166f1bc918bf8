'use strict';
// A small app instrumented by the real, unmodified dd-trace: one web request with nested spans in
// several services, a SQL span, a cache span and a failing span. Configured only through DD_*.
const tracer = require('dd-trace').init({ flushInterval: 200, startupLogs: false });

function runRequest(i) {
  return tracer.trace('web.request', { service: 'E2E Web', resource: `GET /users/:id`, type: 'web' }, (root) => {
    root.setTag('http.method', 'GET');
    root.setTag('http.status_code', '200');
    root.setTag('http.url', `http://example.test/users/${i}?token=secret`);
    root.setTag('span.kind', 'server');
    tracer.trace('pg.query', {
      service: 'e2e-postgres',
      resource: `SELECT name, email FROM users WHERE id = ${1000 + i} AND status IN ('a', 'b', 'c') -- lookup`,
      type: 'sql',
    }, (span) => {
      span.setTag('db.type', 'postgres');
      span.setTag('span.kind', 'client');
    });
    tracer.trace('redis.command', { service: 'e2e-redis', resource: 'SET', type: 'redis' }, (span) => {
      span.setTag('redis.raw_command', `SET user:${i}:profile secret-value-${i}`);
      span.setTag('span.kind', 'client');
    });
    try {
      tracer.trace('work.fail', { service: 'E2E Web', resource: 'compute' }, () => {
        throw new Error('boom');
      });
    } catch (err) {
      // the span recorded the error
    }
  });
}

const requests = Number(process.env.APP_REQUESTS || 3);
for (let i = 0; i < requests; i++) runRequest(i);
// Long enough for the tracer's 200 ms flush (and for a stats bucket flush when enabled).
setTimeout(() => process.exit(0), Number(process.env.APP_LINGER_MS || 1500));
