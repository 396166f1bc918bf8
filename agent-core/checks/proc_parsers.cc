#include "agent-core/checks/proc_parsers.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/strings/strings.h"

namespace dogwatch::checks {
namespace {

// Calls `visit(line)` for each line of `text`, without the line break.
template <typename Visitor>
void ForEachLine(std::string_view text, Visitor&& visit) {
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    visit(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

bool IsFieldSeparator(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Splits `line` on blanks into at most N fields and returns how many fields the line has (which
// may be more than N: callers compare against what they need, fields past N are not stored).
template <size_t N>
size_t SplitFields(std::string_view line, std::array<std::string_view, N>& fields) {
  size_t count = 0;
  size_t pos = 0;
  while (pos < line.size()) {
    while (pos < line.size() && IsFieldSeparator(line[pos])) ++pos;
    if (pos >= line.size()) break;
    size_t end = pos;
    while (end < line.size() && !IsFieldSeparator(line[end])) ++end;
    if (count < N) fields[count] = line.substr(pos, end - pos);
    ++count;
    pos = end;
  }
  return count;
}

bool ParseU64(std::string_view text, uint64_t* value) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto result = std::from_chars(text.data(), end, *value);
  return result.ec == std::errc() && result.ptr == end;
}

bool ParseI64(std::string_view text, int64_t* value) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto result = std::from_chars(text.data(), end, *value);
  return result.ec == std::errc() && result.ptr == end;
}

// Plain decimal notation only ("0.52"), as the kernel prints; rejects inf/nan and hex floats.
bool ParseDecimal(std::string_view text, double* value) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || c == '.')) return false;
  }
  const char* end = text.data() + text.size();
  auto result = std::from_chars(text.data(), end, *value, std::chars_format::fixed);
  return result.ec == std::errc() && result.ptr == end;
}

// Keeps error messages readable and short when they quote untrusted text.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxQuoted = 64;
  std::string out = "\"";
  for (char c : text.substr(0, kMaxQuoted)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (text.size() > kMaxQuoted) out.append("...");
  out.push_back('"');
  return out;
}

bool ParseCpuTimes(const std::array<std::string_view, 12>& fields, size_t count, CpuTimes* times) {
  // user nice system idle are in every kernel; the rest were added over time (steal in 2.6.11,
  // guest in 2.6.24, guest_nice in 2.6.33).
  constexpr size_t kRequired = 4;
  if (count < 1 + kRequired) return false;
  uint64_t* const slots[] = {&times->user,   &times->nice,      &times->system,  &times->idle,
                             &times->iowait, &times->irq,       &times->softirq, &times->steal,
                             &times->guest,  &times->guest_nice};
  const size_t available = std::min(count - 1, std::size(slots));
  for (size_t i = 0; i < available; ++i) {
    if (!ParseU64(fields[i + 1], slots[i])) return false;
  }
  return true;
}

// Decodes the octal escapes the kernel uses for blanks and backslashes in mount fields (\040 \011
// \012 \134). Anything that is not a three-digit octal escape is kept as is.
std::string UnescapeMountField(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      const char a = field[i + 1], b = field[i + 2], c = field[i + 3];
      if (a >= '0' && a <= '3' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
        out.push_back(static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

}  // namespace

absl::Status ReadProcFile(const std::string& path, std::string* out, size_t max_bytes) {
  out->clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    const std::string message = strings::Cat("cannot open ", path, ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::UnavailableError(message);
  }
  // /proc files report a size of 0, so read in chunks until EOF; one byte past the cap tells a file
  // that is exactly max_bytes long from one that is longer.
  constexpr size_t kChunk = 16 * 1024;
  absl::Status status = absl::OkStatus();
  while (true) {
    const size_t used = out->size();
    const size_t want = std::min(kChunk, max_bytes + 1 - used);
    out->resize(used + want);
    const ssize_t got = ::read(fd, out->data() + used, want);
    if (got < 0) {
      if (errno == EINTR) {
        out->resize(used);
        continue;
      }
      const int error = errno;
      out->clear();
      status = absl::UnavailableError(strings::Cat("cannot read ", path, ": ", std::strerror(error)));
      break;
    }
    out->resize(used + static_cast<size_t>(got));
    if (got == 0) break;
    if (out->size() > max_bytes) {
      out->clear();
      status = absl::OutOfRangeError(strings::Cat(path, " is larger than ", max_bytes, " bytes"));
      break;
    }
  }
  ::close(fd);
  return status;
}

absl::StatusOr<ProcStat> ParseProcStat(std::string_view text) {
  ProcStat stat;
  bool have_total = false;
  std::string error;
  ForEachLine(text, [&](std::string_view line) {
    if (!error.empty()) return;
    std::array<std::string_view, 12> fields;
    const size_t count = SplitFields(line, fields);
    if (count == 0) return;
    const std::string_view key = fields[0];
    if (key == "cpu") {
      if (!ParseCpuTimes(fields, count, &stat.total)) {
        error = strings::Cat("malformed aggregate cpu line ", Quote(line));
        return;
      }
      have_total = true;
    } else if (key.size() > 3 && key.starts_with("cpu")) {
      uint64_t index = 0;
      if (!ParseU64(key.substr(3), &index)) return;  // not a cpuN line
      if (stat.cpus.size() >= kMaxCpus) {
        ++stat.dropped_entries;
        return;
      }
      PerCpuTimes cpu;
      if (!ParseCpuTimes(fields, count, &cpu.times)) {
        error = strings::Cat("malformed cpu line ", Quote(line));
        return;
      }
      cpu.name = std::string(key);
      stat.cpus.push_back(std::move(cpu));
    } else if (key == "ctxt" && count >= 2) {
      uint64_t value = 0;
      if (ParseU64(fields[1], &value)) stat.context_switches = value;
    }
  });
  if (!error.empty()) return absl::InvalidArgumentError(error);
  if (!have_total) return absl::InvalidArgumentError("no aggregate cpu line");
  return stat;
}

absl::StatusOr<MemInfo> ParseMeminfo(std::string_view text) {
  MemInfo info;
  std::optional<uint64_t> total, free;
  ForEachLine(text, [&](std::string_view line) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    const std::string_view key = line.substr(0, colon);
    std::array<std::string_view, 3> fields;
    const size_t count = SplitFields(line.substr(colon + 1), fields);
    if (count < 1 || count > 2) return;
    uint64_t value = 0;
    if (!ParseU64(fields[0], &value)) return;
    if (count == 2) {
      if (fields[1] != "kB") return;
      // 2^54 kB is 16 EiB: larger values cannot be real and would overflow when scaled.
      if (value > (uint64_t{1} << 54)) return;
      value *= 1024;
    }
    if (key == "MemTotal") {
      total = value;
    } else if (key == "MemFree") {
      free = value;
    } else if (key == "MemAvailable") {
      info.available = value;
    } else if (key == "Buffers") {
      info.buffers = value;
    } else if (key == "Cached") {
      info.cached = value;
    } else if (key == "SwapCached") {
      info.swap_cached = value;
    } else if (key == "Shmem") {
      info.shmem = value;
    } else if (key == "Slab") {
      info.slab = value;
    } else if (key == "SReclaimable") {
      info.s_reclaimable = value;
    } else if (key == "PageTables") {
      info.page_tables = value;
    } else if (key == "CommitLimit") {
      info.commit_limit = value;
    } else if (key == "Committed_AS") {
      info.committed_as = value;
    } else if (key == "SwapTotal") {
      info.swap_total = value;
    } else if (key == "SwapFree") {
      info.swap_free = value;
    }
  });
  if (!total || !free) return absl::InvalidArgumentError("MemTotal or MemFree missing");
  if (*total == 0) return absl::InvalidArgumentError("MemTotal is 0");
  info.total = *total;
  info.free = *free;
  return info;
}

absl::StatusOr<VmStat> ParseVmstat(std::string_view text) {
  VmStat vmstat;
  size_t parsed_lines = 0;
  ForEachLine(text, [&](std::string_view line) {
    std::array<std::string_view, 3> fields;
    if (SplitFields(line, fields) != 2) return;
    uint64_t value = 0;
    if (!ParseU64(fields[1], &value)) return;
    ++parsed_lines;
    if (fields[0] == "pgpgin") {
      vmstat.pgpgin = value;
    } else if (fields[0] == "pgpgout") {
      vmstat.pgpgout = value;
    } else if (fields[0] == "pswpin") {
      vmstat.pswpin = value;
    } else if (fields[0] == "pswpout") {
      vmstat.pswpout = value;
    }
  });
  if (parsed_lines == 0) return absl::InvalidArgumentError("no counters");
  return vmstat;
}

absl::StatusOr<LoadAvg> ParseLoadavg(std::string_view text) {
  const std::string_view line = text.substr(0, text.find('\n'));
  std::array<std::string_view, 5> fields;
  if (SplitFields(line, fields) < 3)
    return absl::InvalidArgumentError(strings::Cat("malformed ", Quote(line)));
  LoadAvg load;
  if (!ParseDecimal(fields[0], &load.one) || !ParseDecimal(fields[1], &load.five) ||
      !ParseDecimal(fields[2], &load.fifteen)) {
    return absl::InvalidArgumentError(strings::Cat("malformed ", Quote(line)));
  }
  return load;
}

absl::StatusOr<double> ParseUptime(std::string_view text) {
  const std::string_view line = text.substr(0, text.find('\n'));
  std::array<std::string_view, 2> fields;
  double seconds = 0;
  if (SplitFields(line, fields) < 1 || !ParseDecimal(fields[0], &seconds)) {
    return absl::InvalidArgumentError(strings::Cat("malformed ", Quote(line)));
  }
  return seconds;
}

absl::StatusOr<DiskStatsTable> ParseDiskstats(std::string_view text) {
  DiskStatsTable table;
  size_t lines = 0;
  ForEachLine(text, [&](std::string_view line) {
    std::array<std::string_view, 14> fields;
    const size_t count = SplitFields(line, fields);
    if (count == 0) return;
    ++lines;
    // major minor name + the 11 fields every kernel since 2.6 has; newer kernels append discard
    // and flush counters, which the io check does not use.
    if (count < 14) {
      ++table.malformed_lines;
      return;
    }
    DiskStats disk;
    uint64_t* const slots[] = {&disk.reads,       &disk.merged_reads,  &disk.sectors_read,    &disk.read_ms,
                               &disk.writes,      &disk.merged_writes, &disk.sectors_written, &disk.write_ms,
                               &disk.in_progress, &disk.io_ms,         &disk.weighted_io_ms};
    for (size_t i = 0; i < std::size(slots); ++i) {
      if (!ParseU64(fields[i + 3], slots[i])) {
        ++table.malformed_lines;
        return;
      }
    }
    if (table.disks.size() >= kMaxDevices) {
      ++table.dropped_entries;
      return;
    }
    disk.name = std::string(fields[2]);
    table.disks.push_back(std::move(disk));
  });
  if (lines > 0 && table.disks.empty() && table.dropped_entries == 0) {
    return absl::InvalidArgumentError(strings::Cat("none of ", lines, " lines is a valid device line"));
  }
  return table;
}

absl::StatusOr<NetDevTable> ParseNetDev(std::string_view text) {
  NetDevTable table;
  size_t lines = 0;
  ForEachLine(text, [&](std::string_view line) {
    // The two header lines have '|' column separators and no interface.
    if (line.find('|') != std::string_view::npos) return;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      if (!strings::Strip(line).empty()) ++table.malformed_lines;
      return;
    }
    ++lines;
    const std::string_view name = strings::Strip(line.substr(0, colon));
    std::array<std::string_view, 16> fields;
    const size_t count = SplitFields(line.substr(colon + 1), fields);
    // rx: bytes packets errs drop fifo frame compressed multicast, then tx: bytes packets errs drop
    // fifo colls carrier compressed.
    if (name.empty() || count < 16) {
      ++table.malformed_lines;
      return;
    }
    NetDevCounters counters;
    const std::pair<size_t, uint64_t*> slots[] = {{0, &counters.rx_bytes},   {1, &counters.rx_packets},
                                                  {2, &counters.rx_errors},  {3, &counters.rx_drops},
                                                  {8, &counters.tx_bytes},   {9, &counters.tx_packets},
                                                  {10, &counters.tx_errors}, {11, &counters.tx_drops}};
    for (const auto& slot : slots) {
      if (!ParseU64(fields[slot.first], slot.second)) {
        ++table.malformed_lines;
        return;
      }
    }
    if (table.interfaces.size() >= kMaxDevices) {
      ++table.dropped_entries;
      return;
    }
    counters.name = std::string(name);
    table.interfaces.push_back(std::move(counters));
  });
  if (lines > 0 && table.interfaces.empty() && table.dropped_entries == 0) {
    return absl::InvalidArgumentError(strings::Cat("none of ", lines, " lines is a valid interface line"));
  }
  return table;
}

absl::StatusOr<MountTable> ParseMounts(std::string_view text) {
  MountTable table;
  size_t lines = 0;
  ForEachLine(text, [&](std::string_view line) {
    std::array<std::string_view, 6> fields;
    const size_t count = SplitFields(line, fields);
    if (count == 0) return;
    ++lines;
    if (count < 3) {
      ++table.malformed_lines;
      return;
    }
    if (table.mounts.size() >= kMaxMounts) {
      ++table.dropped_entries;
      return;
    }
    table.mounts.push_back(MountEntry{.device = UnescapeMountField(fields[0]),
                                      .mount_point = UnescapeMountField(fields[1]),
                                      .fs_type = UnescapeMountField(fields[2])});
  });
  if (lines > 0 && table.mounts.empty() && table.dropped_entries == 0) {
    return absl::InvalidArgumentError(strings::Cat("none of ", lines, " lines is a valid mount line"));
  }
  return table;
}

absl::StatusOr<FileNr> ParseFileNr(std::string_view text) {
  const std::string_view line = text.substr(0, text.find('\n'));
  std::array<std::string_view, 4> fields;
  FileNr file_nr;
  if (SplitFields(line, fields) != 3 || !ParseU64(fields[0], &file_nr.allocated) ||
      !ParseU64(fields[1], &file_nr.allocated_unused) || !ParseU64(fields[2], &file_nr.max)) {
    return absl::InvalidArgumentError(strings::Cat("expected 3 counters, got ", Quote(line)));
  }
  return file_nr;
}

absl::StatusOr<int64_t> ParseSysfsInt(std::string_view text) {
  int64_t value = 0;
  if (!ParseI64(strings::Strip(text), &value)) {
    return absl::InvalidArgumentError(strings::Cat("not an integer: ", Quote(text)));
  }
  return value;
}

}  // namespace dogwatch::checks
