// trace_load: sends a realistic v0.4 payload (the dd-trace-js encoding of testdata_payloads) to a
// trace intake over HTTP keep-alive from several threads, for a bounded time and request count,
// optionally rate-limited. Prints one JSON line with what was sent and how it was answered.
//
//   trace_load --url http://127.0.0.1:8126 [--seconds 10] [--threads 2] [--traces 20]
//              [--spans-per-trace 15] [--spans-per-second 0 (unlimited)] [--max-requests 1000000]
//              [--bodies 16 (distinct bodies sent in turn: other ids and start times)]
//              [--unix-socket PATH (HTTP over this unix socket; the URL then only names the host)]

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "trace-agent/decode/testdata_payloads.h"

namespace {

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

struct Args {
  std::string url = "http://127.0.0.1:8126";
  double seconds = 10;
  int threads = 2;
  int traces = 20;
  int spans_per_trace = 15;
  double spans_per_second = 0;
  long max_requests = 1000000;
  // Distinct bodies sent in turn: the same spans with other ids and start times (a tracer never
  // sends the same ids twice; 1 repeats one body byte for byte, as rounds 1-6 measured).
  int bodies = 16;
  // HTTP over a unix socket instead of TCP, as tracers do when the agent's socket exists (e.g.
  // /var/run/datadog/apm.socket).
  std::string unix_socket;
};

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    std::string value = argv[i + 1];
    if (key == "--url")
      args.url = value;
    else if (key == "--seconds")
      args.seconds = std::stod(value);
    else if (key == "--threads")
      args.threads = std::stoi(value);
    else if (key == "--traces")
      args.traces = std::stoi(value);
    else if (key == "--spans-per-trace")
      args.spans_per_trace = std::stoi(value);
    else if (key == "--spans-per-second")
      args.spans_per_second = std::stod(value);
    else if (key == "--max-requests")
      args.max_requests = std::stol(value);
    else if (key == "--bodies")
      args.bodies = std::stoi(value);
    else if (key == "--unix-socket")
      args.unix_socket = value;
    else {
      std::fprintf(stderr, "trace_load: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  // Bounded: never more than 10 minutes, whatever was asked.
  if (args.seconds > 600) args.seconds = 600;
  if (args.bodies < 1 || args.bodies > 256) {
    std::fprintf(stderr, "trace_load: --bodies must be 1-256\n");
    return 2;
  }
  std::vector<std::string> bodies;
  for (int variant = 0; variant < args.bodies; ++variant) {
    bodies.push_back(dogwatch::trace::testdata::BuildRealisticV04Payload(args.traces, args.spans_per_trace,
                                                                         static_cast<uint64_t>(variant)));
  }
  const long spans_per_request = static_cast<long>(args.traces) * args.spans_per_trace;
  curl_global_init(CURL_GLOBAL_DEFAULT);

  std::atomic<long> requests{0}, ok{0}, failed{0};
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(static_cast<long>(args.seconds * 1000));
  std::vector<std::thread> workers;
  for (int t = 0; t < args.threads; ++t) {
    workers.emplace_back([&] {
      CURL* curl = curl_easy_init();
      std::string url = args.url + "/v0.4/traces";
      curl_slist* headers = nullptr;
      headers = curl_slist_append(headers, "Content-Type: application/msgpack");
      headers = curl_slist_append(headers, "Datadog-Meta-Lang: nodejs");
      headers = curl_slist_append(headers, "Datadog-Meta-Tracer-Version: 5.132.0");
      headers = curl_slist_append(headers, ("X-Datadog-Trace-Count: " + std::to_string(args.traces)).c_str());
      // Overload refusals must show as failures here, not as the 200 old tracers get.
      headers = curl_slist_append(headers, "Datadog-Send-Real-Http-Status: yes");
      headers = curl_slist_append(headers, "Expect:");
      curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
      if (!args.unix_socket.empty())
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, args.unix_socket.c_str());
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
      curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
      while (std::chrono::steady_clock::now() < deadline) {
        long n = requests.fetch_add(1);
        if (n >= args.max_requests) break;
        if (args.spans_per_second > 0) {
          // Pace globally: request n may start once n * spans_per_request spans are due.
          auto due = start + std::chrono::microseconds(
                                 static_cast<long>(n * spans_per_request / args.spans_per_second * 1e6));
          if (due > deadline) break;
          std::this_thread::sleep_until(due);
        }
        const std::string& body = bodies[static_cast<size_t>(n % args.bodies)];
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        long status = 0;
        if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        (status == 200 ? ok : failed).fetch_add(1);
      }
      curl_slist_free_all(headers);
      curl_easy_cleanup(curl);
    });
  }
  for (auto& w : workers) w.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "{\"requests_ok\": %ld, \"requests_failed\": %ld, \"spans_sent\": %ld, \"seconds\": %.3f, "
      "\"spans_per_second\": %.0f, \"payload_bytes\": %zu, \"spans_per_request\": %ld}\n",
      ok.load(), failed.load(), ok.load() * spans_per_request, elapsed,
      ok.load() * spans_per_request / elapsed, bodies[0].size(), spans_per_request);
  return failed.load() == 0 ? 0 : 1;
}
