#!/usr/bin/env python3
"""Prints what a statsd (Etsy) server has received since it started, as one JSON line.

statsd resets statsd.metrics_received at each flush, so the total is count_backend's running sum
of the flushed values (`stats` command) plus the live value (`counters` command). `stats` is read
before and after `counters`; if a flush happened in between, the reading is repeated.
Usage: statsd_received.py MGMT_PORT
"""
import json
import re
import socket
import sys


def command(sock, text):
    sock.sendall(text.encode() + b"\n")
    data = b""
    while not data.endswith(b"END\n\n"):
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("statsd admin interface closed the connection")
        data += chunk
        if len(data) > (64 << 20):
            raise RuntimeError("statsd admin answer too large")
    return data.decode()


def backend_totals(text):
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^count_backend\.(\w+): (\d+)$", text, re.M)}


def live(text, name):
    match = re.search(r"'statsd\.%s': (\d+)" % name, text)
    return int(match.group(1)) if match else 0


def main():
    port = int(sys.argv[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(5):
            before = backend_totals(command(sock, "stats"))
            counters = command(sock, "counters")
            after = backend_totals(command(sock, "stats"))
            if before == after:
                break
        else:
            raise RuntimeError("statsd kept flushing while being read")
    result = {name: after.get(name, 0) + live(counters, name)
              for name in ("metrics_received", "packets_received", "bad_lines_seen")}
    result["flushes"] = after.get("flushes", 0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
