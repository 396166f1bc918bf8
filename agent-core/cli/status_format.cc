#include "agent-core/cli/status_format.h"

#include <algorithm>
#include <map>

#include "common/strings/strings.h"

namespace dogwatch::agent {
namespace {

using strings::AppendTo;
using strings::Cat;

std::string Ago(int64_t now_ms, int64_t then_ms) {
  if (then_ms <= 0) return "never";
  int64_t s = std::max<int64_t>(0, (now_ms - then_ms) / 1000);
  if (s < 120) return Cat(s, "s");
  if (s < 7200) return Cat(s / 60, "m", s % 60, "s");
  return Cat(s / 3600, "h", (s % 3600) / 60, "m");
}

void AppendCounters(std::string* out, const google::protobuf::Map<std::string, int64_t>& counters,
                    const std::string& indent) {
  std::map<std::string, int64_t> sorted(counters.begin(), counters.end());
  std::string line = indent;
  for (const auto& [name, value] : sorted) {
    std::string item = Cat(name, "=", value, "  ");
    if (line.size() + item.size() > 100 && line.size() > indent.size()) {
      AppendTo(out, line, "\n");
      line = indent;
    }
    line += item;
  }
  if (line.size() > indent.size()) AppendTo(out, line, "\n");
}

void AppendComponent(std::string* out, const core::ComponentStatus& c, int64_t now_ms) {
  AppendTo(out, "  ", c.name(), " ", c.version(), "  [", c.state(), "]  pid ", c.pid(), "  up ",
           Ago(now_ms, c.started_unix_ms()), "  last report ", Ago(now_ms, c.reported_unix_ms()), " ago\n");
  std::map<std::string, std::string> info(c.info().begin(), c.info().end());
  for (const auto& [key, value] : info) AppendTo(out, "    ", key, ": ", value, "\n");
  if (!c.last_error().empty()) {
    AppendTo(out, "    last error (", Ago(now_ms, c.last_error_unix_ms()), " ago): ", c.last_error(), "\n");
  }
  AppendCounters(out, c.counters(), "    ");
}

}  // namespace

std::string FormatStatus(const core::StatusResponse& status, int64_t now_ms) {
  std::string out;
  AppendTo(&out, "dogwatch agent status — host ", status.hostname(), "\n\n");
  AppendTo(&out, "Core\n");
  AppendComponent(&out, status.core(), now_ms);
  AppendTo(&out, "\nComponents\n");
  if (status.components_size() == 0) AppendTo(&out, "  (no sub-agent has reported)\n");
  for (const auto& c : status.components()) AppendComponent(&out, c, now_ms);

  const core::ForwarderStatus& fwd = status.forwarder();
  AppendTo(&out, "\nForwarder → ", fwd.destination(), "\n");
  AppendCounters(&out, fwd.counters(), "  ");
  for (const auto& d : fwd.domains()) {
    AppendTo(
        &out, "  ", d.url(),
        d.api_key_hint().empty() || d.api_key_hint() == "***" ? "" : Cat(" (key ", d.api_key_hint(), ")"),
        ": queued ", d.queued_transactions(), " (", d.queued_bytes(), " B), on disk ",
        d.on_disk_transactions(), " (", d.on_disk_bytes(), " B), errors ", d.consecutive_errors());
    if (d.backoff_until_unix_ms() > now_ms)
      AppendTo(&out, ", backing off for ", (d.backoff_until_unix_ms() - now_ms) / 1000, "s");
    AppendTo(&out, "\n");
  }
  if (!status.local_intake().empty()) {
    AppendTo(&out, "\nLocal intake\n");
    AppendCounters(&out, status.local_intake(), "  ");
  }
  AppendTo(&out, "\nIPC\n");
  AppendCounters(&out, status.ipc(), "  ");
  return out;
}

}  // namespace dogwatch::agent
