#pragma once
// The intake's answers to one Submit, for a submitter that needs them (the process-agent reads the
// ResCollector the process intake answers with to know whether to run its real-time checks).
//
// A ReplySink rides along with the transaction's copies, one per destination of the track. Each
// destination resolves its part once: with the intake's answer (status and body, the body cut at
// max_body_bytes) when the first attempt got one, or without an answer (send failed, destination
// backing off, copy refused). Later retries of the same transaction resolve nothing: the waiter is
// long gone by then, and the retry queue keeps its usual semantics whatever the sink holds.

#include <cstddef>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace dogwatch::forwarder {

struct IntakeReply {
  std::string destination;  // the destination's URL (never its key)
  int status = 0;
  std::string body;        // at most the sink's max_body_bytes
  bool truncated = false;  // the body was cut (by the transport's limit or the sink's)
};

class ReplySink {
 public:
  ReplySink(size_t destinations, size_t max_body_bytes);

  // Destination `index` (its position in the track's list) answered; the first resolution of an
  // index wins, later ones are ignored. Indexes out of range are ignored.
  void Resolve(size_t index, IntakeReply reply);
  // Destination `index` will not answer in time (send failed, backing off, copy not queued).
  void ResolveWithout(size_t index);

  // Blocks until every destination resolved or `timeout` passed; returns the answers received so
  // far, in resolution order.
  std::vector<IntakeReply> Wait(absl::Duration timeout);

 private:
  bool MarkLocked(size_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllResolvedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; }

  const size_t max_body_bytes_;
  absl::Mutex mu_;
  std::vector<bool> resolved_ ABSL_GUARDED_BY(mu_);
  size_t pending_ ABSL_GUARDED_BY(mu_);
  std::vector<IntakeReply> replies_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dogwatch::forwarder
