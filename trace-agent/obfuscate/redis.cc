// Redis/Valkey command obfuscation (pkg/obfuscate/redis.go, redis_tokenizer.go). raw_command tags hold
// one command per line, arguments separated by spaces, possibly "quoted with \" escapes"; tracers end a
// truncated command with "...".

#include <array>
#include <string>
#include <vector>

#include "trace-agent/obfuscate/internal.h"
#include "trace-agent/obfuscate/unicode.h"

namespace dogwatch::trace::obfuscate_internal {
namespace {

constexpr std::string_view kTruncationMark = "...";
constexpr int kMaxQuantizedCommands = 3;

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Commands made of two words ("CLIENT LIST", "CONFIG SET").
bool IsCompoundCommand(std::string_view upper) {
  return upper == "CLIENT" || upper == "CLUSTER" || upper == "COMMAND" || upper == "CONFIG" ||
         upper == "DEBUG" || upper == "SCRIPT";
}

// Collapses runs of ' ' (only that character) into one and trims spaces at both ends.
std::string CompactSpaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(c);
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string_view TrimSpaces(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

// Splits a raw command into lines, commands and arguments. Arguments may be double-quoted (spaces and
// newlines inside quotes belong to the argument) with backslash escapes; quotes are kept in the text.
class RedisTokenizer {
 public:
  enum class Kind { kCommand, kArgument };
  struct Token {
    std::string text;
    Kind kind;
    bool done;  // this was the last token
  };

  explicit RedisTokenizer(std::string_view data) : data_(unicode::TrimSpace(data)) {}

  Token Next() { return state_ == Kind::kCommand ? ScanCommand() : ScanArgument(); }

 private:
  void Step() {
    ++off_;
    if (off_ < data_.size()) {
      ch_ = data_[off_];
    } else {
      done_ = true;
    }
  }

  void Unread() {
    if (off_ < 1 || off_ == kBeforeStart) return;
    --off_;
    ch_ = data_[off_];
  }

  // Moves to the last space of a run; a newline ends the command, otherwise the next non-space is left
  // to be read again.
  void SkipSpace() {
    while (!done_ && (ch_ == ' ' || ch_ == '\t' || ch_ == '\r')) Step();
    if (ch_ == '\n') {
      state_ = Kind::kCommand;
    } else {
      Unread();
    }
  }

  Token ScanCommand() {
    std::string text;
    bool started = false;
    for (;;) {
      Step();
      if (done_) return {std::move(text), Kind::kCommand, true};
      if (ch_ == ' ') {
        if (started) {
          state_ = Kind::kArgument;
          SkipSpace();
          return {std::move(text), Kind::kCommand, done_};
        }
        SkipSpace();  // spaces before the command
      } else if (ch_ == '\n') {
        return {std::move(text), Kind::kCommand, done_};
      } else {
        text.push_back(ch_);
      }
      started = true;
    }
  }

  Token ScanArgument() {
    std::string text;
    bool quoted = false;
    bool escape = false;
    for (;;) {
      Step();
      if (done_) return {std::move(text), Kind::kArgument, true};
      switch (ch_) {
        case '\\':
          text.push_back('\\');
          if (!escape) {
            escape = true;
            continue;
          }
          break;
        case '\n':
          if (!quoted) {
            state_ = Kind::kCommand;  // a new command follows
            return {std::move(text), Kind::kArgument, done_};
          }
          text.push_back('\n');
          break;
        case '"':
          text.push_back('"');
          if (!escape) quoted = !quoted;
          break;
        case ' ':
          if (!quoted) {
            SkipSpace();
            return {std::move(text), Kind::kArgument, done_};
          }
          text.push_back(' ');
          break;
        default:
          text.push_back(ch_);
      }
      escape = false;
    }
  }

  static constexpr size_t kBeforeStart = static_cast<size_t>(-1);

  std::string_view data_;
  size_t off_ = kBeforeStart;
  Kind state_ = Kind::kCommand;
  char ch_ = 0;
  bool done_ = false;
};

void ReplaceArg(std::vector<std::string>& args, size_t n) {
  if (args.size() > n) args[n] = "?";
}

// Replaces every `step`-th argument starting at args[start + step - 1].
void ReplaceArgsStep(std::vector<std::string>& args, size_t start, size_t step) {
  if (start + step - 1 >= args.size()) return;
  for (size_t i = start + step - 1; i < args.size(); i += step) args[i] = "?";
}

bool IsOneOf(std::string_view value, std::initializer_list<std::string_view> options) {
  for (std::string_view option : options) {
    if (value == option) return true;
  }
  return false;
}

// Which arguments carry values (as opposed to keys, counts and flags) depends on the command.
void ObfuscateCommand(std::string& out, const std::string& command, std::vector<std::string>& args) {
  out.append(command);
  if (args.empty()) return;
  out.push_back(' ');
  const std::string upper = unicode::Upper(command);
  if (upper == "AUTH") {
    args.resize(1);  // AUTH [username] password
    args[0] = "?";
  } else if (IsOneOf(upper, {"APPEND", "GETSET", "LPUSHX", "GEORADIUSBYMEMBER", "RPUSHX", "SET", "SETNX",
                             "SISMEMBER", "ZRANK", "ZREVRANK", "ZSCORE"})) {
    ReplaceArg(args, 1);  // CMD key value ...
  } else if (IsOneOf(upper, {"HSETNX", "LREM", "LSET", "SETBIT", "SETEX", "PSETEX", "SETRANGE", "ZINCRBY",
                             "SMOVE", "RESTORE"})) {
    ReplaceArg(args, 2);  // CMD key field|count|index|offset|seconds value
  } else if (upper == "LINSERT") {
    ReplaceArg(args, 3);  // LINSERT key BEFORE|AFTER pivot value
  } else if (IsOneOf(upper, {"GEOHASH", "GEOPOS", "GEODIST", "LPUSH", "RPUSH", "SREM", "ZREM", "SADD"})) {
    if (args.size() > 1) {  // CMD key member [member ...]: all members become one '?'
      args[1] = "?";
      args.resize(2);
    }
  } else if (upper == "GEOADD") {
    ReplaceArgsStep(args, 1, 3);  // GEOADD key longitude latitude member [...]
  } else if (upper == "HSET" || upper == "HMSET") {
    ReplaceArgsStep(args, 1, 2);  // HSET key field value [field value ...]
  } else if (upper == "MSET" || upper == "MSETNX") {
    ReplaceArgsStep(args, 0, 2);  // MSET key value [key value ...]
  } else if (upper == "CONFIG") {
    if (unicode::Upper(args[0]) == "SET") ReplaceArg(args, 2);  // CONFIG SET parameter value
  } else if (upper == "BITFIELD") {
    // BITFIELD key [GET type offset] [SET type offset value] ...: the value of the last SET.
    size_t set_index = 0;
    for (size_t i = 0; i < args.size(); ++i) {
      if (unicode::Upper(args[i]) == "SET") set_index = i;
      if (set_index > 0 && i - set_index == 3) {
        args[i] = "?";
        break;
      }
    }
  } else if (upper == "ZADD") {
    // ZADD key [NX|XX] [CH] [INCR] score member [score member ...]
    size_t i = 0;
    for (i = 0; i < args.size(); ++i) {
      if (i == 0) continue;
      if (!IsOneOf(args[i], {"NX", "XX", "CH", "INCR"})) break;
    }
    if (i == args.size()) i = args.size() - 1;  // no score found: like the agent, start at the last flag
    ReplaceArgsStep(args, i, 2);
  }
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) out.push_back(' ');
    out.append(args[i]);
  }
}

// strings.Fields: split on runs of Unicode whitespace.
std::vector<std::string_view> Fields(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t start = std::string_view::npos;
  for (size_t i = 0; i < text.size();) {
    unicode::Decoded d = unicode::DecodeRune(text, i);
    const bool space = d.valid && unicode::IsSpace(d.rune);
    if (space && start != std::string_view::npos) {
      fields.push_back(text.substr(start, i - start));
      start = std::string_view::npos;
    } else if (!space && start == std::string_view::npos) {
      start = i;
    }
    i += d.width;
  }
  if (start != std::string_view::npos) fields.push_back(text.substr(start));
  return fields;
}

}  // namespace

std::string QuantizeRedisString(std::string_view query) {
  const std::string compacted = CompactSpaces(query);
  std::string_view rest = compacted;
  std::string resource;
  bool truncated = false;
  int commands = 0;
  while (!rest.empty() && commands < kMaxQuantizedCommands) {
    std::string_view line;
    const size_t newline = rest.find('\n');
    if (newline == std::string_view::npos) {
      line = rest;
      rest = {};
    } else {
      line = rest.substr(0, newline);
      rest.remove_prefix(newline + 1);
    }
    line = TrimSpaces(line);
    if (line.empty()) continue;

    const size_t first_space = line.find(' ');
    std::string_view first = line.substr(0, first_space);
    if (EndsWith(first, kTruncationMark)) {
      truncated = true;
      continue;
    }
    std::string command = unicode::Upper(first);
    if (IsCompoundCommand(command) && first_space != std::string_view::npos) {
      std::string_view after = line.substr(first_space + 1);
      std::string_view second = after.substr(0, after.find(' '));
      if (EndsWith(second, kTruncationMark)) {
        truncated = true;
        continue;
      }
      command.push_back(' ');
      command.append(unicode::Upper(second));
    }
    resource.push_back(' ');
    resource.append(command);
    ++commands;
    truncated = false;
  }
  if (commands == kMaxQuantizedCommands || truncated) resource.append(" ...");
  return std::string(TrimSpaces(resource));
}

std::string ObfuscateRedisString(std::string_view raw) {
  RedisTokenizer tokenizer(raw);
  std::string out;
  std::string command;
  std::vector<std::string> args;
  for (;;) {
    RedisTokenizer::Token token = tokenizer.Next();
    if (token.kind == RedisTokenizer::Kind::kCommand) {
      if (!command.empty()) {
        ObfuscateCommand(out, command, args);
        out.push_back('\n');
      }
      command = std::move(token.text);
      args.clear();
    } else {
      args.push_back(std::move(token.text));
    }
    if (token.done) {
      ObfuscateCommand(out, command, args);
      return out;
    }
  }
}

std::string RemoveAllRedisArgs(std::string_view raw) {
  const std::vector<std::string_view> fields = Fields(raw);
  if (fields.empty()) return "";
  std::string out(fields[0]);
  if (fields.size() == 1) return out;
  out.push_back(' ');
  const std::string command = unicode::Upper(fields[0]);
  if (command == "BITFIELD") {
    out.push_back('?');
    for (size_t i = 1; i < fields.size(); ++i) {
      const std::string arg = unicode::Upper(fields[i]);
      if (arg == "SET" || arg == "GET" || arg == "INCRBY") {
        out.push_back(' ');
        out.append(fields[i]);
        out.append(" ?");
      }
    }
  } else if (command == "CONFIG") {
    const std::string arg = unicode::Upper(fields[1]);
    if (arg == "GET" || arg == "SET" || arg == "RESETSTAT" || arg == "REWRITE") {
      out.append(fields[1]);
      out.append(" ?");
    } else {
      out.push_back('?');
    }
  } else {
    out.push_back('?');
  }
  return out;
}

std::string ObfuscateMemcachedString(std::string_view command, bool keep_command) {
  if (!keep_command) return "";
  // Storage commands carry their payload after the first "\r\n"; only the command line is kept.
  const size_t end = command.find("\r\n");
  return std::string(unicode::TrimSpace(command.substr(0, end)));
}

}  // namespace dogwatch::trace::obfuscate_internal
