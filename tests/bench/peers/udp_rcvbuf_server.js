// statsd's own servers/udp.js with one difference: the socket's receive buffer is set from
// config.recvBufferSize, so the peer gets the same kernel buffer as dogwatch's dogstatsd_so_rcvbuf
// in the benchmark (statsd 0.9 has no option for it). Capped by net.core.rmem_max as usual.
'use strict';
const dgram = require('dgram');

exports.start = function start(config, callback) {
  const options = {type: config.address_ipv6 ? 'udp6' : 'udp4'};
  if (config.recvBufferSize) options.recvBufferSize = Number(config.recvBufferSize);
  const server = dgram.createSocket(options, callback);
  server.bind(config.port || 8125, config.address || undefined);
  this.server = server;
  return true;
};
