#include "process-agent/procfs/proc_parsers.h"

#include <charconv>
#include <limits>

#include "common/strings/strings.h"

namespace dogwatch::process {
namespace {

// Whole-token decimal parses: no sign for unsigned, trailing garbage rejected.
bool ToU64(std::string_view token, uint64_t* out) {
  if (token.empty()) return false;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), *out);
  return ec == std::errc() && ptr == token.data() + token.size();
}

bool ToI64(std::string_view token, int64_t* out) {
  if (token.empty()) return false;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), *out);
  return ec == std::errc() && ptr == token.data() + token.size();
}

bool ToI32(std::string_view token, int32_t* out) {
  int64_t value = 0;
  if (!ToI64(token, &value)) return false;
  if (value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max()) {
    return false;
  }
  *out = static_cast<int32_t>(value);
  return true;
}

bool ToU32(std::string_view token, uint32_t* out) {
  uint64_t value = 0;
  if (!ToU64(token, &value) || value > std::numeric_limits<uint32_t>::max()) return false;
  *out = static_cast<uint32_t>(value);
  return true;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Splits off the next blank-separated token of `rest`.
std::string_view NextToken(std::string_view* rest) {
  size_t start = 0;
  while (start < rest->size() && IsBlank((*rest)[start])) ++start;
  size_t end = start;
  while (end < rest->size() && !IsBlank((*rest)[end]) && (*rest)[end] != '\n') ++end;
  std::string_view token = rest->substr(start, end - start);
  rest->remove_prefix(end);
  return token;
}

// Calls `visit(line)` for each '\n'-separated line (the last one may lack its newline).
template <typename Visit>
void ForEachLine(std::string_view text, Visit visit) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    visit(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

// "  1234 kB" → 1234.
bool ParseKb(std::string_view value, uint64_t* out) {
  value = strings::Strip(value);
  if (value.ends_with("kB")) value = strings::Strip(value.substr(0, value.size() - 2));
  return ToU64(value, out);
}

// "0\t0\t0\t0" → four ids.
bool ParseIdQuad(std::string_view value, uint32_t out[4]) {
  for (int i = 0; i < 4; ++i) {
    if (!ToU32(NextToken(&value), &out[i])) return false;
  }
  return true;
}

}  // namespace

absl::Status ParseStat(std::string_view text, StatFields* out) {
  // The comm field may contain anything, ')' and spaces included, so it ends at the LAST ')'.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return absl::InvalidArgumentError("stat: no (comm) field");
  }
  *out = StatFields{};
  std::string_view pid_text = strings::Strip(text.substr(0, open));
  if (!ToI32(pid_text, &out->pid)) return absl::InvalidArgumentError("stat: bad pid");
  out->comm = text.substr(open + 1, close - open - 1);

  std::string_view rest = text.substr(close + 1);
  // Field n of proc(5) (n >= 3) is token n-3 after the comm.
  constexpr int kNeeded = 22;  // up to rss (24)
  std::string_view tokens[37];
  int count = 0;
  while (count < 37) {
    std::string_view token = NextToken(&rest);
    if (token.empty()) break;
    tokens[count++] = token;
  }
  if (count < kNeeded) return absl::InvalidArgumentError("stat: too few fields");
  if (tokens[0].size() != 1) return absl::InvalidArgumentError("stat: bad state");
  out->state = tokens[0][0];
  int64_t nice = 0;
  int64_t threads = 0;
  if (!ToI32(tokens[1], &out->ppid) || !ToI32(tokens[2], &out->pgroup) || !ToU32(tokens[6], &out->flags) ||
      !ToU64(tokens[11], &out->utime_ticks) || !ToU64(tokens[12], &out->stime_ticks) ||
      !ToI64(tokens[16], &nice) || !ToI64(tokens[17], &threads) || !ToU64(tokens[19], &out->start_ticks) ||
      !ToU64(tokens[20], &out->vsize_bytes)) {
    return absl::InvalidArgumentError("stat: malformed number");
  }
  // rss is a signed long in the kernel; a negative value has never been seen but is not a reason to
  // drop the process.
  int64_t rss = 0;
  if (!ToI64(tokens[21], &rss)) return absl::InvalidArgumentError("stat: malformed rss");
  out->rss_pages = rss > 0 ? static_cast<uint64_t>(rss) : 0;
  if (nice < -20 || nice > 19 || threads < 0 || threads > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError("stat: nice or threads out of range");
  }
  out->nice = static_cast<int32_t>(nice);
  out->num_threads = static_cast<int32_t>(threads);
  if (count > 36 && !ToI32(tokens[36], &out->processor)) out->processor = -1;
  return absl::OkStatus();
}

absl::Status ParseStatus(std::string_view text, StatusFields* out) {
  *out = StatusFields{};
  bool have_uid = false;
  bool have_gid = false;
  bool malformed = false;
  ForEachLine(text, [&](std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    std::string_view key = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    // Dispatch on the first letter: status has ~55 lines and we want 16 of them.
    switch (key.empty() ? '\0' : key[0]) {
      case 'U':
        if (key == "Uid") {
          have_uid = ParseIdQuad(value, out->uid);
          malformed |= !have_uid;
        }
        break;
      case 'G':
        if (key == "Gid") {
          have_gid = ParseIdQuad(value, out->gid);
          malformed |= !have_gid;
        }
        break;
      case 'N':
        if (key == "NSpid") {
          // "NSpid:\t1234\t5": the last entry is the innermost namespace.
          std::string_view last;
          for (std::string_view token = NextToken(&value); !token.empty(); token = NextToken(&value)) {
            last = token;
          }
          if (!ToI32(last, &out->ns_pid)) out->ns_pid = 0;
        }
        break;
      case 'T':
        if (key == "Threads" && !ToI32(strings::Strip(value), &out->num_threads)) out->num_threads = 0;
        break;
      case 'K':
        if (key == "Kthread") out->kernel_thread = strings::Strip(value) == "1";
        break;
      case 'v':
        if (key == "voluntary_ctxt_switches") ToU64(strings::Strip(value), &out->voluntary_ctx_switches);
        break;
      case 'n':
        if (key == "nonvoluntary_ctxt_switches") ToU64(strings::Strip(value), &out->involuntary_ctx_switches);
        break;
      case 'V':
        if (key == "VmSize") {
          ParseKb(value, &out->vm_size_kb);
        } else if (key == "VmRSS") {
          ParseKb(value, &out->vm_rss_kb);
        } else if (key == "VmSwap") {
          ParseKb(value, &out->vm_swap_kb);
        } else if (key == "VmData") {
          ParseKb(value, &out->vm_data_kb);
        } else if (key == "VmStk") {
          ParseKb(value, &out->vm_stk_kb);
        } else if (key == "VmExe") {
          ParseKb(value, &out->vm_exe_kb);
        } else if (key == "VmLib") {
          ParseKb(value, &out->vm_lib_kb);
        }
        break;
      case 'R':
        if (key == "RssFile") {
          ParseKb(value, &out->rss_file_kb);
        } else if (key == "RssShmem") {
          ParseKb(value, &out->rss_shmem_kb);
        }
        break;
      default:
        break;
    }
  });
  if (malformed || !have_uid || !have_gid) return absl::InvalidArgumentError("status: missing Uid/Gid");
  return absl::OkStatus();
}

absl::Status ParseIo(std::string_view text, IoFields* out) {
  *out = IoFields{};
  int found = 0;
  ForEachLine(text, [&](std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    std::string_view key = line.substr(0, colon);
    std::string_view value = strings::Strip(line.substr(colon + 1));
    if (key == "rchar") {
      ToU64(value, &out->rchar);
    } else if (key == "wchar") {
      ToU64(value, &out->wchar);
    } else if (key == "syscr") {
      found += ToU64(value, &out->syscr) ? 1 : 0;
    } else if (key == "syscw") {
      found += ToU64(value, &out->syscw) ? 1 : 0;
    } else if (key == "read_bytes") {
      found += ToU64(value, &out->read_bytes) ? 1 : 0;
    } else if (key == "write_bytes") {
      found += ToU64(value, &out->write_bytes) ? 1 : 0;
    }
  });
  if (found < 4) return absl::InvalidArgumentError("io: missing counters");
  return absl::OkStatus();
}

absl::Status ParseSchedStat(std::string_view text, SchedStatFields* out) {
  *out = SchedStatFields{};
  if (!ToU64(NextToken(&text), &out->exec_runtime_ns) || !ToU64(NextToken(&text), &out->run_delay_ns) ||
      !ToU64(NextToken(&text), &out->timeslices)) {
    return absl::InvalidArgumentError("schedstat: expected three numbers");
  }
  return absl::OkStatus();
}

bool ParseCmdline(std::string_view raw, size_t max_args, std::vector<std::string>* args) {
  size_t count = 0;
  bool truncated = false;
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw[pos] == '\0') {
      ++pos;
      continue;
    }
    size_t end = raw.find('\0', pos);
    if (end == std::string_view::npos) end = raw.size();
    if (count == max_args) {
      truncated = true;
      break;
    }
    std::string_view piece = raw.substr(pos, end - pos);
    if (count < args->size()) {
      (*args)[count].assign(piece.data(), piece.size());  // reuses the string's capacity
    } else {
      args->emplace_back(piece);
    }
    ++count;
    pos = end;
  }
  args->resize(count);
  return truncated;
}

absl::Status ParseSystemStat(std::string_view text, SystemStat* out) {
  *out = SystemStat{};
  bool have_cpu = false;
  bool have_btime = false;
  bool malformed = false;
  ForEachLine(text, [&](std::string_view line) {
    if (line.starts_with("cpu ")) {
      std::string_view rest = line.substr(4);
      uint64_t* columns[] = {&out->cpu.user,   &out->cpu.nice,      &out->cpu.system,  &out->cpu.idle,
                             &out->cpu.iowait, &out->cpu.irq,       &out->cpu.softirq, &out->cpu.steal,
                             &out->cpu.guest,  &out->cpu.guest_nice};
      int parsed = 0;
      for (uint64_t* column : columns) {
        std::string_view token = NextToken(&rest);
        if (token.empty()) break;  // old kernels print fewer columns
        if (!ToU64(token, column)) {
          malformed = true;
          return;
        }
        ++parsed;
      }
      have_cpu = parsed >= 4;
    } else if (line.starts_with("cpu") && line.size() > 3 && line[3] >= '0' && line[3] <= '9') {
      ++out->num_cpus;
    } else if (line.starts_with("btime ")) {
      have_btime = ToI64(strings::Strip(line.substr(6)), &out->boot_time_s);
    }
  });
  if (malformed || !have_cpu) return absl::InvalidArgumentError("/proc/stat: no aggregate cpu line");
  if (!have_btime) return absl::InvalidArgumentError("/proc/stat: no btime");
  if (out->num_cpus == 0) out->num_cpus = 1;
  return absl::OkStatus();
}

}  // namespace dogwatch::process
