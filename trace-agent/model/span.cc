#include "trace-agent/model/span.h"

#include <ostream>

namespace dogwatch::trace {

std::ostream& operator<<(std::ostream& out, const SpanString& s) { return out << s.view(); }

namespace {

// The one key scan behind every lookup and update: the entry whose key is `key`, or map.end().
template <typename Map>
auto FindEntry(Map& map, std::string_view key) {
  auto it = map.begin();
  while (it != map.end() && !SameKey(it->first.view(), key)) ++it;
  return it;
}

template <typename Map>
auto FindValue(Map& map, std::string_view key) {
  auto it = FindEntry(map, key);
  return it == map.end() ? nullptr : &it->second;
}

// Set and SetStaticKey: replaces the value of an existing entry, or appends one whose key is a
// copy of `key` or, for a key with static storage duration, borrows it.
template <typename Map, typename Value>
void Assign(Map& map, std::string_view key, Value value, bool static_key) {
  if (auto it = FindEntry(map, key); it != map.end()) {
    it->second = std::move(value);
    return;
  }
  map.emplace_back(static_key ? SpanString::Borrow(key) : SpanString(key), std::move(value));
}

}  // namespace

const SpanString* Find(const StringMap& map, std::string_view key) { return FindValue(map, key); }
const double* Find(const NumberMap& map, std::string_view key) { return FindValue(map, key); }
SpanString* Find(StringMap& map, std::string_view key) { return FindValue(map, key); }

void Set(StringMap& map, std::string_view key, SpanString value) {
  Assign(map, key, std::move(value), /*static_key=*/false);
}

void Set(NumberMap& map, std::string_view key, double value) {
  Assign(map, key, value, /*static_key=*/false);
}

void SetStaticKey(StringMap& map, std::string_view static_key, SpanString value) {
  Assign(map, static_key, std::move(value), /*static_key=*/true);
}

void SetStaticKey(NumberMap& map, std::string_view static_key, double value) {
  Assign(map, static_key, value, /*static_key=*/true);
}

bool Erase(StringMap& map, std::string_view key) {
  auto it = FindEntry(map, key);
  if (it == map.end()) return false;
  map.erase(it);
  return true;
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
