#include "agent-core/serializer/payload_builder.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <utility>

#include "common/strings/strings.h"

namespace dogwatch::serializer::internal {
namespace {

// When estimating from the last payload's ratio, aim this far below the compressed limit: ratios
// drift between payloads, and an over-estimate only costs a slightly smaller payload while an
// under-estimate costs a second compression.
constexpr double kRatioSafety = 1.10;
// When a candidate compresses over the limit, shrink it to this share of what would have fit at its
// measured ratio.
constexpr double kShrinkTarget = 0.90;

}  // namespace

size_t CompressBound(compression::Codec codec, size_t size) {
  switch (codec) {
    case compression::Codec::kIdentity:
      return size;
    case compression::Codec::kZstd:
      return ZSTD_compressBound(size);
    case compression::Codec::kZlib:
      return compressBound(static_cast<uLong>(size));
    case compression::Codec::kGzip:
      // The gzip wrapper is 18 bytes against zlib's 6.
      return compressBound(static_cast<uLong>(size)) + 12;
  }
  return size;
}

int EffectiveLevel(compression::Codec codec, int level) {
  if (level != compression::kDefaultLevel) return level;
  // The Agent's `serializer_zstd_compressor_level` default; zstd's own default (3) is slower.
  if (codec == compression::Codec::kZstd) return 1;
  return compression::kDefaultLevel;
}

std::vector<std::pair<std::string, std::string>> PayloadHeaders(std::string_view content_type,
                                                                compression::Codec codec) {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Content-Type", std::string(content_type));
  if (codec != compression::Codec::kIdentity) {
    headers.emplace_back("Content-Encoding", std::string(compression::ContentEncodingName(codec)));
  }
  return headers;
}

PayloadBuilder::PayloadBuilder(Config config, Renderer renderer, SerializerCounters* counters,
                               std::vector<Payload>* out)
    : config_(std::move(config)), renderer_(std::move(renderer)), counters_(counters), out_(out) {}

std::string_view PayloadBuilder::fragment(size_t i) const {
  const size_t begin = i == 0 ? 0 : items_[i - 1].end;
  return std::string_view(bytes_).substr(begin, items_[i].end - begin);
}

std::string_view PayloadBuilder::pending_bytes(size_t count) const {
  return std::string_view(bytes_).substr(0, count == 0 ? 0 : items_[count - 1].end);
}

bool PayloadBuilder::FitsAlone(size_t cost, size_t points) const {
  const PayloadLimits& limits = config_.limits;
  const size_t size = config_.fixed_overhead + cost;
  if (limits.max_points != 0 && points > limits.max_points) return false;
  if (size > limits.max_uncompressed) return false;
  // Worst case, as the Agent's checkItemSize does: an item admitted here always fits in an empty
  // payload, which is what makes the shrink loop in EmitPrefix terminate.
  return CompressBound(config_.codec, size) <= limits.max_compressed;
}

bool PayloadBuilder::HasRoom(size_t cost, size_t points) const {
  if (items_.empty()) return true;
  const PayloadLimits& limits = config_.limits;
  if (limits.max_points != 0 && pending_points_ + points > limits.max_points) return false;
  const size_t size = config_.fixed_overhead + pending_cost_ + cost;
  if (size > limits.max_uncompressed) return false;
  if (CompressBound(config_.codec, size) <= limits.max_compressed) return true;
  // Before the first compression we know nothing about the ratio: fill up to the uncompressed
  // limit and let EmitPrefix measure and shrink.
  if (last_ratio_ == 0) return true;
  return static_cast<double>(size) * last_ratio_ * kRatioSafety <= static_cast<double>(limits.max_compressed);
}

absl::Status PayloadBuilder::Add(std::string_view fragment, size_t points, size_t overhead, uint32_t group) {
  const size_t cost = fragment.size() + overhead;
  if (!FitsAlone(cost, points)) {
    ++counters_->dropped_too_big;
    return absl::OkStatus();
  }
  while (!HasRoom(cost, points)) {
    if (absl::Status status = EmitPrefix(/*more_follows=*/true); !status.ok()) return status;
  }
  bytes_.append(fragment);
  items_.push_back(Item{bytes_.size(), points, cost, group});
  pending_cost_ += cost;
  pending_points_ += points;
  return absl::OkStatus();
}

absl::Status PayloadBuilder::Finish() {
  while (!items_.empty()) {
    if (absl::Status status = EmitPrefix(/*more_follows=*/false); !status.ok()) return status;
  }
  return absl::OkStatus();
}

size_t PayloadBuilder::PrefixFitting(double max_uncompressed) const {
  size_t size = config_.fixed_overhead;
  size_t count = 0;
  while (count < items_.size() && static_cast<double>(size + items_[count].cost) <= max_uncompressed) {
    size += items_[count].cost;
    ++count;
  }
  return count;
}

absl::Status PayloadBuilder::EmitPrefix(bool more_follows) {
  size_t count = items_.size();
  const size_t pending_size = config_.fixed_overhead + pending_cost_;
  if (last_ratio_ > 0 && CompressBound(config_.codec, pending_size) > config_.limits.max_compressed) {
    // Start from what the last ratio says will fit rather than compressing everything pending
    // first: at the end of a flush, pending can hold many payloads' worth of poorly compressible
    // bytes.
    const double target = static_cast<double>(config_.limits.max_compressed) / (last_ratio_ * kRatioSafety);
    count = std::clamp<size_t>(PrefixFitting(target), 1, items_.size());
  }
  for (;;) {
    std::string_view body = renderer_(*this, count, &scratch_);
    absl::StatusOr<std::string> compressed =
        compression::Compress(config_.codec, body, EffectiveLevel(config_.codec, config_.level));
    if (!compressed.ok()) return compressed.status();
    const size_t uncompressed_size = body.size();
    if (uncompressed_size > 0) {
      last_ratio_ = static_cast<double>(compressed->size()) / static_cast<double>(uncompressed_size);
    }
    if (compressed->size() <= config_.limits.max_compressed) {
      size_t points = 0;
      for (size_t i = 0; i < count; ++i) points += items_[i].points;
      counters_->payloads += 1;
      counters_->items += count;
      counters_->points += points;
      counters_->bytes_uncompressed += uncompressed_size;
      counters_->bytes_compressed += compressed->size();
      Payload payload;
      payload.path = config_.path;
      payload.headers = PayloadHeaders(config_.content_type, config_.codec);
      payload.body = std::move(*compressed);
      payload.items = count;
      out_->push_back(std::move(payload));
      // A payload closed with more to send is what the Agent counts as "payload full".
      if (more_follows || count < items_.size()) ++counters_->splits;
      DropFront(count);
      return absl::OkStatus();
    }
    ++counters_->recompressions;
    if (count == 1) {
      // Cannot happen for an item FitsAlone admitted (its worst case fits), but a codec that broke
      // its bound must not loop us forever.
      ++counters_->dropped_too_big;
      DropFront(1);
      return absl::OkStatus();
    }
    // Keep the prefix that would fit at the measured ratio, with a margin.
    const double target =
        static_cast<double>(config_.limits.max_compressed) * kShrinkTarget / std::max(last_ratio_, 1e-9);
    count = std::clamp<size_t>(std::min(PrefixFitting(target), count), 1, count - 1);
  }
}

void PayloadBuilder::DropFront(size_t count) {
  const size_t cut = items_[count - 1].end;
  bytes_.erase(0, cut);
  items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(count));
  pending_cost_ = 0;
  pending_points_ = 0;
  for (Item& item : items_) {
    item.end -= cut;
    pending_cost_ += item.cost;
    pending_points_ += item.points;
  }
}

}  // namespace dogwatch::serializer::internal
