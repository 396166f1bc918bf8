#include "process-agent/payload/chunking.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <random>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace dogwatch::process {
namespace {

namespace pa = datadog::process_agent;

int64_t VarintSize(uint64_t value) {
  int64_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

// Encoded size of a message as an element of a repeated field numbered below 16 (one tag byte), as
// every repeated item field of the collector messages is.
int64_t ElementBytes(const google::protobuf::Message& message) {
  const auto size = static_cast<int64_t>(message.ByteSizeLong());
  return 1 + VarintSize(static_cast<uint64_t>(size)) + size;
}

// Something that must travel with an item into whichever message takes it: the container of a
// process in a CollectorProc.
struct Attachment {
  size_t index = 0;
  int64_t bytes = 0;
};

struct Chunk {
  std::vector<size_t> items;
  std::vector<size_t> attachments;
  int64_t bytes = 0;
  // Holds a single oversized item and takes nothing else.
  bool sealed = false;
};

enum class Placement { kPlaced, kOversized, kDropped };

// Assigns items to chunks under a count and a byte budget. Items are placed one at a time at the
// cursor or the first chunk after it with room (opening a new chunk at the end when none has), so
// items keep their order within every chunk and a group of items starts where the previous group
// left off, as Datadog's ChunkAllocator does.
class ChunkPlanner {
 public:
  ChunkPlanner(size_t max_count, int64_t max_bytes, int64_t base_bytes)
      : max_count_(max_count), max_bytes_(max_bytes), base_bytes_(base_bytes) {}

  // Starts a group at the last chunk, to fill it before opening new ones.
  void StartGroup() { cursor_ = chunks_.empty() ? 0 : chunks_.size() - 1; }

  Placement Place(size_t item, int64_t bytes, const Attachment* attachment) {
    const int64_t alone = base_bytes_ + bytes + (attachment != nullptr ? attachment->bytes : 0);
    if (alone > kMaxMessageBytesLimit) return Placement::kDropped;
    if (alone > max_bytes_) {
      Chunk& chunk = chunks_.emplace_back();
      chunk.bytes = base_bytes_;
      Add(chunk, item, bytes, attachment);
      chunk.sealed = true;
      cursor_ = chunks_.size();
      return Placement::kOversized;
    }
    while (cursor_ < chunks_.size() && !Fits(chunks_[cursor_], bytes, attachment)) ++cursor_;
    if (cursor_ == chunks_.size()) chunks_.emplace_back().bytes = base_bytes_;
    Add(chunks_[cursor_], item, bytes, attachment);
    return Placement::kPlaced;
  }

  // An attachment without items (a container none of whose processes are reported): into the last
  // chunk when it has room, else alone into a new one. It does not use up an item slot.
  Placement PlaceAttachmentAlone(const Attachment& attachment) {
    const int64_t alone = base_bytes_ + attachment.bytes;
    if (alone > kMaxMessageBytesLimit) return Placement::kDropped;
    if (!chunks_.empty()) {
      Chunk& last = chunks_.back();
      if (!last.sealed && last.bytes + attachment.bytes <= max_bytes_) {
        AddAttachment(last, attachment);
        return Placement::kPlaced;
      }
    }
    Chunk& chunk = chunks_.emplace_back();
    chunk.bytes = base_bytes_;
    AddAttachment(chunk, attachment);
    cursor_ = chunks_.size() - 1;
    if (alone > max_bytes_) {
      chunk.sealed = true;
      return Placement::kOversized;
    }
    return Placement::kPlaced;
  }

  std::vector<Chunk>& chunks() { return chunks_; }

 private:
  static bool HasAttachment(const Chunk& chunk, size_t index) {
    // Items of one attachment are placed consecutively, so a chunk that already has it has it last.
    return !chunk.attachments.empty() && chunk.attachments.back() == index;
  }

  bool Fits(const Chunk& chunk, int64_t bytes, const Attachment* attachment) const {
    if (chunk.sealed || chunk.items.size() >= max_count_) return false;
    int64_t needed = bytes;
    if (attachment != nullptr && !HasAttachment(chunk, attachment->index)) needed += attachment->bytes;
    return chunk.bytes + needed <= max_bytes_;
  }

  static void AddAttachment(Chunk& chunk, const Attachment& attachment) {
    if (HasAttachment(chunk, attachment.index)) return;
    chunk.attachments.push_back(attachment.index);
    chunk.bytes += attachment.bytes;
  }

  static void Add(Chunk& chunk, size_t item, int64_t bytes, const Attachment* attachment) {
    if (attachment != nullptr) AddAttachment(chunk, *attachment);
    chunk.items.push_back(item);
    chunk.bytes += bytes;
  }

  const size_t max_count_;
  const int64_t max_bytes_;
  const int64_t base_bytes_;
  size_t cursor_ = 0;
  std::vector<Chunk> chunks_;
};

void Count(Placement placement, ChunkStats* stats) {
  switch (placement) {
    case Placement::kPlaced:
      ++stats->items;
      break;
    case Placement::kOversized:
      ++stats->items;
      ++stats->oversized_items;
      break;
    case Placement::kDropped:
      ++stats->dropped_items;
      break;
  }
}

ChunkLimits Effective(const ChunkLimits& limits) {
  return ChunkLimits{EffectiveMaxPerMessage(limits.max_per_message),
                     EffectiveMaxMessageBytes(limits.max_message_bytes)};
}

// Size of the fields every message of the run carries, with groupSize at its widest encoding since
// the message count is not known yet.
template <typename Message>
int64_t BaseBytes(Message prototype) {
  prototype.set_groupsize(std::numeric_limits<int32_t>::max());
  return static_cast<int64_t>(prototype.ByteSizeLong());
}

pa::CollectorProc ProcPrototype(const BatchContext& context) {
  pa::CollectorProc message;
  message.set_hostname(context.hostname);
  message.set_networkid(context.network_id);
  *message.mutable_info() = context.info;
  message.set_groupid(context.group_id);
  message.set_containerhosttype(context.container_host_type);
  return message;
}

pa::CollectorContainer ContainerPrototype(const BatchContext& context) {
  pa::CollectorContainer message;
  message.set_hostname(context.hostname);
  message.set_networkid(context.network_id);
  *message.mutable_info() = context.info;
  message.set_groupid(context.group_id);
  message.set_containerhosttype(context.container_host_type);
  return message;
}

pa::CollectorRealTime RealTimePrototype(const BatchContext& context) {
  pa::CollectorRealTime message;
  message.set_hostname(context.hostname);
  message.set_groupid(context.group_id);
  message.set_numcpus(context.info.cpus_size());
  message.set_totalmemory(context.info.totalmemory());
  message.set_containerhosttype(context.container_host_type);
  return message;
}

pa::CollectorContainerRealTime ContainerRealTimePrototype(const BatchContext& context) {
  pa::CollectorContainerRealTime message;
  message.set_hostname(context.hostname);
  message.set_groupid(context.group_id);
  message.set_numcpus(context.info.cpus_size());
  message.set_totalmemory(context.info.totalmemory());
  message.set_containerhosttype(context.container_host_type);
  return message;
}

// ceil(n / max_per_message) messages with the items spread evenly, as the container checks do.
size_t EvenShare(size_t items, int max_per_message) {
  const auto max = static_cast<size_t>(max_per_message);
  const size_t messages = (items + max - 1) / max;
  return messages == 0 ? max : (items + messages - 1) / messages;
}

// Even spread of `items` into messages under the byte budget.
template <typename Item>
std::vector<Chunk> PlanEvenly(const std::vector<Item>& items, const ChunkLimits& limits, int64_t base_bytes,
                              ChunkStats* stats) {
  ChunkPlanner planner(EvenShare(items.size(), limits.max_per_message), limits.max_message_bytes, base_bytes);
  for (size_t i = 0; i < items.size(); ++i) Count(planner.Place(i, ElementBytes(items[i]), nullptr), stats);
  return std::move(planner.chunks());
}

}  // namespace

int EffectiveMaxPerMessage(int configured) {
  return configured <= 0 || configured > kMaxPerMessageLimit ? kDefaultMaxPerMessage : configured;
}

int64_t EffectiveMaxMessageBytes(int64_t configured) {
  return configured <= 0 || configured > kMaxMessageBytesLimit ? kDefaultMaxMessageBytes : configured;
}

int32_t RandomGroupId() {
  std::random_device device;
  std::uniform_int_distribution<int32_t> distribution(0, std::numeric_limits<int32_t>::max());
  return distribution(device);
}

Batch<pa::CollectorProc> ChunkProcesses(std::vector<pa::Process> processes,
                                        const std::vector<pa::Container>& containers,
                                        const BatchContext& context, const ChunkLimits& configured) {
  const ChunkLimits limits = Effective(configured);
  Batch<pa::CollectorProc> batch;
  const pa::CollectorProc prototype = ProcPrototype(context);

  // Group the processes: host processes (and those of unlisted containers) first, then per
  // container in the order given.
  std::unordered_map<std::string_view, size_t> container_index;
  container_index.reserve(containers.size());
  for (size_t i = 0; i < containers.size(); ++i) container_index.emplace(containers[i].id(), i);
  std::vector<size_t> host_processes;
  std::vector<std::vector<size_t>> processes_by_container(containers.size());
  for (size_t i = 0; i < processes.size(); ++i) {
    const std::string& id = processes[i].containerid();
    auto it = id.empty() ? container_index.end() : container_index.find(id);
    if (it == container_index.end()) {
      host_processes.push_back(i);
    } else {
      processes_by_container[it->second].push_back(i);
    }
  }

  ChunkPlanner planner(static_cast<size_t>(limits.max_per_message), limits.max_message_bytes,
                       BaseBytes(prototype));
  planner.StartGroup();
  for (size_t i : host_processes) Count(planner.Place(i, ElementBytes(processes[i]), nullptr), &batch.stats);
  for (size_t c = 0; c < containers.size(); ++c) {
    const Attachment container{c, ElementBytes(containers[c])};
    if (processes_by_container[c].empty()) {
      Count(planner.PlaceAttachmentAlone(container), &batch.stats);
      continue;
    }
    planner.StartGroup();
    for (size_t i : processes_by_container[c]) {
      Count(planner.Place(i, ElementBytes(processes[i]), &container), &batch.stats);
    }
  }

  std::vector<Chunk>& chunks = planner.chunks();
  batch.messages.reserve(chunks.size());
  for (const Chunk& chunk : chunks) {
    pa::CollectorProc& message = batch.messages.emplace_back(prototype);
    message.set_groupsize(static_cast<int32_t>(chunks.size()));
    message.mutable_processes()->Reserve(static_cast<int>(chunk.items.size()));
    for (size_t i : chunk.items) *message.add_processes() = std::move(processes[i]);
    for (size_t c : chunk.attachments) *message.add_containers() = containers[c];
  }
  return batch;
}

Batch<pa::CollectorContainer> ChunkContainers(std::vector<pa::Container> containers,
                                              const BatchContext& context, const ChunkLimits& configured) {
  const ChunkLimits limits = Effective(configured);
  Batch<pa::CollectorContainer> batch;
  const pa::CollectorContainer prototype = ContainerPrototype(context);
  const std::vector<Chunk> chunks = PlanEvenly(containers, limits, BaseBytes(prototype), &batch.stats);
  batch.messages.reserve(chunks.size());
  for (const Chunk& chunk : chunks) {
    pa::CollectorContainer& message = batch.messages.emplace_back(prototype);
    message.set_groupsize(static_cast<int32_t>(chunks.size()));
    for (size_t i : chunk.items) *message.add_containers() = std::move(containers[i]);
  }
  return batch;
}

Batch<pa::CollectorRealTime> ChunkProcessStats(std::vector<pa::ProcessStat> stats,
                                               std::vector<pa::ContainerStat> container_stats,
                                               const BatchContext& context, const ChunkLimits& configured) {
  const ChunkLimits limits = Effective(configured);
  Batch<pa::CollectorRealTime> batch;
  const pa::CollectorRealTime prototype = RealTimePrototype(context);

  // Process stats in order under both limits; then the container stats spread evenly over
  // ceil(m / max_per_message) messages or the process messages, whichever are more, each starting
  // at its share's message and moving on only when that one has no room. They ride in a separate
  // field and use no item slots (Datadog sizes only the process stats).
  const int64_t base_bytes = BaseBytes(prototype);
  ChunkPlanner planner(static_cast<size_t>(limits.max_per_message), limits.max_message_bytes, base_bytes);
  planner.StartGroup();
  for (size_t i = 0; i < stats.size(); ++i)
    Count(planner.Place(i, ElementBytes(stats[i]), nullptr), &batch.stats);
  std::vector<Chunk>& chunks = planner.chunks();

  const auto max_per_message = static_cast<size_t>(limits.max_per_message);
  const size_t share_messages =
      std::max(chunks.size(), (container_stats.size() + max_per_message - 1) / max_per_message);
  while (chunks.size() < share_messages) chunks.emplace_back().bytes = base_bytes;
  const size_t per_message =
      share_messages == 0 ? 1 : (container_stats.size() + share_messages - 1) / share_messages;
  for (size_t i = 0; i < container_stats.size(); ++i) {
    const Attachment stat{i, ElementBytes(container_stats[i])};
    bool placed = false;
    for (size_t c = i / per_message; c < chunks.size() && !placed; ++c) {
      Chunk& chunk = chunks[c];
      if (!chunk.sealed && chunk.bytes + stat.bytes <= limits.max_message_bytes) {
        chunk.attachments.push_back(stat.index);
        chunk.bytes += stat.bytes;
        placed = true;
      }
    }
    Count(placed ? Placement::kPlaced : planner.PlaceAttachmentAlone(stat), &batch.stats);
  }

  batch.messages.reserve(chunks.size());
  for (const Chunk& chunk : chunks) {
    pa::CollectorRealTime& message = batch.messages.emplace_back(prototype);
    message.set_groupsize(static_cast<int32_t>(chunks.size()));
    for (size_t i : chunk.items) *message.add_stats() = std::move(stats[i]);
    for (size_t i : chunk.attachments) *message.add_containerstats() = std::move(container_stats[i]);
  }
  return batch;
}

Batch<pa::CollectorContainerRealTime> ChunkContainerStats(std::vector<pa::ContainerStat> stats,
                                                          const BatchContext& context,
                                                          const ChunkLimits& configured) {
  const ChunkLimits limits = Effective(configured);
  Batch<pa::CollectorContainerRealTime> batch;
  const pa::CollectorContainerRealTime prototype = ContainerRealTimePrototype(context);
  const std::vector<Chunk> chunks = PlanEvenly(stats, limits, BaseBytes(prototype), &batch.stats);
  batch.messages.reserve(chunks.size());
  for (const Chunk& chunk : chunks) {
    pa::CollectorContainerRealTime& message = batch.messages.emplace_back(prototype);
    message.set_groupsize(static_cast<int32_t>(chunks.size()));
    for (size_t i : chunk.items) *message.add_stats() = std::move(stats[i]);
  }
  return batch;
}

}  // namespace dogwatch::process
