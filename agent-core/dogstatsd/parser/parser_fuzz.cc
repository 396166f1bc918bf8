// Arbitrary bytes as one DogStatsD datagram. Besides never crashing or reading out of bounds, the
// parser must keep its promises: every metric view points into the datagram and starts its line, values
// are finite, rates in (0, 1], all strings handed out are valid UTF-8, event titles and service check
// names are non-empty, and every non-empty line produces at least one callback.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "agent-core/dogstatsd/parser/parser.h"

namespace {

using namespace dogwatch;
using namespace dogwatch::dogstatsd;

void Require(bool condition) {
  if (!condition) std::abort();
}

class CheckingHandler : public ParseHandler {
 public:
  explicit CheckingHandler(std::string_view datagram) : datagram_(datagram) {}

  void OnMetric(const ParsedMetric& m) override {
    ++callbacks_;
    Require(!m.name.empty());
    Require(m.name.data() == datagram_.data() || m.name.data()[-1] == '\n');
    for (std::string_view view :
         {m.name, m.set_value, m.raw_tags, m.container_id, m.external_data, m.cardinality}) {
      RequireInside(view);
      Require(IsValidUtf8(view));
      Require(view.find('\n') == std::string_view::npos);
    }
    Require(std::isfinite(m.value));
    Require(m.sample_rate > 0 && m.sample_rate <= 1);
    Require(m.timestamp >= 0);
    if (m.type == metrics::SampleType::kSet) {
      Require(!m.set_value.empty());
      Require(m.value == 0);
    } else {
      Require(m.set_value.empty());
    }
    CheckTags(m.raw_tags);
  }

  void OnEvent(ParsedEvent&& e) override {
    ++callbacks_;
    ++events_and_checks_;
    Require(!e.event.title.empty());
    Require(IsValidUtf8(e.event.title) && IsValidUtf8(e.event.text) && IsValidUtf8(e.event.host));
    Require(IsValidUtf8(e.event.aggregation_key) && IsValidUtf8(e.event.source_type_name));
    Require(e.event.timestamp >= 0);
    Require(e.event.tags.empty());
    // Unescaping only shrinks: the strings are bounded by the datagram.
    Require(e.event.title.size() + e.event.text.size() < datagram_.size());
    for (std::string_view view : {e.raw_tags, e.container_id, e.external_data, e.cardinality})
      RequireInside(view);
    CheckTags(e.raw_tags);
  }

  void OnServiceCheck(ParsedServiceCheck&& c) override {
    ++callbacks_;
    ++events_and_checks_;
    Require(!c.check.name.empty());
    Require(static_cast<int>(c.check.status) <= 3);
    Require(IsValidUtf8(c.check.name) && IsValidUtf8(c.check.message) && IsValidUtf8(c.check.host));
    Require(c.check.timestamp >= 0);
    for (std::string_view view : {c.raw_tags, c.container_id, c.external_data, c.cardinality})
      RequireInside(view);
    CheckTags(c.raw_tags);
  }

  void OnError(ParseError error, std::string_view line) override {
    ++callbacks_;
    ++errors_;
    Require(error < ParseError::kCount);
    Require(ParseErrorName(error) != "unknown");
    Require(!line.empty());
    RequireInside(line);
    Require(line.find('\n') == std::string_view::npos);
  }

  size_t callbacks() const { return callbacks_; }
  size_t one_per_line() const { return errors_ + events_and_checks_; }

 private:
  void RequireInside(std::string_view view) const {
    if (view.empty()) return;
    Require(view.data() >= datagram_.data() &&
            view.data() + view.size() <= datagram_.data() + datagram_.size());
  }

  void CheckTags(std::string_view raw_tags) {
    tags_.clear();
    HostTag host;
    SplitTags(raw_tags, &tags_, &host);
    for (std::string_view tag : tags_) {
      Require(!tag.empty());
      Require(tag.find(',') == std::string_view::npos);
      Require(tag.substr(0, 5) != "host:");
      RequireInside(tag);
    }
    if (host.present) RequireInside(host.value);
  }

  std::string_view datagram_;
  std::vector<std::string_view> tags_;
  size_t callbacks_ = 0;
  size_t errors_ = 0;
  size_t events_and_checks_ = 0;
};

size_t CountNonEmptyLines(std::string_view datagram) {
  size_t lines = 0;
  size_t start = 0;
  while (start <= datagram.size()) {
    size_t newline = datagram.find('\n', start);
    size_t end = newline == std::string_view::npos ? datagram.size() : newline;
    size_t length = end - start;
    if (length > 0 && datagram[end - 1] == '\r') --length;
    if (length > 0) ++lines;
    if (newline == std::string_view::npos) break;
    start = newline + 1;
  }
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view datagram(reinterpret_cast<const char*>(data), size);
  CheckingHandler handler(datagram);
  ParseDatagram(datagram, handler);
  const size_t lines = CountNonEmptyLines(datagram);
  Require(handler.callbacks() >= lines);
  Require(handler.one_per_line() <= lines);

  double value = 0;
  if (ParseValue(datagram, &value)) Require(std::isfinite(value));
  return 0;
}
