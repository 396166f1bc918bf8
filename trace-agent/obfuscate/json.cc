// JSON obfuscation for MongoDB queries and Elasticsearch/OpenSearch bodies (pkg/obfuscate/json.go). A
// byte-at-a-time scanner (the state machine of Go's encoding/json, which the agent embeds) reports
// structural events; values are replaced as they stream by. Nothing is parsed into a tree, so the cost
// is linear and bounded memory is used even for huge or truncated bodies.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trace-agent/obfuscate/internal.h"
#include "trace-agent/obfuscate/unicode.h"

namespace dogwatch::trace {
namespace {

enum class Op : uint8_t {
  kContinue,      // uninteresting byte
  kBeginLiteral,  // first byte of a string, number, true/false/null
  kBeginObject,
  kObjectKey,    // just finished an object key (this byte is the ':')
  kObjectValue,  // just finished a non-last object value (this byte is the ',')
  kEndObject,
  kBeginArray,
  kArrayValue,  // just finished a non-last array value (the ',')
  kEndArray,
  kSkipSpace,
  kEnd,  // whitespace after a complete top-level value
  kError,
};

enum class Parse : uint8_t { kObjectKey, kObjectValue, kArrayValue };

// encoding/json's scanner, except that a new top-level value may follow a complete one (bulk bodies
// are several documents in a row).
class JsonScanner {
 public:
  Op Step(uint8_t c) {
    switch (state_) {
      case State::kBeginValueOrEmpty:
        if (IsSpace(c)) return Op::kSkipSpace;
        if (c == ']') return EndValue(c);
        return BeginValue(c);
      case State::kBeginValue:
        return BeginValue(c);
      case State::kBeginStringOrEmpty:
        if (IsSpace(c)) return Op::kSkipSpace;
        if (c == '}' && !stack_.empty()) {
          stack_.back() = Parse::kObjectValue;
          return EndValue(c);
        }
        return BeginString(c);
      case State::kBeginString:
        return BeginString(c);
      case State::kEndValue:
        return EndValue(c);
      case State::kEndTop:
        return EndTop(c);
      case State::kInString:
        if (c == '"') {
          state_ = State::kEndValue;
        } else if (c == '\\') {
          state_ = State::kInStringEsc;
        } else if (c < 0x20) {
          return Fail();
        }
        return Op::kContinue;
      case State::kInStringEsc:
        switch (c) {
          case 'b':
          case 'f':
          case 'n':
          case 'r':
          case 't':
          case '\\':
          case '/':
          case '"':
            state_ = State::kInString;
            return Op::kContinue;
          case 'u':
            unicode_digits_ = 0;
            state_ = State::kInStringEscU;
            return Op::kContinue;
          default:
            return Fail();
        }
      case State::kInStringEscU:
        if (!IsHex(c)) return Fail();
        if (++unicode_digits_ == 4) state_ = State::kInString;
        return Op::kContinue;
      case State::kNeg:
        if (c == '0') {
          state_ = State::kZero;
          return Op::kContinue;
        }
        if (c >= '1' && c <= '9') {
          state_ = State::kDigits;
          return Op::kContinue;
        }
        return Fail();
      case State::kDigits:
        if (c >= '0' && c <= '9') return Op::kContinue;
        return Zero(c);
      case State::kZero:
        return Zero(c);
      case State::kDot:
        if (c >= '0' && c <= '9') {
          state_ = State::kDotDigits;
          return Op::kContinue;
        }
        return Fail();
      case State::kDotDigits:
        if (c >= '0' && c <= '9') return Op::kContinue;
        if (c == 'e' || c == 'E') {
          state_ = State::kExponent;
          return Op::kContinue;
        }
        return EndValue(c);
      case State::kExponent:
        if (c == '+' || c == '-') {
          state_ = State::kExponentSign;
          return Op::kContinue;
        }
        return ExponentSign(c);
      case State::kExponentSign:
        return ExponentSign(c);
      case State::kExponentDigits:
        if (c >= '0' && c <= '9') return Op::kContinue;
        return EndValue(c);
      case State::kLiteral:
        // Rest of true/false/null.
        if (c != literal_[literal_pos_]) return Fail();
        if (++literal_pos_ == literal_.size()) state_ = State::kEndValue;
        return Op::kContinue;
      case State::kError:
        return Op::kError;
    }
    return Fail();
  }

  // End of input: Op::kEnd when a complete value was read, kError otherwise.
  Op Eof() {
    if (failed_) return Op::kError;
    if (end_top_) return Op::kEnd;
    Step(' ');
    if (end_top_) return Op::kEnd;
    failed_ = true;
    return Op::kError;
  }

 private:
  enum class State : uint8_t {
    kBeginValueOrEmpty,
    kBeginValue,
    kBeginStringOrEmpty,
    kBeginString,
    kEndValue,
    kEndTop,
    kInString,
    kInStringEsc,
    kInStringEscU,
    kNeg,
    kDigits,
    kZero,
    kDot,
    kDotDigits,
    kExponent,
    kExponentSign,
    kExponentDigits,
    kLiteral,
    kError,
  };

  static bool IsSpace(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  static bool IsHex(uint8_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  Op Fail() {
    state_ = State::kError;
    failed_ = true;
    return Op::kError;
  }

  void Reset() {
    state_ = State::kBeginValue;
    stack_.clear();
    failed_ = false;
    end_top_ = false;
  }

  Op BeginValue(uint8_t c) {
    if (IsSpace(c)) return Op::kSkipSpace;
    switch (c) {
      case '{':
        state_ = State::kBeginStringOrEmpty;
        stack_.push_back(Parse::kObjectKey);
        return Op::kBeginObject;
      case '[':
        state_ = State::kBeginValueOrEmpty;
        stack_.push_back(Parse::kArrayValue);
        return Op::kBeginArray;
      case '"':
        state_ = State::kInString;
        return Op::kBeginLiteral;
      case '-':
        state_ = State::kNeg;
        return Op::kBeginLiteral;
      case '0':
        state_ = State::kZero;
        return Op::kBeginLiteral;
      case 't':
        literal_ = "true";
        literal_pos_ = 1;
        state_ = State::kLiteral;
        return Op::kBeginLiteral;
      case 'f':
        literal_ = "false";
        literal_pos_ = 1;
        state_ = State::kLiteral;
        return Op::kBeginLiteral;
      case 'n':
        literal_ = "null";
        literal_pos_ = 1;
        state_ = State::kLiteral;
        return Op::kBeginLiteral;
      default:
        if (c >= '1' && c <= '9') {
          state_ = State::kDigits;
          return Op::kBeginLiteral;
        }
        return Fail();
    }
  }

  Op BeginString(uint8_t c) {
    if (IsSpace(c)) return Op::kSkipSpace;
    if (c == '"') {
      state_ = State::kInString;
      return Op::kBeginLiteral;
    }
    return Fail();
  }

  Op Zero(uint8_t c) {
    if (c == '.') {
      state_ = State::kDot;
      return Op::kContinue;
    }
    if (c == 'e' || c == 'E') {
      state_ = State::kExponent;
      return Op::kContinue;
    }
    return EndValue(c);
  }

  Op ExponentSign(uint8_t c) {
    if (c >= '0' && c <= '9') {
      state_ = State::kExponentDigits;
      return Op::kContinue;
    }
    return Fail();
  }

  Op EndValue(uint8_t c) {
    if (stack_.empty()) {
      state_ = State::kEndTop;
      end_top_ = true;
      return EndTop(c);
    }
    if (IsSpace(c)) {
      state_ = State::kEndValue;
      return Op::kSkipSpace;
    }
    switch (stack_.back()) {
      case Parse::kObjectKey:
        if (c == ':') {
          stack_.back() = Parse::kObjectValue;
          state_ = State::kBeginValue;
          return Op::kObjectKey;
        }
        return Fail();
      case Parse::kObjectValue:
        if (c == ',') {
          stack_.back() = Parse::kObjectKey;
          state_ = State::kBeginString;
          return Op::kObjectValue;
        }
        if (c == '}') {
          Pop();
          return Op::kEndObject;
        }
        return Fail();
      case Parse::kArrayValue:
        if (c == ',') {
          state_ = State::kBeginValue;
          return Op::kArrayValue;
        }
        if (c == ']') {
          Pop();
          return Op::kEndArray;
        }
        return Fail();
    }
    return Fail();
  }

  Op EndTop(uint8_t c) {
    if (!IsSpace(c)) {
      // Another document follows.
      Reset();
      return Step(c);
    }
    return Op::kEnd;
  }

  void Pop() {
    stack_.pop_back();
    if (stack_.empty()) {
      state_ = State::kEndTop;
      end_top_ = true;
    } else {
      state_ = State::kEndValue;
    }
  }

  State state_ = State::kBeginValue;
  std::vector<Parse> stack_;
  std::string_view literal_;
  size_t literal_pos_ = 0;
  int unicode_digits_ = 0;
  bool failed_ = false;
  bool end_top_ = false;
};

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// strconv.Unquote for a double-quoted literal: Go escapes (\n, \t, \uXXXX, \xNN, octal ...); false for
// anything else (numbers, JSON-only escapes such as \/), in which case the raw text is used.
bool Unquote(std::string_view s, std::string* out) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  s = s.substr(1, s.size() - 2);
  out->clear();
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '"' || c == '\n') return false;
    if (static_cast<uint8_t>(c) >= 0x80) {
      unicode::Decoded d = unicode::DecodeRune(s, i);
      unicode::AppendRune(*out, d.rune);
      i += d.width;
      continue;
    }
    if (c != '\\') {
      out->push_back(c);
      ++i;
      continue;
    }
    if (++i >= s.size()) return false;
    const char e = s[i++];
    switch (e) {
      case 'a':
        out->push_back('\a');
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'v':
        out->push_back('\v');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '"':
        out->push_back('"');
        break;
      case 'x':
      case 'u':
      case 'U': {
        const size_t n = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
        if (i + n > s.size()) return false;
        uint32_t v = 0;
        for (size_t k = 0; k < n; ++k) {
          const int h = HexDigit(s[i + k]);
          if (h < 0) return false;
          v = v * 16 + static_cast<uint32_t>(h);
        }
        i += n;
        if (e == 'x') {
          out->push_back(static_cast<char>(v));
        } else {
          if (v > unicode::kMaxRune || (v >= 0xD800 && v <= 0xDFFF)) return false;
          unicode::AppendRune(*out, v);
        }
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          if (i + 2 > s.size()) return false;
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (size_t k = 0; k < 2; ++k) {
            const char d = s[i + k];
            if (d < '0' || d > '7') return false;
            v = v * 8 + static_cast<uint32_t>(d - '0');
          }
          if (v > 255) return false;
          i += 2;
          out->push_back(static_cast<char>(v));
          break;
        }
        return false;
    }
  }
  return true;
}

bool Contains(const std::vector<std::string>& keys, std::string_view key) {
  for (const std::string& k : keys) {
    if (k == key) return true;
  }
  return false;
}

}  // namespace

JsonObfuscator::JsonObfuscator(const JsonObfuscationOptions& options, SqlTransform sql_transform)
    : keep_values_(options.keep_values), sql_values_(options.obfuscate_sql_values) {
  if (!sql_values_.empty()) sql_transform_ = std::move(sql_transform);
}

bool JsonObfuscator::IsKeepKey(std::string_view key) const { return Contains(keep_values_, key); }

bool JsonObfuscator::IsTransformKey(std::string_view key) const {
  return sql_transform_ && Contains(sql_values_, key);
}

std::string JsonObfuscator::Obfuscate(std::string_view json, bool* truncated) const {
  *truncated = false;
  std::string out;
  if (json.empty()) return out;
  out.reserve(json.size());
  JsonScanner scanner;
  std::vector<bool> closures;  // true: inside an object, false: inside an array
  std::string buffer;          // the current key, or the literal being collected for the SQL transform
  std::string unquoted;
  size_t keep_depth = 0;  // nesting level below which values are kept
  bool key = false;       // the current literal is an object key
  bool wiped = false;     // "?" already written for the current value
  bool keeping = false;   // under a keep_values key
  bool transforming = false;

  auto set_key = [&] {
    key = closures.empty() || closures.back();
    wiped = false;
  };

  for (char ch : json) {
    const auto c = static_cast<uint8_t>(ch);
    const Op op = scanner.Step(c);
    const size_t depth = closures.size();
    switch (op) {
      case Op::kBeginObject:
      case Op::kBeginArray:
        closures.push_back(op == Op::kBeginObject);
        set_key();
        transforming = false;
        break;
      case Op::kEndArray:
      case Op::kEndObject:
      case Op::kObjectValue:
      case Op::kArrayValue:
        // The outermost closure is never popped, as in the agent (it decides whether a following
        // top-level literal counts as a key).
        if ((op == Op::kEndArray || op == Op::kEndObject) && closures.size() > 1) closures.pop_back();
        set_key();
        if (transforming) {
          std::string_view value = Unquote(buffer, &unquoted) ? std::string_view(unquoted) : buffer;
          out.push_back('"');
          out.append(sql_transform_(value));
          out.push_back('"');
          transforming = false;
          buffer.clear();
        } else if (keeping && depth < keep_depth) {
          keeping = false;
        }
        break;
      case Op::kBeginLiteral:
      case Op::kContinue:
        if (transforming) {
          buffer.push_back(ch);
          continue;
        }
        if (key) {
          buffer.push_back(ch);
        } else if (!keeping) {
          if (!wiped) {
            out.append("\"?\"");
            wiped = true;
          }
          continue;
        }
        break;
      case Op::kObjectKey: {
        std::string_view k = buffer;
        while (!k.empty() && k.front() == '"') k.remove_prefix(1);
        while (!k.empty() && k.back() == '"') k.remove_suffix(1);
        if (!keeping && IsKeepKey(k)) {
          keeping = true;
          keep_depth = depth + 1;
        } else if (!transforming && IsTransformKey(k)) {
          // The string right after this key is SQL; anything but a literal cancels the transform.
          transforming = true;
        }
        buffer.clear();
        key = false;
        break;
      }
      case Op::kSkipSpace:
        continue;
      case Op::kError:
        // Malformed or cut short: keep what was obfuscated and mark that more followed.
        out.append("...");
        *truncated = true;
        return out;
      case Op::kEnd:
        break;
    }
    out.push_back(ch);
  }
  if (scanner.Eof() == Op::kError) {
    out.append("...");
    *truncated = true;
  }
  return out;
}

}  // namespace dogwatch::trace
