// Fuzzes every cgroup, /proc and Engine API parser of the container libraries with the same bytes.
// Beyond "no crash", checks the bounds callers rely on.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/container/cgroup.h"
#include "common/container/runtime.h"

using namespace dogwatch::container;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  KeyedValues keyed = ParseKeyedValues(text);
  if (keyed.entries.size() > kMaxKeyedEntries) abort();
  (void)keyed.Get("usage_usec");
  (void)ParseSingleValue(text);
  (void)ParseSignedValue(text);
  if (auto max = ParseCpuMax(text); max.ok() && max->period_us == 0) abort();
  (void)ParseBlkioServiceBytes(text);
  (void)ParseIoStat(text);
  (void)ParseProcIo(text);
  size_t dropped = 0;
  std::vector<pid_t> pids = ParseCgroupProcs(text, 16, &dropped);
  if (pids.size() > 16) abort();
  for (pid_t pid : pids) {
    if (pid <= 0) abort();
  }

  if (auto list = ParseContainerList(text, 8); list.ok() && list->size() > 8) abort();
  if (auto meta = ParseContainerInspect(text); meta.ok()) {
    if (meta->id.empty() || meta->pid < 0) abort();
    std::vector<std::string> tags = ContainerTags(*meta, TagCardinality::kHigh, {{"team", "+team"}});
    for (const std::string& tag : tags) {
      if (tag.find(':') == std::string::npos) abort();
    }
  }
  if (auto event = ParseContainerEvent(text); event.ok() && (event->id.empty() || event->action.empty()))
    abort();
  (void)ParseRfc3339(text);
  ImageRef image = SplitImageRef(text);
  if (image.short_name.find('/') != std::string::npos) abort();
  return 0;
}
