// /api/v2/series and /api/beta/sketches bodies, written field by field in the protobuf wire format
// (field numbers from proto/datadog/metrics/metrics.proto), one item at a time, so no whole
// MetricPayload is ever built in memory.

#include <string>

#include "agent-core/serializer/payload_builder.h"
#include "agent-core/serializer/proto_writer.h"
#include "agent-core/serializer/serializer.h"
#include "common/strings/strings.h"

namespace dogwatch::serializer {
namespace {

using internal::PayloadBuilder;
using internal::ProtoScratch;
using internal::ProtoWriter;

// MetricPayload
constexpr uint32_t kPayloadSeries = 1;
// MetricPayload.MetricSeries
constexpr uint32_t kSeriesResources = 1;
constexpr uint32_t kSeriesMetric = 2;
constexpr uint32_t kSeriesTags = 3;
constexpr uint32_t kSeriesPoints = 4;
constexpr uint32_t kSeriesType = 5;
constexpr uint32_t kSeriesSourceTypeName = 7;
constexpr uint32_t kSeriesInterval = 8;
constexpr uint32_t kSeriesMetadata = 9;
// MetricPayload.Resource
constexpr uint32_t kResourceType = 1;
constexpr uint32_t kResourceName = 2;
// MetricPayload.MetricPoint
constexpr uint32_t kPointValue = 1;
constexpr uint32_t kPointTimestamp = 2;
// Metadata / Origin
constexpr uint32_t kMetadataOrigin = 1;
constexpr uint32_t kOriginProduct = 4;
// origin.proto's OriginProduct "Agent", which the Agent sets on every series it sends.
constexpr uint32_t kOriginProductAgent = 10;

// SketchPayload
constexpr uint32_t kPayloadSketches = 1;
constexpr uint32_t kPayloadMetadata = 2;
// SketchPayload.Sketch
constexpr uint32_t kSketchMetric = 1;
constexpr uint32_t kSketchHost = 2;
constexpr uint32_t kSketchTags = 4;
constexpr uint32_t kSketchDogsketches = 7;
// SketchPayload.Sketch.Dogsketch
constexpr uint32_t kDogsketchTs = 1;
constexpr uint32_t kDogsketchCnt = 2;
constexpr uint32_t kDogsketchMin = 3;
constexpr uint32_t kDogsketchMax = 4;
constexpr uint32_t kDogsketchAvg = 5;
constexpr uint32_t kDogsketchSum = 6;
constexpr uint32_t kDogsketchK = 7;
constexpr uint32_t kDogsketchN = 8;

absl::Status ValidateLimits(size_t max_compressed, size_t max_uncompressed, std::string_view what) {
  if (max_compressed == 0 || max_uncompressed == 0) {
    return absl::InvalidArgumentError(strings::Cat(what, " payload size limits must be positive"));
  }
  return absl::OkStatus();
}

void EncodeSeries(const metrics::Series& series, ProtoScratch* scratch, std::string* out) {
  ProtoWriter payload(out, scratch);
  payload.Message(kPayloadSeries, [&series](ProtoWriter& s) {
    if (!series.host.empty()) {
      s.Message(kSeriesResources, [&series](ProtoWriter& r) {
        r.String(kResourceType, "host");
        r.String(kResourceName, series.host);
      });
    }
    s.String(kSeriesMetric, series.name);
    for (const std::string& tag : series.tags) s.Bytes(kSeriesTags, tag);
    for (const metrics::Point& point : series.points) {
      s.Message(kSeriesPoints, [&point](ProtoWriter& p) {
        p.Double(kPointValue, point.value);
        p.Int64(kPointTimestamp, point.timestamp);
      });
    }
    s.Int32(kSeriesType, static_cast<int32_t>(series.type));
    s.String(kSeriesSourceTypeName, series.source_type_name);
    s.Int64(kSeriesInterval, series.interval);
    s.Message(kSeriesMetadata, [](ProtoWriter& m) {
      m.Message(kMetadataOrigin, [](ProtoWriter& o) { o.Uint32(kOriginProduct, kOriginProductAgent); });
    });
  });
}

void EncodeSketch(const metrics::SketchSeries& sketch, ProtoScratch* scratch, std::string* out) {
  ProtoWriter payload(out, scratch);
  payload.Message(kPayloadSketches, [&sketch](ProtoWriter& s) {
    s.String(kSketchMetric, sketch.name);
    s.String(kSketchHost, sketch.host);
    for (const std::string& tag : sketch.tags) s.Bytes(kSketchTags, tag);
    for (const metrics::DogSketch& point : sketch.points) {
      s.Message(kSketchDogsketches, [&point](ProtoWriter& d) {
        d.Int64(kDogsketchTs, point.timestamp);
        d.Int64(kDogsketchCnt, point.count);
        d.Double(kDogsketchMin, point.min);
        d.Double(kDogsketchMax, point.max);
        d.Double(kDogsketchAvg, point.avg);
        d.Double(kDogsketchSum, point.sum);
        d.PackedSint32(kDogsketchK, point.keys);
        d.PackedUint32(kDogsketchN, point.counts);
      });
    }
  });
}

}  // namespace

absl::StatusOr<SerializerOptions> OptionsForCompressorKind(std::string_view compressor_kind, int zstd_level) {
  SerializerOptions options;
  const std::string kind = strings::Lower(strings::Strip(compressor_kind));
  if (kind == "zstd") {
    options.codec = compression::Codec::kZstd;
    options.compression_level = zstd_level;
  } else if (kind == "zlib") {
    options.codec = compression::Codec::kZlib;
    options.compression_level = compression::kDefaultLevel;
  } else {
    return absl::InvalidArgumentError(strings::Cat(
        "serializer_compressor_kind must be \"zstd\" or \"zlib\", not \"", kind.substr(0, 32), "\""));
  }
  return options;
}

absl::StatusOr<std::vector<Payload>> SerializeSeries(std::span<const metrics::Series> series,
                                                     const SerializerOptions& options,
                                                     SerializerCounters* counters) {
  if (absl::Status status = ValidateLimits(options.max_series_payload_size,
                                           options.max_series_uncompressed_payload_size, "series");
      !status.ok()) {
    return status;
  }
  SerializerCounters local_counters;
  if (counters == nullptr) counters = &local_counters;
  std::vector<Payload> payloads;
  PayloadBuilder::Config config;
  config.limits = {options.max_series_payload_size, options.max_series_uncompressed_payload_size,
                   options.max_series_points_per_payload};
  config.codec = options.codec;
  config.level = options.compression_level;
  config.path = kSeriesPath;
  config.content_type = kContentTypeProtobuf;
  // A MetricPayload is nothing but its repeated `series` field: the fragments are the body.
  PayloadBuilder builder(
      std::move(config),
      [](const PayloadBuilder& b, size_t count, std::string*) { return b.pending_bytes(count); }, counters,
      &payloads);
  ProtoScratch scratch;
  std::string fragment;
  for (const metrics::Series& one : series) {
    fragment.clear();
    EncodeSeries(one, &scratch, &fragment);
    if (absl::Status status = builder.Add(fragment, one.points.size()); !status.ok()) return status;
  }
  if (absl::Status status = builder.Finish(); !status.ok()) return status;
  return payloads;
}

absl::StatusOr<std::vector<Payload>> SerializeSketches(std::span<const metrics::SketchSeries> sketches,
                                                       const SerializerOptions& options,
                                                       SerializerCounters* counters) {
  if (absl::Status status =
          ValidateLimits(options.max_payload_size, options.max_uncompressed_payload_size, "sketch");
      !status.ok()) {
    return status;
  }
  SerializerCounters local_counters;
  if (counters == nullptr) counters = &local_counters;
  // The Agent ends every SketchPayload with an empty `metadata` field (what gogoproto's Marshal
  // emits for the struct); we do the same so our bodies match its bytes.
  std::string footer;
  {
    ProtoScratch footer_scratch;
    ProtoWriter(&footer, &footer_scratch).Message(kPayloadMetadata, [](ProtoWriter&) {});
  }
  std::vector<Payload> payloads;
  PayloadBuilder::Config config;
  config.limits = {options.max_payload_size, options.max_uncompressed_payload_size, 0};
  config.codec = options.codec;
  config.level = options.compression_level;
  config.path = kSketchesPath;
  config.content_type = kContentTypeProtobuf;
  config.fixed_overhead = footer.size();
  PayloadBuilder builder(
      std::move(config),
      [&footer](const PayloadBuilder& b, size_t count, std::string* scratch) {
        scratch->assign(b.pending_bytes(count));
        scratch->append(footer);
        return std::string_view(*scratch);
      },
      counters, &payloads);
  ProtoScratch scratch;
  std::string fragment;
  for (const metrics::SketchSeries& sketch : sketches) {
    bool valid = true;
    for (const metrics::DogSketch& point : sketch.points) {
      if (point.keys.size() != point.counts.size()) valid = false;
    }
    if (!valid) {
      // Keys and counts are parallel columns; the intake would misread a sketch whose lengths differ.
      ++counters->dropped_invalid;
      continue;
    }
    fragment.clear();
    EncodeSketch(sketch, &scratch, &fragment);
    if (absl::Status status = builder.Add(fragment, sketch.points.size()); !status.ok()) return status;
  }
  if (absl::Status status = builder.Finish(); !status.ok()) return status;
  return payloads;
}

}  // namespace dogwatch::serializer
