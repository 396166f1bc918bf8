// Events (/intake/) and service checks (/api/v1/check_run): the JSON bodies the Agent's
// pkg/serializer/internal/metrics/{events,service_checks}.go write, with the same field names,
// field order and omissions.

#include <algorithm>
#include <chrono>
#include <numeric>
#include <string>
#include <vector>

#include "agent-core/serializer/json_util.h"
#include "agent-core/serializer/payload_builder.h"
#include "agent-core/serializer/serializer.h"
#include "common/strings/strings.h"

namespace dogwatch::serializer {
namespace {

using internal::JsonWriter;
using internal::PayloadBuilder;
using internal::WriteJsonKey;
using internal::WriteJsonString;

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view PriorityName(metrics::EventPriority priority) {
  return priority == metrics::EventPriority::kLow ? "low" : "normal";
}

std::string_view AlertTypeName(metrics::EventAlertType type) {
  switch (type) {
    case metrics::EventAlertType::kInfo:
      return "info";
    case metrics::EventAlertType::kError:
      return "error";
    case metrics::EventAlertType::kWarning:
      return "warning";
    case metrics::EventAlertType::kSuccess:
      return "success";
  }
  return "info";
}

// The events object groups events under their source type name; the Agent uses "api" for events
// without one.
std::string_view EventGroupName(const metrics::Event& event) {
  return event.source_type_name.empty() ? std::string_view("api") : std::string_view(event.source_type_name);
}

void WriteEvent(const metrics::Event& event, const SerializerOptions& options, int64_t now,
                rapidjson::StringBuffer* buffer) {
  buffer->Clear();
  JsonWriter w(*buffer);
  w.StartObject();
  WriteJsonKey(w, "msg_title");
  WriteJsonString(w, event.title);
  WriteJsonKey(w, "msg_text");
  WriteJsonString(w, event.text);
  WriteJsonKey(w, "timestamp");
  w.Int64(event.timestamp != 0 ? event.timestamp : now);
  WriteJsonKey(w, "priority");
  WriteJsonString(w, PriorityName(event.priority));
  WriteJsonKey(w, "host");
  WriteJsonString(w, event.host.empty() ? options.hostname : event.host);
  if (!event.tags.empty()) {
    WriteJsonKey(w, "tags");
    w.StartArray();
    for (const std::string& tag : event.tags) WriteJsonString(w, tag);
    w.EndArray();
  }
  WriteJsonKey(w, "alert_type");
  WriteJsonString(w, AlertTypeName(event.alert_type));
  if (!event.aggregation_key.empty()) {
    WriteJsonKey(w, "aggregation_key");
    WriteJsonString(w, event.aggregation_key);
  }
  if (!event.source_type_name.empty()) {
    WriteJsonKey(w, "source_type_name");
    WriteJsonString(w, event.source_type_name);
  }
  w.EndObject();
}

void WriteServiceCheck(const metrics::ServiceCheck& check, const SerializerOptions& options, int64_t now,
                       rapidjson::StringBuffer* buffer) {
  buffer->Clear();
  JsonWriter w(*buffer);
  w.StartObject();
  WriteJsonKey(w, "check");
  WriteJsonString(w, check.name);
  WriteJsonKey(w, "host_name");
  WriteJsonString(w, check.host.empty() ? options.hostname : check.host);
  WriteJsonKey(w, "timestamp");
  w.Int64(check.timestamp != 0 ? check.timestamp : now);
  WriteJsonKey(w, "status");
  w.Int(static_cast<int>(check.status));
  WriteJsonKey(w, "message");
  WriteJsonString(w, check.message);
  WriteJsonKey(w, "tags");
  // The Agent writes null for a check without tags.
  if (check.tags.empty()) {
    w.Null();
  } else {
    w.StartArray();
    for (const std::string& tag : check.tags) WriteJsonString(w, tag);
    w.EndArray();
  }
  w.EndObject();
}

PayloadBuilder::Config JsonConfig(const SerializerOptions& options, std::string path, size_t fixed_overhead) {
  PayloadBuilder::Config config;
  config.limits = {options.max_payload_size, options.max_uncompressed_payload_size, 0};
  config.codec = options.codec;
  config.level = options.compression_level;
  config.path = std::move(path);
  config.content_type = kContentTypeJson;
  config.fixed_overhead = fixed_overhead;
  return config;
}

absl::Status ValidateJsonLimits(const SerializerOptions& options) {
  if (options.max_payload_size == 0 || options.max_uncompressed_payload_size == 0) {
    return absl::InvalidArgumentError("payload size limits must be positive");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<Payload>> SerializeEvents(std::span<const metrics::Event> events,
                                                     const SerializerOptions& options,
                                                     SerializerCounters* counters) {
  if (absl::Status status = ValidateJsonLimits(options); !status.ok()) return status;
  SerializerCounters local_counters;
  if (counters == nullptr) counters = &local_counters;

  // Group by source type name. Sorting on the name as sent (not the raw field, as the Agent does)
  // keeps events without one and events of source "api" under a single key: a JSON object must
  // not repeat a key.
  std::vector<size_t> order(events.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&events](size_t a, size_t b) {
    return EventGroupName(events[a]) < EventGroupName(events[b]);
  });
  std::vector<std::string> group_keys;  // quoted JSON keys, one per distinct group, in order
  std::vector<uint32_t> group_of(events.size(), 0);
  for (size_t position = 0; position < order.size(); ++position) {
    const std::string_view name = EventGroupName(events[order[position]]);
    if (position == 0 || name != EventGroupName(events[order[position - 1]])) {
      group_keys.push_back(internal::JsonQuote(name));
    }
    group_of[position] = static_cast<uint32_t>(group_keys.size() - 1);
  }

  const std::string header = "{\"apiKey\":\"\",\"events\":{";
  const std::string footer =
      strings::Cat("},\"internalHostname\":", internal::JsonQuote(options.hostname), "}");
  std::vector<Payload> payloads;
  PayloadBuilder builder(
      JsonConfig(options, kEventsPath, header.size() + footer.size()),
      [&](const PayloadBuilder& b, size_t count, std::string* body) {
        body->assign(header);
        for (size_t i = 0; i < count; ++i) {
          if (i == 0 || b.group(i) != b.group(i - 1)) {
            if (i != 0) body->append("],");
            body->append(group_keys[b.group(i)]);
            body->append(":[");
          } else {
            body->push_back(',');
          }
          body->append(b.fragment(i));
        }
        if (count > 0) body->push_back(']');
        body->append(footer);
        return std::string_view(*body);
      },
      counters, &payloads);

  const int64_t now = NowSeconds();
  rapidjson::StringBuffer buffer;
  for (size_t position = 0; position < order.size(); ++position) {
    WriteEvent(events[order[position]], options, now, &buffer);
    const uint32_t group = group_of[position];
    // Worst case around this event: it opens its group (`"key":[`), closes the previous one (`],`)
    // or is separated from its neighbour (`,`), and closes its own (`]`).
    const size_t overhead = group_keys[group].size() + 2 + 2 + 1;
    if (absl::Status status =
            builder.Add(std::string_view(buffer.GetString(), buffer.GetSize()), 0, overhead, group);
        !status.ok()) {
      return status;
    }
  }
  if (absl::Status status = builder.Finish(); !status.ok()) return status;
  return payloads;
}

absl::StatusOr<std::vector<Payload>> SerializeServiceChecks(std::span<const metrics::ServiceCheck> checks,
                                                            const SerializerOptions& options,
                                                            SerializerCounters* counters) {
  if (absl::Status status = ValidateJsonLimits(options); !status.ok()) return status;
  SerializerCounters local_counters;
  if (counters == nullptr) counters = &local_counters;
  std::vector<Payload> payloads;
  PayloadBuilder builder(
      JsonConfig(options, kServiceChecksPath, 2),
      [](const PayloadBuilder& b, size_t count, std::string* body) {
        body->assign("[");
        for (size_t i = 0; i < count; ++i) {
          if (i != 0) body->push_back(',');
          body->append(b.fragment(i));
        }
        body->push_back(']');
        return std::string_view(*body);
      },
      counters, &payloads);
  const int64_t now = NowSeconds();
  rapidjson::StringBuffer buffer;
  for (const metrics::ServiceCheck& check : checks) {
    WriteServiceCheck(check, options, now, &buffer);
    if (absl::Status status = builder.Add(std::string_view(buffer.GetString(), buffer.GetSize()), 0, 1);
        !status.ok()) {
      return status;
    }
  }
  if (absl::Status status = builder.Finish(); !status.ok()) return status;
  return payloads;
}

}  // namespace dogwatch::serializer
