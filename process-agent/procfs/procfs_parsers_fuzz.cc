// Fuzzes every /proc text parser with the same input: they must never crash, hang or read out of
// bounds, whatever the kernel (or a hostile proc_root) hands them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/container/container_id.h"
#include "process-agent/procfs/proc_parsers.h"
#include "process-agent/procfs/scrub.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dogwatch::process;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  StatFields stat;
  if (ParseStat(text, &stat).ok()) {
    // comm must point inside the input.
    if (stat.comm.data() < text.data() || stat.comm.data() + stat.comm.size() > text.data() + text.size()) {
      __builtin_trap();
    }
  }
  StatusFields status;
  (void)ParseStatus(text, &status);
  IoFields io;
  (void)ParseIo(text, &io);
  SchedStatFields sched;
  (void)ParseSchedStat(text, &sched);
  SystemStat system;
  (void)ParseSystemStat(text, &system);
  std::string container_id = dogwatch::container::ContainerIdFromCgroupFile(text);
  if (!container_id.empty() && container_id.size() != 64) __builtin_trap();

  std::vector<std::string> args;
  ParseCmdline(text, 64, &args);
  if (args.size() > 64) __builtin_trap();
  for (const std::string& arg : args) {
    if (arg.empty()) __builtin_trap();  // runs of NULs never make empty arguments
  }
  // The scrubber consumes what the cmdline parser produces.
  static const CommandLineScrubber scrubber(CommandLineScrubber::Options{});
  std::vector<std::string> scrubbed = scrubber.Scrub(args);
  (void)scrubbed;
  return 0;
}
