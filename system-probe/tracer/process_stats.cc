#include "system-probe/tracer/process_stats.h"

#include <dirent.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace dogwatch::sysprobe {

std::optional<ProcessIo> ReadProcessIo(const std::string& proc_root, int32_t pid) {
  if (pid <= 0) return std::nullopt;
  ProcessIo io;
  io.pid = pid;
  const std::string dir = absl::StrCat(proc_root, "/", pid);
  FILE* file = std::fopen((dir + "/io").c_str(), "re");
  if (file == nullptr) return std::nullopt;
  char line[128];
  int lines = 0;
  while (std::fgets(line, sizeof(line), file) != nullptr && ++lines < 32) {  // the file has 7 lines
    char* colon = std::strchr(line, ':');
    if (colon == nullptr) continue;
    *colon = '\0';
    uint64_t value = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(colon + 1), &value)) continue;
    std::string_view key(line);
    if (key == "read_bytes")
      io.read_bytes = value;
    else if (key == "write_bytes")
      io.write_bytes = value;
    else if (key == "syscr")
      io.read_count = value;
    else if (key == "syscw")
      io.write_count = value;
  }
  std::fclose(file);
  if (DIR* fds = opendir((dir + "/fd").c_str())) {
    uint32_t count = 0;
    while (dirent* entry = readdir(fds)) {
      if (entry->d_name[0] != '.') ++count;
    }
    closedir(fds);
    io.open_fds = count;
  }
  return io;
}

}  // namespace dogwatch::sysprobe
