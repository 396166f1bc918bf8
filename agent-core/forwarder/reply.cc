#include "agent-core/forwarder/reply.h"

#include <utility>

namespace dogwatch::forwarder {

ReplySink::ReplySink(size_t destinations, size_t max_body_bytes)
    : max_body_bytes_(max_body_bytes), resolved_(destinations, false), pending_(destinations) {}

bool ReplySink::MarkLocked(size_t index) {
  if (index >= resolved_.size() || resolved_[index]) return false;
  resolved_[index] = true;
  --pending_;
  return true;
}

void ReplySink::Resolve(size_t index, IntakeReply reply) {
  if (reply.body.size() > max_body_bytes_) {
    reply.body.resize(max_body_bytes_);
    reply.truncated = true;
  }
  absl::MutexLock lock(&mu_);
  if (MarkLocked(index)) replies_.push_back(std::move(reply));
}

void ReplySink::ResolveWithout(size_t index) {
  absl::MutexLock lock(&mu_);
  MarkLocked(index);
}

std::vector<IntakeReply> ReplySink::Wait(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &ReplySink::AllResolvedLocked), timeout);
  return replies_;
}

}  // namespace dogwatch::forwarder
