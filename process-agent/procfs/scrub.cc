#include "process-agent/procfs/scrub.h"

namespace dogwatch::process {
namespace {

constexpr std::string_view kMask = "********";

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Go regexp's \s: [\t\n\f\r ].
bool IsRegexSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }

bool IsKeyEnd(char c) { return c == ' ' || c == '=' || c == ':'; }

std::string LowerCopy(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

}  // namespace

const std::vector<std::string>& DefaultSensitiveWords() {
  static const std::vector<std::string> words = {
      "*password*", "*passwd*", "*mysql_pwd*", "*access_token*", "*auth_token*",
      "*api_key*",  "*apikey*", "*secret*",    "*credentials*",  "stripetoken",
  };
  return words;
}

CommandLineScrubber::CommandLineScrubber(Options options) : options_(std::move(options)) {
  for (const std::string& word : DefaultSensitiveWords()) AddWord(word);
  for (const std::string& word : options_.custom_sensitive_words) AddWord(word);
}

void CommandLineScrubber::AddWord(const std::string& word) {
  bool valid = !word.empty() && word != "*" && word.find("**") == std::string::npos && word.size() <= 256;
  for (char c : word) {
    bool allowed =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '*';
    valid &= allowed;
  }
  if (!valid) {
    rejected_words_.push_back(word);
    return;
  }
  Pattern pattern;
  std::string run;
  for (size_t i = 0; i < word.size(); ++i) {
    Token token;
    if (word[i] == '*') {
      token.piece = i + 1 == word.size() ? Piece::kTrailingStar : Piece::kInnerStar;
      run.clear();
    } else {
      token.lower = AsciiLower(word[i]);
      run.push_back(token.lower);
      if (run.size() > pattern.fast_check.size()) pattern.fast_check = run;
    }
    pattern.tokens.push_back(token);
  }
  patterns_.push_back(std::move(pattern));
}

bool CommandLineScrubber::WordMatches(const Pattern& pattern, std::string_view key) const {
  // Anchored glob match by dynamic programming over positions: O(tokens × key length), so a
  // hostile 128 KiB argument cannot make it backtrack exponentially.
  const size_t n = key.size();
  std::vector<char> reach(n + 1, 0);
  reach[0] = 1;
  for (const Token& token : pattern.tokens) {
    if (token.piece == Piece::kLiteral) {
      for (size_t p = n; p > 0; --p) reach[p] = reach[p - 1] && AsciiLower(key[p - 1]) == token.lower;
      reach[0] = 0;
    } else {
      for (size_t p = 1; p <= n; ++p) {
        if (reach[p] || !reach[p - 1]) continue;
        char c = key[p - 1];
        // Inner stars stop at whitespace, '$' and '/'; the trailing one only at ' ', '=', ':'
        // (never inside a key anyway).
        bool allowed = token.piece == Piece::kTrailingStar || !(IsRegexSpace(c) || c == '$' || c == '/');
        if (allowed) reach[p] = 1;
      }
    }
  }
  return reach[n] != 0;
}

size_t CommandLineScrubber::MatchAt(const Pattern& pattern, std::string_view raw, size_t start,
                                    size_t* delimiter_end) const {
  const size_t n = raw.size();
  if (raw[start] != ' ') return std::string_view::npos;
  // Candidate key starts: after all the spaces (" +"), else after " --" then " -" (" -{1,2}").
  size_t candidates[3];
  int count = 0;
  size_t after_spaces = start;
  while (after_spaces < n && raw[after_spaces] == ' ') ++after_spaces;
  candidates[count++] = after_spaces;
  if (start + 1 < n && raw[start + 1] == '-') {
    if (start + 2 < n && raw[start + 2] == '-') candidates[count++] = start + 3;
    candidates[count++] = start + 2;
  }
  for (int c = 0; c < count; ++c) {
    size_t key_start = candidates[c];
    // No token can match ' ', '=' or ':', so the key ends exactly at the first of them.
    size_t key_end = key_start;
    while (key_end < n && !IsKeyEnd(raw[key_end])) ++key_end;
    if (key_end >= n) continue;  // a delimiter is required
    if (!WordMatches(pattern, raw.substr(key_start, key_end - key_start))) continue;
    size_t value_start = key_end + 1;
    if (raw[key_end] == ' ') {
      while (value_start < n && raw[value_start] == ' ') ++value_start;
    }
    size_t value_end = value_start;
    bool quoted = false;
    if (value_start < n && (raw[value_start] == '"' || raw[value_start] == '\'')) {
      size_t close = raw.find(raw[value_start], value_start + 1);
      if (close != std::string_view::npos) {
        value_end = close + 1;
        quoted = true;
      }
    }
    if (!quoted) {
      while (value_end < n && !IsRegexSpace(raw[value_end])) ++value_end;
    }
    *delimiter_end = value_start;
    return value_end;
  }
  return std::string_view::npos;
}

bool CommandLineScrubber::ReplaceAll(const Pattern& pattern, std::string* raw) const {
  std::string_view text(*raw);
  std::string out;
  size_t copied = 0;
  bool matched = false;
  for (size_t i = 0; i < text.size();) {
    size_t delimiter_end = 0;
    size_t value_end = MatchAt(pattern, text, i, &delimiter_end);
    if (value_end == std::string_view::npos) {
      ++i;
      continue;
    }
    if (!matched) out.reserve(text.size() + kMask.size());
    matched = true;
    out.append(text.substr(copied, delimiter_end - copied));
    out.append(kMask);
    copied = value_end;
    i = value_end > i ? value_end : i + 1;
  }
  if (!matched) return false;
  out.append(text.substr(copied));
  *raw = std::move(out);
  return true;
}

std::vector<std::string> CommandLineScrubber::Scrub(const std::vector<std::string>& args) const {
  if (options_.strip_arguments) {
    if (args.empty()) return {};
    std::string_view first(args[0]);
    return {std::string(first.substr(0, first.find(' ')))};
  }
  if (!options_.enabled || args.empty()) return args;

  std::string raw;
  size_t total = 0;
  for (const std::string& arg : args) total += arg.size() + 1;
  raw.reserve(total);
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) raw.push_back(' ');
    raw.append(args[i]);
  }
  std::string lower = LowerCopy(raw);
  bool changed = false;
  for (const Pattern& pattern : patterns_) {
    if (lower.find(pattern.fast_check) == std::string::npos) continue;
    if (ReplaceAll(pattern, &raw)) {
      changed = true;
      lower = LowerCopy(raw);
    }
  }
  if (!changed) return args;
  // Datadog splits the scrubbed line back on every single space (empty pieces kept).
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t space = raw.find(' ', start);
    out.emplace_back(raw.substr(start, space == std::string::npos ? std::string::npos : space - start));
    if (space == std::string::npos) break;
    start = space + 1;
  }
  return out;
}

std::shared_ptr<const std::vector<std::string>> CommandLineScrubber::ScrubProcess(
    int32_t pid, int64_t create_time_ms, const std::vector<std::string>& args) {
  CacheKey key{pid, create_time_ms};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      ++counters_.hits;
      return it->second;
    }
    ++counters_.misses;
  }
  auto scrubbed = std::make_shared<const std::vector<std::string>>(Scrub(args));
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= options_.cache_max_entries) {
    ++counters_.overflow_clears;
    cache_.clear();
  }
  cache_.emplace(key, scrubbed);
  return scrubbed;
}

void CommandLineScrubber::IncrementCacheAge() {
  std::lock_guard<std::mutex> lock(mu_);
  if (++cache_cycles_ >= options_.cache_max_cycles) {
    cache_.clear();
    cache_cycles_ = 0;
    ++counters_.resets;
  }
}

CommandLineScrubber::CacheCounters CommandLineScrubber::cache_counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  CacheCounters out = counters_;
  out.entries = static_cast<int64_t>(cache_.size());
  return out;
}

}  // namespace dogwatch::process
