#include "process-agent/sysprobe_stats.h"

#include <sys/stat.h>

#include <algorithm>
#include <limits>

#include "common/ipc/grpc_server.h"
#include "common/strings/strings.h"
#include "dogwatch/sysprobe.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace dogwatch::process {

namespace {
// A reply for 10000 pids is ~40 bytes each: well under this.
constexpr size_t kMaxMessageBytes = 4 * 1024 * 1024;
}  // namespace

SysprobeStatsClient::SysprobeStatsClient(std::string socket_path, absl::Duration timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

SysprobeStatsClient::~SysprobeStatsClient() = default;

std::string SysprobeStatsClient::Name() const { return strings::Cat("system-probe (", socket_path_, ")"); }

absl::StatusOr<std::vector<PrivilegedStat>> SysprobeStatsClient::Get(const std::vector<int32_t>& pids) {
  struct stat st {};
  if (socket_path_.empty() || ::stat(socket_path_.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return absl::UnavailableError(
        strings::Cat("system-probe is not running (no socket at ", socket_path_, ")"));
  }
  std::shared_ptr<grpc::Channel> channel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (channel_ == nullptr) channel_ = ipc::CreateUnixChannel(socket_path_, kMaxMessageBytes);
    channel = channel_;
  }
  auto stub = sysprobe::SystemProbe::NewStub(channel);
  sysprobe::ProcessStatsRequest request;
  request.mutable_pids()->Reserve(static_cast<int>(pids.size()));
  for (int32_t pid : pids) request.add_pids(pid);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout_)));
  sysprobe::ProcessStatsResponse response;
  grpc::Status status = stub->GetProcessStats(&context, request, &response);
  if (!status.ok()) {
    return absl::UnavailableError(strings::Cat("system-probe GetProcessStats: ", status.error_message()));
  }
  std::vector<PrivilegedStat> out;
  out.reserve(std::min<size_t>(pids.size(), static_cast<size_t>(response.stats_size())));
  for (const auto& stat : response.stats()) {
    if (out.size() >= pids.size()) break;  // never more than asked, whatever the peer sends
    PrivilegedStat entry;
    entry.pid = stat.pid();
    entry.read_bytes = stat.read_bytes();
    entry.write_bytes = stat.write_bytes();
    entry.read_count = stat.read_count();
    entry.write_count = stat.write_count();
    entry.open_fds =
        static_cast<int32_t>(std::min<uint64_t>(stat.open_fds(), std::numeric_limits<int32_t>::max()));
    out.push_back(entry);
  }
  return out;
}

}  // namespace dogwatch::process
