#pragma once
// Command-line scrubbing with the Datadog agent's semantics (pkg/process/procutil/data_scrubber.go),
// without regular expressions.
//
// A sensitive word W (letters, digits, '_' and '*' wildcards) matches, case-insensitively, a key
// that follows one or more spaces or " -" / " --" in the space-joined command line, then a
// delimiter (spaces, '=' or ':'), then a value ("double quoted", 'single quoted' or up to the next
// whitespace). The value becomes "********":
//   --password=hunter2   → --password=********
//   -password hunter2    → -password ********
//   password:hunter2     → password:********
//   --db-password hunter2 (word "*password*") → --db-password ********
// A '*' inside or at the start of a word matches any run without whitespace, '=', ':', '$' or '/';
// at its end any run without ' ', '=' or ':'. The first argument (the executable) is never matched
// because nothing precedes it. As in Datadog, a changed command line is split back on single
// spaces, so an argument that contained spaces comes back as several.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dogwatch::process {

// Datadog's defaultSensitiveWords.
const std::vector<std::string>& DefaultSensitiveWords();

class CommandLineScrubber {
 public:
  struct Options {
    bool enabled = true;                              // process_config.scrub_args
    std::vector<std::string> custom_sensitive_words;  // process_config.custom_sensitive_words
    bool strip_arguments = false;                     // process_config.strip_proc_arguments
    size_t cache_max_entries = 16384;                 // ScrubProcess cache; cleared when full
    uint32_t cache_max_cycles = 25;                   // Datadog's defaultCacheMaxCycles
  };

  explicit CommandLineScrubber(Options options);

  // Pure: the scrubbed arguments (a copy of `args` when nothing matched). With strip_arguments, only
  // the executable is kept (the first argument up to its first space), whatever `enabled` says.
  std::vector<std::string> Scrub(const std::vector<std::string>& args) const;

  // Cached variant keyed by process identity, as Datadog's ScrubProcessCommand: a command line is
  // scrubbed once per (pid, create time) until the cache is reset by IncrementCacheAge().
  // Thread-safe.
  std::shared_ptr<const std::vector<std::string>> ScrubProcess(int32_t pid, int64_t create_time_ms,
                                                               const std::vector<std::string>& args);
  // Call once per check run; every `cache_max_cycles` calls the cache starts over (pids get reused
  // and custom words could change).
  void IncrementCacheAge();

  // Words that were rejected (characters other than [A-Za-z0-9_*], "**", or a lone "*").
  const std::vector<std::string>& rejected_words() const { return rejected_words_; }

  struct CacheCounters {
    int64_t hits = 0;
    int64_t misses = 0;
    int64_t resets = 0;           // age resets
    int64_t overflow_clears = 0;  // cleared because cache_max_entries was reached
    int64_t entries = 0;
  };
  CacheCounters cache_counters() const;

 private:
  enum class Piece : uint8_t { kLiteral, kInnerStar, kTrailingStar };
  struct Token {
    Piece piece = Piece::kLiteral;
    char lower = 0;  // for kLiteral
  };
  struct Pattern {
    std::vector<Token> tokens;
    std::string fast_check;  // longest literal run, lowercase: skip the pattern when absent
  };
  struct CacheKey {
    int32_t pid;
    int64_t create_time_ms;
    bool operator==(const CacheKey& other) const {
      return pid == other.pid && create_time_ms == other.create_time_ms;
    }
  };
  struct CacheKeyHash {
    size_t operator()(const CacheKey& key) const {
      return std::hash<int64_t>()(key.create_time_ms * 31 + key.pid);
    }
  };

  void AddWord(const std::string& word);
  // Replaces every match of `pattern` in `raw`; returns false when there was none.
  bool ReplaceAll(const Pattern& pattern, std::string* raw) const;
  // The end of the value when a match starts at `start` (a space), or npos.
  size_t MatchAt(const Pattern& pattern, std::string_view raw, size_t start, size_t* delimiter_end) const;
  bool WordMatches(const Pattern& pattern, std::string_view key) const;

  Options options_;
  std::vector<Pattern> patterns_;
  std::vector<std::string> rejected_words_;

  mutable std::mutex mu_;
  std::unordered_map<CacheKey, std::shared_ptr<const std::vector<std::string>>, CacheKeyHash> cache_;
  uint32_t cache_cycles_ = 0;
  CacheCounters counters_;
};

}  // namespace dogwatch::process
