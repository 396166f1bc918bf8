// process-agent: live processes and containers. Runs the process and container checks on their
// intervals, and the real-time ones while the intake's ResCollector replies ask for them, and hands
// each framed message to the core's Submit (TRACK_PROCESSES); `process-agent check <name>` prints
// one collection without a core.

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/config/config.h"
#include "common/core_client/core_client.h"
#include "common/log/log.h"
#include "common/strings/strings.h"
#include "common/subagent/subagent.h"
#include "google/protobuf/util/json_util.h"
#include "process-agent/checks/checks.h"
#include "process-agent/checks/connections_check.h"
#include "process-agent/payload/collector_reply.h"
#include "process-agent/sysprobe_stats.h"

extern char** environ;

namespace {

namespace pb = datadog::process_agent;
using dogwatch::process::CheckKind;
using dogwatch::process::CheckName;
using dogwatch::process::IsRealTime;

// The collector keeps per-process files open between collections within half the soft
// RLIMIT_NOFILE: raise the soft limit to the hard one, as the Go runtime does for Datadog's agent.
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &limit);
  }
}

bool Exists(const std::string& path) { return !path.empty() && access(path.c_str(), F_OK) == 0; }

// container_runtime_socket (or DOCKER_HOST's unix:// form); unset: the first of the usual
// sockets that exists. The same resolution as the core's tagger.
std::string RuntimeSocket(const dogwatch::config::Config& config) {
  std::string socket = config.GetString("container_runtime_socket");
  if (socket.starts_with("unix://")) socket = socket.substr(7);
  if (!socket.empty()) return socket;
  for (const char* candidate : {"/var/run/docker.sock", "/run/podman/podman.sock"}) {
    if (Exists(candidate)) return candidate;
  }
  return "";
}

dogwatch::process::ChecksOptions OptionsFromConfig(const dogwatch::config::Config& config) {
  dogwatch::process::ChecksOptions options;
  options.hostname = dogwatch::config::ResolveHostname(config);
  options.agent_version = DOGWATCH_VERSION;
  options.agent_start_time_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  options.agent_pid = getpid();
  options.proc_root = config.GetString("container_proc_root");
  options.cgroup_root = config.GetString("container_cgroup_root");
  options.collect_containers = true;  // the process check attaches containers to its messages too
  options.runtime_socket = RuntimeSocket(config);
  for (const auto& [label, tags] : config.GetStringListMap("container_labels_as_tags")) {
    if (!tags.empty()) options.labels_as_tags[label] = tags.front();
  }
  options.scrub.enabled = config.GetBool("process_config.scrub_args");
  options.scrub.custom_sensitive_words = config.GetStringList("process_config.custom_sensitive_words");
  options.scrub.strip_arguments = config.GetBool("process_config.strip_proc_arguments");
  options.limits.max_per_message = dogwatch::process::EffectiveMaxPerMessage(
      static_cast<int>(config.GetInt("process_config.max_per_message")));
  options.limits.max_message_bytes =
      dogwatch::process::EffectiveMaxMessageBytes(config.GetInt("process_config.max_message_bytes"));
  // Sidecar mode (EKS Fargate): the backend needs the host type to resolve host-less payloads.
  // What /proc and the cgroups show (the pod's processes and containers) is reported as is.
  if (config.GetBool("eks_fargate")) options.container_host_type = pb::fargateEKS;
  return options;
}

// Sidecar mode: with eks_fargate (EKS Fargate, Cloud Run), or when this process sits in a PID
// namespace below the host's so /proc shows only its pod's processes (shareProcessNamespace), there
// is no host to describe: the agent reports what the pod shows and nothing host-level (no
// system-probe connections, no privileged stats of host processes). Returns why, or "" on a host.
std::string SidecarReason(const dogwatch::config::Config& config) {
  if (config.GetBool("eks_fargate")) return "eks_fargate";
  // With the host's /proc mounted in (container_proc_root), the host is visible whatever our own
  // namespace: not a sidecar.
  if (config.GetString("container_proc_root") != "/proc") return "";
  // The kernel's threads live in the host's PID namespace, with kthreadd as pid 2: a /proc whose
  // pid 2 is anything else (or nothing) belongs to a nested namespace that shows only its own
  // processes. (NSpid cannot tell: a /proc mounted in that namespace lists only its own levels.)
  std::ifstream comm("/proc/2/comm");
  std::string name;
  if (!std::getline(comm, name) || name != "kthreadd")
    return "pid namespace (only the pod's processes are visible)";
  return "";
}

// ---------------------------------------------------------------------------------------------
// `process-agent check`

std::string Truncate(std::string_view text, size_t width) {
  return std::string(text.size() > width ? text.substr(0, width) : text);
}

std::string CommandLine(const pb::Command& command) {
  std::string out;
  for (const auto& arg : command.args()) dogwatch::strings::AppendTo(&out, out.empty() ? "" : " ", arg);
  return out;
}

void PrintHuman(const dogwatch::process::CheckRun& run) {
  std::printf("%s check: %zu processes, %zu containers, %zu message(s), %zu bytes framed\n",
              std::string(CheckName(run.kind)).c_str(), run.processes, run.containers, run.messages.size(),
              [&] {
                size_t bytes = 0;
                for (const auto& payload : run.payloads) bytes += payload.body.size();
                return bytes;
              }());
  auto print_container = [](const pb::Container& c) {
    std::string tags;
    for (const auto& tag : c.tags()) dogwatch::strings::AppendTo(&tags, tags.empty() ? "" : ",", tag);
    std::printf(
        "  container %-12s %-8s %-9s cpu %6.1f%% (limit %6.1f%%) mem %8.1f MiB (limit %s) threads %lu tags "
        "%s\n",
        Truncate(c.id(), 12).c_str(), c.type().c_str(), pb::ContainerState_Name(c.state()).c_str(),
        c.totalpct(), c.cpulimit(), static_cast<double>(c.memusage()) / 1048576.0,
        c.memorylimit() ? dogwatch::strings::Cat(c.memorylimit() / 1048576, " MiB").c_str() : "none",
        static_cast<unsigned long>(c.threadcount()), tags.c_str());
  };
  auto print_container_stat = [](const pb::ContainerStat& c) {
    std::printf("  container %-12s %-9s cpu %6.1f%% (limit %6.1f%%) mem %8.1f MiB rbps %.0f wbps %.0f\n",
                Truncate(c.id(), 12).c_str(), pb::ContainerState_Name(c.state()).c_str(), c.totalpct(),
                c.cpulimit(), static_cast<double>(c.memusage()) / 1048576.0, c.rbps(), c.wbps());
  };
  for (const auto& message : run.messages) {
    if (const auto* proc = dynamic_cast<const pb::CollectorProc*>(message.get())) {
      std::printf("message group %d/%d: %d processes, %d containers\n", proc->groupid(), proc->groupsize(),
                  proc->processes_size(), proc->containers_size());
      std::printf("  %7s %7s %-10s %-2s %6s %9s %5s %-12s %s\n", "PID", "PPID", "USER", "S", "CPU%",
                  "RSS(KiB)", "FDS", "CONTAINER", "COMMAND");
      for (const auto& p : proc->processes()) {
        std::printf("  %7d %7d %-10s %-2s %6.1f %9lu %5d %-12s %s\n", p.pid(), p.command().ppid(),
                    Truncate(p.user().name(), 10).c_str(), pb::ProcessState_Name(p.state()).c_str(),
                    p.cpu().totalpct(), static_cast<unsigned long>(p.memory().rss() / 1024), p.openfdcount(),
                    Truncate(p.containerid(), 12).c_str(), Truncate(CommandLine(p.command()), 120).c_str());
      }
      for (const auto& c : proc->containers()) print_container(c);
    } else if (const auto* ctr = dynamic_cast<const pb::CollectorContainer*>(message.get())) {
      std::printf("message group %d/%d: %d containers\n", ctr->groupid(), ctr->groupsize(),
                  ctr->containers_size());
      for (const auto& c : ctr->containers()) print_container(c);
    } else if (const auto* rt = dynamic_cast<const pb::CollectorRealTime*>(message.get())) {
      std::printf("message group %d/%d: %d process stats, %d container stats\n", rt->groupid(),
                  rt->groupsize(), rt->stats_size(), rt->containerstats_size());
      std::printf("  %7s %-2s %6s %9s %5s %s\n", "PID", "S", "CPU%", "RSS(KiB)", "THR", "CONTAINER");
      for (const auto& s : rt->stats()) {
        std::printf("  %7d %-2s %6.1f %9lu %5d %s\n", s.pid(),
                    pb::ProcessState_Name(s.processstate()).c_str(), s.cpu().totalpct(),
                    static_cast<unsigned long>(s.memory().rss() / 1024), s.threads(),
                    Truncate(s.containerid(), 12).c_str());
      }
      for (const auto& c : rt->containerstats()) print_container_stat(c);
    } else if (const auto* crt = dynamic_cast<const pb::CollectorContainerRealTime*>(message.get())) {
      std::printf("message group %d/%d: %d container stats\n", crt->groupid(), crt->groupsize(),
                  crt->stats_size());
      for (const auto& c : crt->stats()) print_container_stat(c);
    }
  }
}

int PrintJson(const dogwatch::process::CheckRun& run) {
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  std::string out = dogwatch::strings::Cat(
      "{\"check\":\"", CheckName(run.kind), "\",\"type\":\"",
      dogwatch::process::MessageTypeName(static_cast<uint8_t>(dogwatch::process::CheckMessageType(run.kind))),
      "\",\"messages\":[");
  for (size_t i = 0; i < run.messages.size(); ++i) {
    std::string json;
    auto status = google::protobuf::util::MessageToJsonString(*run.messages[i], &json, json_options);
    if (!status.ok()) {
      std::fprintf(stderr, "process-agent check: %s\n", std::string(status.message()).c_str());
      return 1;
    }
    dogwatch::strings::AppendTo(&out, i ? "," : "", json);
  }
  out += "]}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int CheckCommand(int argc, char** argv) {
  std::string config_path;
  std::string name;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "check") {
      continue;
    } else if (name.empty() && !arg.starts_with("-")) {
      name = arg;
    } else {
      std::fprintf(stderr, "process-agent check: unexpected argument '%s'\n", arg.c_str());
      return 2;
    }
  }
  auto kind = dogwatch::process::ParseCheckKind(name);
  if (!kind) {
    std::fprintf(stderr,
                 "usage: process-agent [-c PATH] check process|container|rtprocess|rtcontainer [--json]\n"
                 "Runs one collection (two, 1 s apart, so rates are real) and prints it; needs no core.\n");
    return 2;
  }
  (void)dogwatch::log::Init("process-agent", "warn");
  dogwatch::config::LoadOptions load;
  load.file_path = config_path;
  load.file_required = !config_path.empty();
  load.environment = environ;
  auto config = dogwatch::config::Config::Load(load);
  if (!config.ok()) {
    std::fprintf(stderr, "process-agent check: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  // No core: container tags are computed here from the runtime's metadata (tag_lookup unset).
  dogwatch::process::Checks checks(OptionsFromConfig(*config));
  (void)checks.Start();
  if (auto first = checks.Run(*kind); !first.ok()) {
    std::fprintf(stderr, "process-agent check: %s\n", std::string(first.status().message()).c_str());
    return 1;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto run = checks.Run(*kind);
  checks.Stop();
  if (!run.ok()) {
    std::fprintf(stderr, "process-agent check: %s\n", std::string(run.status().message()).c_str());
    return 1;
  }
  if (json) return PrintJson(*run);
  PrintHuman(*run);
  return 0;
}

// True when the first argument that is not an option (or -c's value) is `check`.
bool IsCheckCommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-c" || arg == "--config") {
      ++i;
      continue;
    }
    if (arg.starts_with("-")) continue;
    return arg == "check";
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// The running agent.

struct Scheduled {
  CheckKind kind;
  std::chrono::milliseconds interval;  // the configured one; real-time checks may follow the intake's
  std::chrono::steady_clock::time_point next;
};

// How long a submission waits for the intake's ResCollector. It holds up the scheduling loop, so it
// is short and asked for once per check run (every payload of a run gets the same answer).
constexpr auto kReplyTimeout = std::chrono::milliseconds(2000);

absl::StatusOr<dogwatch::core::SubmitResponse> Submit(dogwatch::core_client::CoreClient& core,
                                                      const dogwatch::process::EncodedPayload& payload,
                                                      bool want_reply) {
  dogwatch::core::SubmitRequest request;
  request.set_track(dogwatch::core::TRACK_PROCESSES);
  request.set_path(payload.path);
  request.set_origin("process-agent");
  for (const auto& [name, value] : payload.headers) {
    auto* header = request.add_headers();
    header->set_name(name);
    header->set_value(value);
  }
  request.set_body(payload.body);
  if (want_reply) request.set_reply_timeout_ms(static_cast<uint32_t>(kReplyTimeout.count()));
  return core.Submit(
      request, absl::Seconds(10) + (want_reply ? absl::FromChrono(kReplyTimeout) : absl::ZeroDuration()));
}

// The real-time switch and what the intake's replies did, shared with the status reporter thread.
struct RealTimeState {
  explicit RealTimeState(dogwatch::process::RealTimeSwitch::Options options) : rt(options) {}
  std::mutex mu;
  dogwatch::process::RealTimeSwitch rt;
  int64_t replies = 0;        // ResCollector statuses read
  int64_t reply_errors = 0;   // replies that were not 2xx or did not decode
  int64_t reply_missing = 0;  // submissions that asked and got no reply in time
  int64_t switches = 0;       // real time turned on or off
};

absl::Status Run(dogwatch::subagent::Context& ctx) {
  const auto& config = ctx.config;
  auto logger = dogwatch::log::Get("process-agent");
  dogwatch::process::ChecksOptions options = OptionsFromConfig(config);
  auto& core = ctx.core;
  options.tag_lookup = [&core](const std::string& container_id) -> absl::StatusOr<std::vector<std::string>> {
    dogwatch::core::TaggerLookupRequest request;
    request.set_container_id(container_id);
    request.set_cardinality("high");
    auto answer = core.TaggerLookup(request, absl::Seconds(2));
    if (!answer.ok()) return answer.status();
    return std::vector<std::string>(answer->tags().begin(), answer->tags().end());
  };
  const std::string sidecar = SidecarReason(config);
  if (!sidecar.empty()) logger->info("sidecar mode: {}", sidecar);
  // IO and fd counts of other users' processes from system-probe, when it runs (root needs none).
  // A sidecar has no system-probe: it reports what its own user can read.
  auto sysprobe = std::make_shared<dogwatch::process::SysprobeStatsClient>(
      config.GetString("system_probe_config.sysprobe_socket"), absl::Seconds(2));
  if (sidecar.empty()) {
    options.privileged_stats = [sysprobe](const std::vector<int32_t>& pids) { return sysprobe->Get(pids); };
    options.privileged_stats_name = sysprobe->Name();
  }
  dogwatch::process::Checks checks(options);
  (void)checks.Start();

  const bool processes = config.GetBool("process_config.process_collection.enabled");
  const bool containers = config.GetBool("process_config.container_collection.enabled") &&
                          (checks.runtime_configured() || checks.cgroups_present());
  // Datadog runs the real-time checks only while the intake's ResCollector reply says
  // activeClients > 0 (someone watches the live view); realtime_always runs them regardless.
  auto seconds = [&](const char* key) { return std::chrono::milliseconds(config.GetInt(key) * 1000); };
  dogwatch::process::RealTimeSwitch::Options rt_options;
  rt_options.disabled = config.GetBool("process_config.disable_realtime_checks");
  rt_options.always = config.GetBool("process_config.realtime_always");
  rt_options.default_interval =
      std::chrono::seconds(config.GetInt("process_config.intervals.process_realtime"));
  RealTimeState rt_state(rt_options);

  const auto now = std::chrono::steady_clock::now();
  std::vector<Scheduled> schedule;
  if (processes) {
    // Datadog's process check sends nothing on its first run (no CPU deltas yet): warm up now.
    (void)checks.Run(CheckKind::kProcess);
    schedule.push_back({CheckKind::kProcess, seconds("process_config.intervals.process"),
                        now + seconds("process_config.intervals.process")});
    if (!rt_options.disabled) {
      schedule.push_back({CheckKind::kRealTimeProcess, seconds("process_config.intervals.process_realtime"),
                          now + seconds("process_config.intervals.process_realtime")});
    }
  }
  if (containers) {
    schedule.push_back({CheckKind::kContainer, seconds("process_config.intervals.container"), now});
    if (!rt_options.disabled) {
      schedule.push_back({CheckKind::kRealTimeContainer,
                          seconds("process_config.intervals.container_realtime"),
                          now + seconds("process_config.intervals.container_realtime")});
    }
  }
  std::string scheduled_names;
  for (const auto& s : schedule)
    dogwatch::strings::AppendTo(&scheduled_names, scheduled_names.empty() ? "" : ",", CheckName(s.kind), "/",
                                s.interval.count() / 1000, "s", IsRealTime(s.kind) ? " (real time)" : "");
  if (scheduled_names.empty()) scheduled_names = "(none)";
  logger->info("checks: {}; runtime {}", scheduled_names,
               options.runtime_socket.empty() ? "(none)" : options.runtime_socket);

  // The connections check runs on its own thread and timer: its system-probe call and submissions
  // never delay the process and container checks.
  std::unique_ptr<dogwatch::process::ConnectionsCheck> connections;
  std::thread connections_thread;
  if (config.GetBool("network_config.enabled") && !sidecar.empty()) {
    logger->info("connections check off in sidecar mode: network flows are a host-level view");
  } else if (config.GetBool("network_config.enabled")) {
    dogwatch::process::ConnectionsCheckOptions connections_options;
    connections_options.sysprobe_socket = config.GetString("system_probe_config.sysprobe_socket");
    connections_options.hostname = options.hostname;
    connections_options.agent_version = options.agent_version;
    connections_options.agent_start_time_s = options.agent_start_time_s;
    connections_options.agent_pid = options.agent_pid;
    connections_options.proc_root = options.proc_root;
    connections_options.container_host_type = options.container_host_type;
    connections = std::make_unique<dogwatch::process::ConnectionsCheck>(connections_options);
    const auto interval = std::chrono::seconds(config.GetInt("process_config.intervals.connections"));
    scheduled_names += dogwatch::strings::Cat(",connections/", interval.count(), "s");
    logger->info("connections check every {}s from system-probe at {}", interval.count(),
                 connections_options.sysprobe_socket);
    connections_thread = std::thread([&ctx, &core, &connections, logger, interval] {
      dogwatch::log::RateLimiter errors_log(std::chrono::seconds(60));
      // The first run registers this client with system-probe; deltas start from there.
      while (!ctx.shutdown.Requested()) {
        auto run = connections->Run();
        uint64_t suppressed = 0;
        if (!run.ok()) {
          if (errors_log.Allow(&suppressed))
            logger->warn("connections check: {} ({} more suppressed)", run.status().message(), suppressed);
        } else {
          for (const auto& payload : run->payloads) {
            auto submitted = Submit(core, payload, false);
            connections->RecordSubmit(submitted.status());
            if (!submitted.ok() && errors_log.Allow(&suppressed))
              logger->warn("connections check: submit to the core: {} ({} more suppressed)",
                           submitted.status().message(), suppressed);
          }
        }
        if (ctx.shutdown.WaitFor(std::chrono::duration_cast<std::chrono::milliseconds>(interval))) break;
      }
    });
  }

  ctx.set_reporter(
      [&checks, &rt_state, &connections, scheduled_names, sidecar](dogwatch::core::ComponentStatus* status) {
        auto& counters = *status->mutable_counters();
        for (const auto& [name, value] : checks.Counters()) counters[name] = value;
        if (connections != nullptr) {
          for (const auto& [name, value] : connections->Counters()) counters[name] = value;
        }
        auto& info = *status->mutable_info();
        for (const auto& [name, value] : checks.Info()) info[name] = value;
        info["checks"] = scheduled_names;
        info["mode"] = sidecar.empty() ? "host" : "sidecar: " + sidecar;
        std::lock_guard<std::mutex> lock(rt_state.mu);
        info["realtime"] = rt_state.rt.Describe();
        counters["realtime_enabled"] = rt_state.rt.enabled() ? 1 : 0;
        counters["realtime_active_clients"] = rt_state.rt.active_clients();
        counters["intake_replies"] = rt_state.replies;
        counters["intake_reply_errors"] = rt_state.reply_errors;
        counters["intake_reply_missing"] = rt_state.reply_missing;
        counters["realtime_switches"] = rt_state.switches;
      });

  dogwatch::log::RateLimiter submit_errors_log(std::chrono::seconds(60));
  dogwatch::log::RateLimiter reply_errors_log(std::chrono::seconds(60));
  // Reads the intake's replies to one submission into the switch; logs when real time flips.
  auto take_replies = [&](const dogwatch::core::SubmitResponse& response) {
    std::vector<dogwatch::process::CollectorStatus> statuses;
    std::lock_guard<std::mutex> lock(rt_state.mu);
    if (response.replies().empty()) ++rt_state.reply_missing;
    for (const auto& reply : response.replies()) {
      absl::StatusOr<dogwatch::process::CollectorStatus> status =
          reply.status_code() >= 200 && reply.status_code() < 300
              ? dogwatch::process::DecodeCollectorReply(reply.body())
              : absl::UnavailableError(dogwatch::strings::Cat("HTTP ", reply.status_code()));
      if (status.ok()) {
        ++rt_state.replies;
        statuses.push_back(*status);
        continue;
      }
      ++rt_state.reply_errors;
      uint64_t suppressed = 0;
      if (reply_errors_log.Allow(&suppressed))
        logger->warn("intake reply from {}: {} ({} more suppressed)", reply.destination(),
                     status.status().message(), suppressed);
    }
    if (rt_state.rt.Update(statuses, std::chrono::steady_clock::now())) {
      ++rt_state.switches;
      logger->info("real-time mode {}", rt_state.rt.Describe());
    }
  };

  while (!ctx.shutdown.Requested() && !schedule.empty()) {
    auto due = std::min_element(schedule.begin(), schedule.end(),
                                [](const Scheduled& a, const Scheduled& b) { return a.next < b.next; });
    auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(due->next - std::chrono::steady_clock::now());
    if (wait.count() > 0 && ctx.shutdown.WaitFor(wait)) break;
    bool rt_on = false;
    bool want_reply = false;
    std::chrono::milliseconds interval = due->interval;
    {
      std::lock_guard<std::mutex> lock(rt_state.mu);
      if (rt_state.rt.Expire(std::chrono::steady_clock::now())) {
        ++rt_state.switches;
        logger->warn("real-time mode {}", rt_state.rt.Describe());
      }
      rt_on = rt_state.rt.enabled();
      want_reply = rt_state.rt.wants_replies();
      if (IsRealTime(due->kind) && rt_state.rt.interval_from_intake()) interval = rt_state.rt.interval();
    }
    // Real-time checks run only while the RealTimeSwitch is on.
    if (!IsRealTime(due->kind) || rt_on) {
      auto run = checks.Run(due->kind);
      if (!run.ok()) {
        logger->warn("{} check: {}", CheckName(due->kind), run.status().message());
      } else {
        for (const auto& payload : run->payloads) {
          auto submitted = Submit(core, payload, want_reply);
          checks.RecordSubmit(due->kind, payload, submitted.status());
          if (submitted.ok() && want_reply) take_replies(*submitted);
          want_reply = false;
          uint64_t suppressed = 0;
          if (!submitted.ok() && submit_errors_log.Allow(&suppressed))
            logger->warn("{} check: submit to the core: {} ({} more suppressed)", CheckName(due->kind),
                         submitted.status().message(), suppressed);
        }
      }
      // A run allocates a few MiB (the process table, messages, compressed bodies) and frees it all;
      // glibc keeps freed heap pages resident until the top of the heap is free. Handing them back
      // now keeps the steady-state RSS at what the agent holds between runs. A skipped real-time
      // tick allocated nothing, so it has nothing to hand back.
      (void)malloc_trim(0);
    }
    due->next += interval;
    // A run longer than the interval (or a suspended host) skips ticks instead of bursting.
    if (due->next < std::chrono::steady_clock::now()) due->next = std::chrono::steady_clock::now() + interval;
  }
  if (schedule.empty()) ctx.shutdown.Wait();
  if (connections_thread.joinable()) connections_thread.join();
  checks.Stop();
  return absl::OkStatus();
}

// glibc gives each thread that allocates its own arena (up to 8 per core), and memory freed in
// one arena is never reused by another: the gRPC, status, config-watch and runtime-events threads
// each kept a few hundred KiB of mostly free heap resident. Allocation here is not contended (one
// scheduling thread does nearly all of it), so two arenas cost nothing. A GLIBC_TUNABLES setting
// (glibc.malloc.arena_max) from the environment is left to win.
void LimitMallocArenas() {
  if (std::getenv("GLIBC_TUNABLES") == nullptr) (void)mallopt(M_ARENA_MAX, 2);
}

}  // namespace

int main(int argc, char** argv) {
  LimitMallocArenas();
  RaiseOpenFileLimit();
  if (IsCheckCommand(argc, argv)) return CheckCommand(argc, argv);
  dogwatch::subagent::Spec spec;
  spec.name = "process-agent";
  spec.summary =
      "dogwatch process-agent: live processes and containers.\n"
      "`process-agent [-c PATH] check process|container|rtprocess|rtcontainer [--json]` prints one "
      "collection.";
  spec.enabled = [](const dogwatch::config::Config& config, std::string* why) {
    *why =
        "process_config.process_collection.enabled and network_config.enabled are false and no container "
        "runtime was found for process_config.container_collection.enabled";
    if (config.GetBool("process_config.process_collection.enabled")) return true;
    // The connections check needs only system-probe (network_config.enabled, as in Datadog).
    if (config.GetBool("network_config.enabled")) return true;
    // Containers alone need a runtime: every Linux host has cgroups, not every host has containers.
    return config.GetBool("process_config.container_collection.enabled") && !RuntimeSocket(config).empty();
  };
  spec.run = Run;
  return dogwatch::subagent::Main(spec, argc, argv);
}
