#pragma once
// Internal: packs encoded items into compressed payloads under the intake's limits.
//
// Items arrive one at a time as already-encoded fragments. The builder keeps the fragments of the
// payload being filled (at most one payload's worth of bytes, so memory stays bounded however many
// items a flush has), and when the next item would not fit it renders, compresses and emits the
// pending ones. The renderer turns the first `count` pending fragments into a body: for protobuf
// the fragments are the body; JSON adds brackets, separators and group keys, whose size the caller
// declares up front as `overhead` so the uncompressed check is exact or conservative.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "agent-core/serializer/serializer.h"

namespace dogwatch::serializer::internal {

// The most `codec` can turn `size` bytes into (zstd/zlib's documented bounds).
size_t CompressBound(compression::Codec codec, size_t size);

// Content-Type plus Content-Encoding (omitted for identity).
std::vector<std::pair<std::string, std::string>> PayloadHeaders(std::string_view content_type,
                                                                compression::Codec codec);

// The level to hand the codec: kDefaultLevel becomes the Agent's default (zstd 1, zlib 6).
int EffectiveLevel(compression::Codec codec, int level);

struct PayloadLimits {
  size_t max_compressed = 0;
  size_t max_uncompressed = 0;
  size_t max_points = 0;  // 0 = no points limit
};

class PayloadBuilder {
 public:
  // Renders the first `count` pending items into a full body. Returns a view either into the
  // builder's own storage or into `scratch`.
  using Renderer =
      std::function<std::string_view(const PayloadBuilder& builder, size_t count, std::string* scratch)>;

  struct Config {
    PayloadLimits limits;
    compression::Codec codec = compression::Codec::kZstd;
    int level = compression::kDefaultLevel;
    std::string path;
    std::string content_type;
    size_t fixed_overhead = 0;  // header + footer bytes every body has
  };

  PayloadBuilder(Config config, Renderer renderer, SerializerCounters* counters, std::vector<Payload>* out);

  // Adds one item. `fragment` is its encoding; `overhead` the most bytes the renderer adds for it
  // (separator, group key); `group` is free for the renderer (events use it for source type names).
  // An item that could not fit even in an empty payload is dropped and counted; that is not an error.
  absl::Status Add(std::string_view fragment, size_t points, size_t overhead = 0, uint32_t group = 0);

  // Emits everything pending.
  absl::Status Finish();

  // For renderers.
  size_t pending() const { return items_.size(); }
  std::string_view fragment(size_t i) const;
  uint32_t group(size_t i) const { return items_[i].group; }
  std::string_view pending_bytes(size_t count) const;  // fragments 0..count-1, contiguous

 private:
  struct Item {
    size_t end = 0;  // end offset of the fragment in bytes_
    size_t points = 0;
    size_t cost = 0;  // fragment + overhead
    uint32_t group = 0;
  };

  bool FitsAlone(size_t cost, size_t points) const;
  bool HasRoom(size_t cost, size_t points) const;
  // How many leading pending items fit in `max_uncompressed` body bytes.
  size_t PrefixFitting(double max_uncompressed) const;
  // Compresses and emits a prefix of the pending items (shrinking it until it fits), then moves the
  // rest to the front. `more_follows`: the caller has another item to add after this payload.
  absl::Status EmitPrefix(bool more_follows);
  void DropFront(size_t count);

  Config config_;
  Renderer renderer_;
  SerializerCounters* counters_;
  std::vector<Payload>* out_;

  std::string bytes_;
  std::vector<Item> items_;
  size_t pending_cost_ = 0;
  size_t pending_points_ = 0;
  // compressed/uncompressed of the last payload; 0 until one has been compressed.
  double last_ratio_ = 0;
  std::string scratch_;
};

}  // namespace dogwatch::serializer::internal
