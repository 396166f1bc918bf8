#include "trace-agent/model/span.h"

namespace dogwatch::trace {

const std::string* Find(const StringMap& map, std::string_view key) {
  for (const auto& [k, v] : map) {
    if (k == key) return &v;
  }
  return nullptr;
}

const double* Find(const NumberMap& map, std::string_view key) {
  for (const auto& [k, v] : map) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Set(StringMap& map, std::string_view key, std::string value) {
  for (auto& [k, v] : map) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  map.emplace_back(std::string(key), std::move(value));
}

void Set(NumberMap& map, std::string_view key, double value) {
  for (auto& [k, v] : map) {
    if (k == key) {
      v = value;
      return;
    }
  }
  map.emplace_back(std::string(key), value);
}

bool Erase(StringMap& map, std::string_view key) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first == key) {
      map.erase(it);
      return true;
    }
  }
  return false;
}

}  // namespace dogwatch::trace
