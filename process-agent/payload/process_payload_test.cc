#include <google/protobuf/util/message_differencer.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/compression/compression.h"
#include "datadog/process/agent.pb.h"
#include "process-agent/payload/chunking.h"
#include "process-agent/payload/collector_reply.h"
#include "process-agent/payload/message.h"
#include "process-agent/payload/request_headers.h"

namespace dogwatch::process {
namespace {

namespace pa = datadog::process_agent;
using google::protobuf::util::MessageDifferencer;

pa::Process MakeProcess(int32_t pid, const std::string& container_id = "", size_t arg_bytes = 0) {
  pa::Process process;
  process.set_pid(pid);
  process.set_nspid(pid);
  process.set_createtime(1700000000000 + pid);
  process.set_state(pa::S);
  process.set_containerid(container_id);
  process.set_openfdcount(12);
  pa::Command* command = process.mutable_command();
  command->add_args("/usr/bin/worker");
  command->add_args("--id=" + std::to_string(pid));
  if (arg_bytes > 0) command->add_args(std::string(arg_bytes, 'x'));
  command->set_exe("/usr/bin/worker");
  command->set_cwd("/srv");
  command->set_ppid(1);
  pa::ProcessUser* user = process.mutable_user();
  user->set_name("www-data");
  user->set_uid(33);
  user->set_gid(33);
  pa::MemoryStat* memory = process.mutable_memory();
  memory->set_rss(10 << 20);
  memory->set_vms(100 << 20);
  pa::CPUStat* cpu = process.mutable_cpu();
  cpu->set_lastcpu("cpu");
  cpu->set_totalpct(1.5F);
  cpu->set_userpct(1.0F);
  cpu->set_systempct(0.5F);
  cpu->set_numthreads(4);
  process.mutable_iostat()->set_readrate(3.0F);
  return process;
}

pa::Container MakeContainer(const std::string& id) {
  pa::Container container;
  container.set_type("docker");
  container.set_id(id);
  container.set_state(pa::running);
  container.set_health(pa::healthy);
  container.set_cpulimit(2.0F);
  container.set_memorylimit(512ull << 20);
  container.set_created(1700000000);
  container.set_started(1700000001);
  container.add_tags("image_name:nginx");
  container.add_tags("container_id:" + id);
  pa::ContainerAddr* addr = container.add_addresses();
  addr->set_ip("10.0.0.2");
  addr->set_port(80);
  addr->set_protocol(pa::tcp);
  container.set_memusage(1234);
  container.set_memaccounted(999);
  return container;
}

BatchContext MakeContext(int32_t group_id = 4242) {
  BatchContext context;
  context.hostname = "web-1";
  context.network_id = "vpc-123";
  context.group_id = group_id;
  context.info.set_uuid("0b8a7f5e");
  context.info.set_totalmemory(8ll << 30);
  pa::OSInfo* os = context.info.mutable_os();
  os->set_name("linux");
  os->set_platform("debian");
  os->set_kernelversion("6.1.0");
  for (int i = 0; i < 4; ++i) {
    pa::CPUInfo* cpu = context.info.add_cpus();
    cpu->set_number(i);
    cpu->set_vendor("GenuineIntel");
    cpu->set_mhz(2400);
  }
  return context;
}

std::vector<pa::Process> HostProcesses(int count, int32_t first_pid = 1000) {
  std::vector<pa::Process> processes;
  for (int i = 0; i < count; ++i) processes.push_back(MakeProcess(first_pid + i));
  return processes;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::string DecodeError(std::string_view message, const DecodeLimits& limits = {}) {
  absl::StatusOr<DecodedMessage> decoded = DecodeMessage(message, limits);
  REQUIRE_FALSE(decoded.ok());
  return std::string(decoded.status().message());
}

TEST_CASE("V3 header bytes are little-endian and exact") {
  MessageHeader header;
  header.encoding = 4;
  header.type = 12;
  header.subscription_id = 7;
  header.org_id = 0x01020304;
  header.timestamp_ms = 0x0102030405060708;
  CHECK(Hex(EncodeHeaderV3(header)) ==
        "03040c07"
        "04030201"
        "0807060504030201");

  header.org_id = -2;
  header.timestamp_ms = 1700000000123;
  CHECK(Hex(EncodeHeaderV3(header)) ==
        "03040c07"
        "feffffff"
        "7b68e5cf8b010000");
}

TEST_CASE("EncodeMessage frames a CollectorProc that decodes back to the same message") {
  Batch<pa::CollectorProc> batch =
      ChunkProcesses({MakeProcess(1), MakeProcess(2, "abc")}, {MakeContainer("abc")}, MakeContext());
  REQUIRE(batch.messages.size() == 1);
  const pa::CollectorProc& original = batch.messages[0];

  absl::StatusOr<std::string> framed = EncodeMessage(MessageType::kCollectorProc, original, 1700000000123);
  REQUIRE(framed.ok());
  // Header: V3, zstd 1.x protobuf, CollectorProc, no subscription, org 0, then the timestamp.
  CHECK(Hex(framed->substr(0, 16)) ==
        "03040c00"
        "00000000"
        "7b68e5cf8b010000");
  // The body is a zstd frame.
  CHECK(Hex(framed->substr(16, 4)) == "28b52ffd");

  absl::StatusOr<DecodedMessage> decoded = DecodeMessage(*framed);
  REQUIRE(decoded.ok());
  CHECK(decoded->header.version == 3);
  CHECK(decoded->header.encoding == 4);
  CHECK(decoded->header.type == 12);
  CHECK(decoded->header.timestamp_ms == 1700000000123);
  CHECK(decoded->header_bytes == 16);
  CHECK(decoded->body == original.SerializeAsString());

  pa::CollectorProc parsed;
  REQUIRE(ParseBody(*decoded, &parsed).ok());
  CHECK(MessageDifferencer::Equals(parsed, original));
  CHECK(parsed.hostname() == "web-1");
  CHECK(parsed.processes(1).containerid() == "abc");
  CHECK(parsed.processes(0).state() == pa::S);
  CHECK(parsed.containers(0).addresses(0).port() == 80);
  CHECK(parsed.info().cpus_size() == 4);

  // Parsing into the wrong message type is refused.
  pa::CollectorContainer wrong;
  absl::Status status = ParseBody(*decoded, &wrong);
  CHECK(status.message() ==
        "process message of type 12 (CollectorProc) does not carry datadog.process_agent.CollectorContainer");
}

std::string Reply(int32_t active_clients, int32_t interval_s, const std::string& message = "") {
  pa::ResCollector reply;
  reply.mutable_header()->set_type(23);
  reply.set_message(message);
  reply.mutable_status()->set_activeclients(active_clients);
  reply.mutable_status()->set_interval(interval_s);
  return *EncodeMessage(MessageType::kResCollector, reply, 5);
}

TEST_CASE("the intake's ResCollector reply decodes to its status, bounded") {
  absl::StatusOr<CollectorStatus> status = DecodeCollectorReply(Reply(2, 4));
  REQUIRE(status.ok());
  CHECK(status->active_clients == 2);
  CHECK(status->interval_s == 4);

  // The local intake's plain-protobuf V3 reply (encoding 0), byte for byte.
  const std::string plain = std::string("\x03\x00\x17\x00", 4) + std::string(12, '\0') +
                            std::string("\x0a\x02\x20\x17\x1a\x04\x08\x01\x10\x02", 10);
  status = DecodeCollectorReply(plain);
  REQUIRE(status.ok());
  CHECK(status->active_clients == 1);
  CHECK(status->interval_s == 2);

  // An error message from the intake is an error, with its text.
  status = DecodeCollectorReply(Reply(1, 2, "invalid api key"));
  REQUIRE_FALSE(status.ok());
  CHECK(std::string(status.status().message()).find("invalid api key") != std::string::npos);

  // Not a ResCollector, not a message at all, too big.
  pa::CollectorProc proc;
  proc.set_hostname("h");
  status = DecodeCollectorReply(*EncodeMessage(MessageType::kCollectorProc, proc, 1));
  REQUIRE_FALSE(status.ok());
  CHECK(std::string(status.status().message()).find("not a ResCollector") != std::string::npos);
  CHECK_FALSE(DecodeCollectorReply("{}").ok());
  CHECK_FALSE(DecodeCollectorReply("").ok());
  CHECK(absl::IsResourceExhausted(
      DecodeCollectorReply(plain + std::string(kMaxCollectorReplyBytes, 'x')).status()));
}

TEST_CASE("real-time turns on while any endpoint has active clients, at the largest interval") {
  using Clock = RealTimeSwitch::Clock;
  RealTimeSwitch::Options options;
  options.default_interval = std::chrono::seconds(2);
  options.stale_after = std::chrono::seconds(60);
  RealTimeSwitch rt(options);
  const Clock::time_point t0 = Clock::now();
  CHECK_FALSE(rt.enabled());
  CHECK(rt.wants_replies());
  CHECK(rt.Describe() == "off (no intake reply yet)");

  CHECK_FALSE(rt.Update({{0, 2}}, t0));
  CHECK_FALSE(rt.enabled());
  CHECK(rt.Describe() == "off (no active clients)");

  CHECK(rt.Update({{0, 2}, {3, 5}}, t0));
  CHECK(rt.enabled());
  CHECK(rt.interval() == std::chrono::seconds(5));
  CHECK(rt.active_clients() == 3);
  CHECK(rt.Describe() == "on (3 active clients), every 5 s");

  // No replies (empty batch) change nothing; an absurd interval is ignored.
  CHECK_FALSE(rt.Update({}, t0 + std::chrono::seconds(1)));
  CHECK_FALSE(rt.Update({{1, 100000}}, t0 + std::chrono::seconds(1)));
  CHECK(rt.interval() == std::chrono::seconds(5));

  // Silence from the intake turns it off after stale_after, not before.
  CHECK_FALSE(rt.Expire(t0 + std::chrono::seconds(30)));
  CHECK(rt.Expire(t0 + std::chrono::seconds(62)));
  CHECK_FALSE(rt.enabled());
  CHECK(rt.Describe() == "off (no intake reply for 60 s)");

  CHECK(rt.Update({{1, 0}}, t0 + std::chrono::seconds(70)));
  CHECK(rt.enabled());
  CHECK(rt.Update({{0, 0}}, t0 + std::chrono::seconds(72)));
  CHECK_FALSE(rt.enabled());
}

TEST_CASE("real-time configuration overrides the intake") {
  RealTimeSwitch::Options always;
  always.always = true;
  RealTimeSwitch on(always);
  CHECK(on.enabled());
  CHECK_FALSE(on.wants_replies());
  CHECK_FALSE(on.Update({{0, 2}}, RealTimeSwitch::Clock::now()));
  CHECK(on.enabled());

  RealTimeSwitch::Options disabled;
  disabled.disabled = true;
  disabled.always = true;
  RealTimeSwitch off(disabled);
  CHECK_FALSE(off.enabled());
  CHECK_FALSE(off.Update({{5, 2}}, RealTimeSwitch::Clock::now()));
  CHECK_FALSE(off.enabled());
  CHECK(off.Describe() == "off (process_config.disable_realtime_checks)");
}

TEST_CASE("ResCollector, real-time and container messages round trip") {
  pa::ResCollector reply;
  reply.mutable_header()->set_type(23);
  reply.set_message("ok");
  reply.mutable_status()->set_activeclients(1);
  reply.mutable_status()->set_interval(2);
  absl::StatusOr<std::string> framed = EncodeMessage(MessageType::kResCollector, reply, 5);
  REQUIRE(framed.ok());
  absl::StatusOr<DecodedMessage> decoded = DecodeMessage(*framed);
  REQUIRE(decoded.ok());
  pa::ResCollector parsed;
  REQUIRE(ParseBody(*decoded, &parsed).ok());
  CHECK(parsed.status().activeclients() == 1);
  CHECK(parsed.status().interval() == 2);
  CHECK(parsed.header().type() == 23);

  pa::CollectorRealTime rt;
  rt.set_hostname("web-1");
  rt.set_numcpus(4);
  pa::ProcessStat* stat = rt.add_stats();
  stat->set_pid(42);
  stat->set_processstate(pa::R);
  stat->mutable_cpu()->set_totalpct(12.5F);
  rt.add_containerstats()->set_id("abc");
  framed = EncodeMessage(MessageType::kCollectorRealTime, rt, 6);
  REQUIRE(framed.ok());
  decoded = DecodeMessage(*framed);
  REQUIRE(decoded.ok());
  pa::CollectorRealTime rt_parsed;
  REQUIRE(ParseBody(*decoded, &rt_parsed).ok());
  CHECK(MessageDifferencer::Equals(rt, rt_parsed));

  pa::CollectorContainerRealTime crt;
  pa::ContainerStat* cstat = crt.add_stats();
  cstat->set_id("abc");
  cstat->set_state(pa::paused);
  cstat->set_memusage(77);
  cstat->set_cpuusagens(1.5F);
  framed = EncodeMessage(MessageType::kCollectorContainerRealTime, crt, 7);
  REQUIRE(framed.ok());
  decoded = DecodeMessage(*framed);
  REQUIRE(decoded.ok());
  CHECK(decoded->header.type == 40);
  pa::CollectorContainerRealTime crt_parsed;
  REQUIRE(ParseBody(*decoded, &crt_parsed).ok());
  CHECK(MessageDifferencer::Equals(crt, crt_parsed));

  CHECK(MessageTypeForBody(crt) == MessageType::kCollectorContainerRealTime);
  CHECK(MessageTypeForBody(pa::Process()) == std::nullopt);
}

TEST_CASE("EncodeMessage refuses a body that does not match the type") {
  absl::StatusOr<std::string> framed =
      EncodeMessage(MessageType::kCollectorContainer, pa::CollectorProc(), 0);
  REQUIRE_FALSE(framed.ok());
  CHECK(framed.status().message() ==
        "message type CollectorContainer carries datadog.process_agent.CollectorContainer, not "
        "datadog.process_agent.CollectorProc");
  framed = EncodeMessage(MessageType::kCollectorConnections, pa::CollectorProc(), 0);
  REQUIRE_FALSE(framed.ok());
  CHECK(framed.status().message() ==
        "message type CollectorConnections carries datadog.process_agent.CollectorConnections, not "
        "datadog.process_agent.CollectorProc");
  // A type dogwatch has no class for (41, CollectorPod) cannot be encoded at all.
  framed = EncodeMessage(static_cast<MessageType>(41), pa::CollectorProc(), 0);
  REQUIRE_FALSE(framed.ok());
  CHECK(framed.status().message().find("has no compiled protobuf to encode") != std::string::npos);
}

TEST_CASE("DecodeMessage accepts V1, V2, plain protobuf and JSON bodies") {
  const std::string proto = "\x12\x05host1";  // CollectorProc.hostName = "host1"
  absl::StatusOr<DecodedMessage> v1 = DecodeMessage(std::string("\x01\x00\x0c\x00", 4) + proto);
  REQUIRE(v1.ok());
  CHECK(v1->header_bytes == 4);
  CHECK(v1->header.org_id == 0);
  CHECK(v1->body == proto);

  absl::StatusOr<DecodedMessage> v2 =
      DecodeMessage(std::string("\x02\x00\x0c\x03\xff\xff\xff\xff", 8) + proto);
  REQUIRE(v2.ok());
  CHECK(v2->header_bytes == 8);
  CHECK(v2->header.subscription_id == 3);
  CHECK(v2->header.org_id == -1);
  pa::CollectorProc parsed;
  REQUIRE(ParseBody(*v2, &parsed).ok());
  CHECK(parsed.hostname() == "host1");

  MessageHeader header;
  header.encoding = 1;
  header.type = 39;
  absl::StatusOr<DecodedMessage> json = DecodeMessage(
      EncodeHeaderV3(header) + R"({"hostName":"h","containers":[{"id":"c1","state":"running"}]})");
  REQUIRE(json.ok());
  pa::CollectorContainer container;
  REQUIRE(ParseBody(*json, &container).ok());
  CHECK(container.hostname() == "h");
  CHECK(container.containers(0).state() == pa::running);
}

TEST_CASE("DecodeMessage rejects bad framing with clear errors") {
  MessageHeader header;
  header.type = 12;
  CHECK(DecodeError("") == "empty process message");
  CHECK(DecodeError(std::string("\x03\x04\x0c\x00\x00", 5)) ==
        "process message of 5 bytes is shorter than its V3 header (16 bytes)");
  CHECK(DecodeError(std::string("\x02\x04\x0c", 3)) ==
        "process message of 3 bytes is shorter than its V2 header (8 bytes)");
  CHECK(DecodeError("\x09xxxxxxxxxxxxxxxxxx") == "unknown process message version 9 (expected 1, 2 or 3)");
  header.encoding = 3;
  CHECK(DecodeError(EncodeHeaderV3(header) + "x") == "unknown process message encoding 3");
  header.encoding = 4;
  CHECK(DecodeError(EncodeHeaderV3(header) + "not zstd")
            .find("process message body (encoding 4): corrupt zstd data") == 0);

  // A zstd bomb stops at the body cap.
  absl::StatusOr<std::string> bomb = compression::ZstdCompress(std::string(8 << 20, '\0'));
  REQUIRE(bomb.ok());
  DecodeLimits limits;
  limits.max_body_bytes = 1 << 20;
  absl::StatusOr<DecodedMessage> decoded = DecodeMessage(EncodeHeaderV3(header) + *bomb, limits);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(decoded.status().message()).find("decompressed size exceeds 1048576 bytes") !=
        std::string::npos);

  limits.max_message_bytes = 20;
  CHECK(DecodeError(EncodeHeaderV3(header) + std::string(5, 'x'), limits) ==
        "process message of 21 bytes exceeds the 20 byte limit");
  header.encoding = 0;
  limits.max_message_bytes = 1000;
  limits.max_body_bytes = 4;
  CHECK(DecodeError(EncodeHeaderV3(header) + std::string(5, 'x'), limits) ==
        "process message body of 5 bytes exceeds 4 bytes");

  // A header that parses but a body that does not.
  absl::StatusOr<DecodedMessage> garbage = DecodeMessage(EncodeHeaderV3(header) + "\xff\xff\xff");
  REQUIRE(garbage.ok());
  pa::CollectorProc proc;
  CHECK(std::string(ParseBody(*garbage, &proc).message())
            .find("invalid datadog.process_agent.CollectorProc protobuf") == 0);
}

TEST_CASE("1,050 host processes at 100 per message make 11 messages of one group") {
  const int32_t group = RandomGroupId();
  CHECK(group >= 0);
  ChunkLimits limits;
  limits.max_per_message = 100;
  Batch<pa::CollectorProc> batch = ChunkProcesses(HostProcesses(1050), {}, MakeContext(group), limits);
  REQUIRE(batch.messages.size() == 11);
  CHECK(batch.stats.items == 1050);
  CHECK(batch.stats.oversized_items == 0);
  CHECK(batch.stats.dropped_items == 0);
  int32_t next_pid = 1000;
  for (size_t i = 0; i < batch.messages.size(); ++i) {
    const pa::CollectorProc& message = batch.messages[i];
    CHECK(message.groupid() == group);
    CHECK(message.groupsize() == 11);
    CHECK(message.hostname() == "web-1");
    CHECK(message.networkid() == "vpc-123");
    CHECK(message.info().os().name() == "linux");
    CHECK(message.processes_size() == (i < 10 ? 100 : 50));
    CHECK(message.containers_size() == 0);
    for (const pa::Process& process : message.processes()) CHECK(process.pid() == next_pid++);
    // Each message frames and decodes.
    absl::StatusOr<std::string> framed = EncodeMessage(MessageType::kCollectorProc, message, 1);
    REQUIRE(framed.ok());
  }
}

TEST_CASE("a byte limit splits messages before the count limit does") {
  ChunkLimits limits;
  limits.max_message_bytes = 100000;
  std::vector<pa::Process> processes;
  for (int i = 0; i < 200; ++i) processes.push_back(MakeProcess(i, "", 4000));
  const size_t one = processes[0].ByteSizeLong();
  REQUIRE(one > 4000);
  Batch<pa::CollectorProc> batch = ChunkProcesses(processes, {}, MakeContext(), limits);
  // 200 processes of ~4.2 KB under 100 KB per message: at least 9 messages although 100 fit by count.
  CHECK(batch.messages.size() >= 9);
  std::set<int32_t> pids;
  for (const pa::CollectorProc& message : batch.messages) {
    CHECK(message.ByteSizeLong() <= 100000);
    CHECK(message.groupsize() == static_cast<int32_t>(batch.messages.size()));
    for (const pa::Process& process : message.processes()) CHECK(pids.insert(process.pid()).second);
  }
  CHECK(pids.size() == 200);
  CHECK(batch.stats.items == 200);
}

TEST_CASE("an oversized process goes alone; one above the hard limit is dropped and counted") {
  std::vector<pa::Process> processes = HostProcesses(5);
  processes.insert(processes.begin() + 2, MakeProcess(77, "", 2000000));  // 2 MB > 1 MB default
  processes.push_back(MakeProcess(88, "", 5000000));                      // 5 MB > 4 MB hard limit
  Batch<pa::CollectorProc> batch = ChunkProcesses(processes, {}, MakeContext());
  CHECK(batch.stats.items == 6);
  CHECK(batch.stats.oversized_items == 1);
  CHECK(batch.stats.dropped_items == 1);
  REQUIRE(batch.messages.size() == 3);
  // Two small processes, then the big one alone, then the remaining small ones after it.
  CHECK(batch.messages[0].processes_size() == 2);
  REQUIRE(batch.messages[1].processes_size() == 1);
  CHECK(batch.messages[1].processes(0).pid() == 77);
  CHECK(batch.messages[2].processes_size() == 3);
  for (const auto& message : batch.messages) {
    for (const auto& process : message.processes()) CHECK(process.pid() != 88);
  }
}

TEST_CASE("processes of a container travel with their container") {
  std::vector<pa::Process> processes = HostProcesses(150);
  for (int i = 0; i < 3; ++i) processes.push_back(MakeProcess(5000 + i, "ctr-a"));
  for (int i = 0; i < 250; ++i) processes.push_back(MakeProcess(6000 + i, "ctr-c"));
  processes.push_back(MakeProcess(9999, "ctr-unlisted"));
  const std::vector<pa::Container> containers = {MakeContainer("ctr-a"), MakeContainer("ctr-b"),
                                                 MakeContainer("ctr-c")};
  ChunkLimits limits;
  limits.max_per_message = 100;
  Batch<pa::CollectorProc> batch = ChunkProcesses(processes, containers, MakeContext(), limits);

  // Host processes (151 with the unlisted container's): 100 + 51; ctr-a's 3 join the second
  // message; ctr-b (no processes) rides in what is then the last message, the second; ctr-c's 250
  // fill the second to 100 and continue over three more.
  REQUIRE(batch.messages.size() == 5);
  CHECK(batch.stats.items == 404 + 1);  // processes plus the process-less container
  std::vector<int> sizes;
  for (const auto& message : batch.messages) sizes.push_back(message.processes_size());
  CHECK(sizes == std::vector<int>{100, 100, 100, 100, 4});

  std::map<std::string, int> container_messages;
  for (const auto& message : batch.messages) {
    std::set<std::string> carried;
    for (const auto& container : message.containers()) CHECK(carried.insert(container.id()).second);
    for (const auto& container : carried) ++container_messages[container];
    for (const auto& process : message.processes()) {
      if (process.containerid() == "ctr-a" || process.containerid() == "ctr-c") {
        CHECK(carried.count(process.containerid()) == 1);
      }
    }
  }
  CHECK(container_messages["ctr-a"] == 1);
  CHECK(container_messages["ctr-b"] == 1);
  CHECK(container_messages["ctr-c"] == 4);
  CHECK(container_messages.count("ctr-unlisted") == 0);
  REQUIRE(batch.messages[1].containers_size() == 3);
  CHECK(batch.messages[1].containers(0).id() == "ctr-a");
  CHECK(batch.messages[1].containers(1).id() == "ctr-b");
  CHECK(batch.messages[1].containers(2).id() == "ctr-c");
  CHECK(batch.messages[0].containers_size() == 0);
}

TEST_CASE("no processes and no containers make no messages") {
  CHECK(ChunkProcesses({}, {}, MakeContext()).messages.empty());
  CHECK(ChunkContainers({}, MakeContext()).messages.empty());
  CHECK(ChunkProcessStats({}, {}, MakeContext()).messages.empty());
}

TEST_CASE("out-of-range limits fall back to the defaults") {
  CHECK(EffectiveMaxPerMessage(0) == 100);
  CHECK(EffectiveMaxPerMessage(-5) == 100);
  CHECK(EffectiveMaxPerMessage(10001) == 100);
  CHECK(EffectiveMaxPerMessage(10000) == 10000);
  CHECK(EffectiveMaxPerMessage(250) == 250);
  CHECK(EffectiveMaxMessageBytes(0) == 1000000);
  CHECK(EffectiveMaxMessageBytes(4000001) == 1000000);
  CHECK(EffectiveMaxMessageBytes(4000000) == 4000000);

  ChunkLimits limits;
  limits.max_per_message = 20000;  // invalid: 100 is used
  CHECK(ChunkProcesses(HostProcesses(250), {}, MakeContext(), limits).messages.size() == 3);
}

TEST_CASE("containers and real-time stats are spread evenly") {
  std::vector<pa::Container> containers;
  for (int i = 0; i < 250; ++i) containers.push_back(MakeContainer("c" + std::to_string(i)));
  Batch<pa::CollectorContainer> batch = ChunkContainers(containers, MakeContext(9), {});
  REQUIRE(batch.messages.size() == 3);
  CHECK(batch.messages[0].containers_size() == 84);
  CHECK(batch.messages[1].containers_size() == 84);
  CHECK(batch.messages[2].containers_size() == 82);
  CHECK(batch.messages[2].containers(81).id() == "c249");
  CHECK(batch.messages[1].groupsize() == 3);
  CHECK(batch.messages[1].groupid() == 9);
  CHECK(batch.messages[0].info().cpus_size() == 4);

  std::vector<pa::ProcessStat> stats(250);
  for (int i = 0; i < 250; ++i) stats[i].set_pid(i);
  std::vector<pa::ContainerStat> container_stats(30);
  for (int i = 0; i < 30; ++i) container_stats[i].set_id("c" + std::to_string(i));
  Batch<pa::CollectorRealTime> rt = ChunkProcessStats(stats, container_stats, MakeContext(), {});
  REQUIRE(rt.messages.size() == 3);
  CHECK(rt.stats.items == 280);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(rt.messages[i].stats_size() == (i < 2 ? 100 : 50));
    CHECK(rt.messages[i].containerstats_size() == 10);
    CHECK(rt.messages[i].numcpus() == 4);
    CHECK(rt.messages[i].totalmemory() == (8ll << 30));
    CHECK(rt.messages[i].groupsize() == 3);
  }
  CHECK(rt.messages[2].containerstats(9).id() == "c29");

  // Container stats without process stats still get messages of at most max_per_message.
  Batch<pa::CollectorRealTime> only_containers =
      ChunkProcessStats({}, std::vector<pa::ContainerStat>(150), MakeContext(), {});
  REQUIRE(only_containers.messages.size() == 2);
  CHECK(only_containers.messages[0].containerstats_size() == 75);

  Batch<pa::CollectorContainerRealTime> crt =
      ChunkContainerStats(std::vector<pa::ContainerStat>(101), MakeContext(), {});
  REQUIRE(crt.messages.size() == 2);
  CHECK(crt.messages[0].stats_size() == 51);
  CHECK(crt.messages[1].stats_size() == 50);
  CHECK(crt.messages[1].hostname() == "web-1");
}

TEST_CASE("request headers carry the agent's names and values") {
  RequestHeaderValues values;
  values.hostname = "web-1";
  values.agent_version = "7.60.0";
  values.container_count = 3;
  values.timestamp_s = 1709337610;
  values.agent_start_time_s = 1709330000;
  values.request_id = MakeRequestId(1709337610, "web-1", 4242, 5);
  http::HttpHeaders headers = RequestHeaders(values);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"X-Dd-Hostname", "web-1"},
      {"X-Dd-Processagentversion", "7.60.0"},
      {"X-Dd-ContainerCount", "3"},
      {"X-DD-Agent-Timestamp", "1709337610"},
      {"X-DD-Request-ID", "380039283992018949"},
      {"X-DD-Agent-Start-Time", "1709330000"},
      {"Content-Type", "application/x-protobuf"},
  };
  CHECK(headers.entries() == expected);

  // 2024-03-02T00:00:10Z is 86,410 s into the month; the index sits in the low 14 bits.
  const uint64_t id = std::stoull(MakeRequestId(1709337610, "web-1", 4242, 16385));
  CHECK((id >> 42) == 86410);
  CHECK((id & 0x3fff) == 1);
  CHECK(((id >> 14) & 0xfffffff) == 249326631);  // FNV-1("web-14242") & (2^28 - 1)

  values.request_id.clear();
  CHECK_FALSE(RequestHeaders(values).Has("X-DD-Request-ID"));
}

}  // namespace
}  // namespace dogwatch::process
