// A statsd (Etsy) backend that sends nothing anywhere: it only keeps running totals of the server's
// own counters across flushes (statsd resets statsd.metrics_received at every flush), and reports
// them on the admin interface's `stats` command as count_backend.<name>: <value>. The benchmark
// adds these to the live, not yet flushed, values from the `counters` command.
'use strict';

exports.init = function init(startupTime, config, events) {
  const totals = {flushes: 0, metrics_received: 0, packets_received: 0, bad_lines_seen: 0};
  events.on('flush', function onFlush(timestamp, metrics) {
    totals.flushes += 1;
    for (const name of ['metrics_received', 'packets_received', 'bad_lines_seen']) {
      totals[name] += Number(metrics.counters['statsd.' + name] || 0);
    }
  });
  events.on('status', function onStatus(write) {
    for (const name of Object.keys(totals)) write(null, 'count_backend', name, totals[name]);
  });
  return true;
};
