#include "trace-agent/model/span.h"

#include <ostream>

namespace dogwatch::trace {

std::ostream& operator<<(std::ostream& out, const SpanString& s) { return out << s.view(); }

const SpanString* Find(const StringMap& map, std::string_view key) {
  for (const auto& entry : map) {
    if (SameKey(entry.first.view(), key)) return &entry.second;
  }
  return nullptr;
}

const double* Find(const NumberMap& map, std::string_view key) {
  for (const auto& entry : map) {
    if (SameKey(entry.first.view(), key)) return &entry.second;
  }
  return nullptr;
}

void Set(StringMap& map, std::string_view key, SpanString value) {
  for (auto& entry : map) {
    if (SameKey(entry.first.view(), key)) {
      entry.second = std::move(value);
      return;
    }
  }
  map.emplace_back(SpanString(key), std::move(value));
}

void SetStaticKey(StringMap& map, std::string_view static_key, SpanString value) {
  for (auto& entry : map) {
    if (SameKey(entry.first.view(), static_key)) {
      entry.second = std::move(value);
      return;
    }
  }
  map.emplace_back(SpanString::Borrow(static_key), std::move(value));
}

void SetStaticKey(NumberMap& map, std::string_view static_key, double value) {
  for (auto& entry : map) {
    if (SameKey(entry.first.view(), static_key)) {
      entry.second = value;
      return;
    }
  }
  map.emplace_back(SpanString::Borrow(static_key), value);
}

void Set(NumberMap& map, std::string_view key, double value) {
  for (auto& entry : map) {
    if (SameKey(entry.first.view(), key)) {
      entry.second = value;
      return;
    }
  }
  map.emplace_back(SpanString(key), value);
}

bool Erase(StringMap& map, std::string_view key) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.view() == key) {
      map.erase(it);
      return true;
    }
  }
  return false;
}

void MakeOwned(StringMap& map) {
  for (auto& [key, value] : map) {
    if (!key.owned()) key = key.Own();
    if (!value.owned()) value = value.Own();
  }
}

void MakeOwned(NumberMap& map) {
  for (auto& entry : map) {
    if (!entry.first.owned()) entry.first = entry.first.Own();
  }
}

void MakeOwned(Span& span) {
  for (SpanString* s : {&span.service, &span.name, &span.resource, &span.type}) {
    if (!s->owned()) *s = s->Own();
  }
  MakeOwned(span.meta);
  MakeOwned(span.metrics);
  MakeOwned(span.meta_struct);
  for (SpanLink& link : span.span_links) {
    MakeOwned(link.attributes);
    if (!link.tracestate.owned()) link.tracestate = link.tracestate.Own();
  }
}

void MakeOwned(TraceChunk& chunk) {
  for (Span& span : chunk.spans) MakeOwned(span);
  MakeOwned(chunk.tags);
}

}  // namespace dogwatch::trace
