#include "common/http/message.h"

#include <algorithm>

namespace dogwatch::http {
namespace {

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

void HttpHeaders::Add(std::string name, std::string value) {
  entries_.emplace_back(std::move(name), std::move(value));
}

void HttpHeaders::Set(std::string name, std::string value) {
  Remove(name);
  entries_.emplace_back(std::move(name), std::move(value));
}

void HttpHeaders::Remove(std::string_view name) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) { return EqualsIgnoreCase(e.first, name); }),
                 entries_.end());
}

std::optional<std::string_view> HttpHeaders::Get(std::string_view name) const {
  for (const Entry& e : entries_) {
    if (EqualsIgnoreCase(e.first, name)) return std::string_view(e.second);
  }
  return std::nullopt;
}

std::string_view HttpHeaders::GetOr(std::string_view name, std::string_view fallback) const {
  std::optional<std::string_view> value = Get(name);
  return value ? *value : fallback;
}

std::optional<std::string_view> HttpRequest::QueryParam(std::string_view name) const {
  for (const auto& [key, value] : query_params) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

}  // namespace dogwatch::http
