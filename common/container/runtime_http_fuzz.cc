// Arbitrary bytes as a container runtime's HTTP response, fed to the parser in pieces (split points
// taken from the input): it may refuse them but must never crash, hang, hand out more body than its
// limit, or accept more after an error or after the end of the response.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/container/runtime_http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t split = data[0] % (size - 1) + 1;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  dogwatch::container::HttpLimits limits;
  limits.max_header_bytes = 2048;
  limits.max_headers = 16;
  limits.max_chunk_line_bytes = 64;
  limits.max_body_bytes = data[0] % 2 == 0 ? 4096 : 0;  // bounded, and the streaming case
  size_t delivered = 0;
  dogwatch::container::ResponseParser parser(limits, [&](std::string_view body) {
    if (body.empty()) std::abort();  // empty pieces are never delivered
    delivered += body.size();
    return absl::OkStatus();
  });
  // Feed in pieces of `split` bytes: split points inside lines and chunks must not matter.
  absl::Status status;
  for (size_t at = 0; at < input.size() && status.ok(); at += split)
    status = parser.Feed(input.substr(at, split));
  if (status.ok()) status = parser.Finish();
  if (delivered != parser.body_bytes()) std::abort();
  if (limits.max_body_bytes > 0 && delivered > limits.max_body_bytes) std::abort();
  if (parser.headers().size() > limits.max_headers) std::abort();
  if (status.ok() && !parser.done()) std::abort();
  if (!status.ok() && parser.Feed("x").ok()) std::abort();  // errors are final
  if (parser.done() && parser.headers_done() && (parser.status() < 200 || parser.status() > 599))
    std::abort();
  return 0;
}
