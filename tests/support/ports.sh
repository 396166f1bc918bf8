# shellcheck shell=bash
# Free loopback ports for the test and benchmark scripts; sourced, not run:
#   source tests/support/ports.sh
# The kernel picks a port that is free at the time of the call; like any such helper, a later bind
# can still lose it to another process.
free_tcp_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free_udp_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
