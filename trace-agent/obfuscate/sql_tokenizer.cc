#include "trace-agent/obfuscate/sql_tokenizer.h"

#include <charconv>

#include "common/strings/strings.h"
#include "trace-agent/obfuscate/unicode.h"

namespace dogwatch::trace::sqlobf {
namespace {

bool IsDigit(char32_t c) { return c >= '0' && c <= '9'; }

// Identifier characters. '@' starts MSSQL/MySQL variables, '#' appears in MSSQL temp tables.
bool IsLeadingLetter(char32_t c) { return c == '_' || c == '@' || unicode::IsLetter(c); }
bool IsLetter(char32_t c) { return c == '#' || IsLeadingLetter(c); }

int DigitValue(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return 16;
}

bool IsValidCharAfterOperator(char32_t c) {
  return c == '(' || c == '`' || c == '\'' || c == '"' || c == '+' || c == '-' || unicode::IsSpace(c) ||
         IsLetter(c) || IsDigit(c);
}

// A rune as Go's %c prints it (invalid values print as U+FFFD).
std::string RuneText(char32_t c) {
  std::string out;
  unicode::AppendRune(out, c);
  return out;
}

struct Keyword {
  std::string_view upper;
  TokenKind kind;
};
constexpr Keyword kKeywords[] = {
    {"NULL", kNull},           {"TRUE", kBooleanLiteral}, {"FALSE", kBooleanLiteral},
    {"SAVEPOINT", kSavepoint}, {"LIMIT", kLimit},         {"AS", kAs},
    {"ALTER", kAlter},         {"CREATE", kCreate},       {"GRANT", kGrant},
    {"REVOKE", kRevoke},       {"COMMIT", kCommit},       {"BEGIN", kBegin},
    {"TRUNCATE", kTruncate},   {"DROP", kDrop},           {"SELECT", kSelect},
    {"FROM", kFrom},           {"UPDATE", kUpdate},       {"DELETE", kDelete},
    {"INSERT", kInsert},       {"INTO", kInto},           {"JOIN", kJoin},
};

TokenKind KeywordKind(std::string_view word) {
  if (word.size() < 2 || word.size() > 9) return kId;
  char upper[9];
  for (size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    upper[i] = (c >= 'a' && c <= 'z') ? static_cast<char>(c - ('a' - 'A')) : c;
  }
  const std::string_view key(upper, word.size());
  for (const Keyword& k : kKeywords) {
    if (k.upper == key) return k.kind;
  }
  return kId;
}

}  // namespace

Dbms ParseDbms(std::string_view name) {
  if (name == "postgresql") return Dbms::kPostgres;
  if (name == "mssql") return Dbms::kSqlServer;
  return Dbms::kGeneric;
}

SqlTokenizer::SqlTokenizer(std::string_view query, bool literal_escapes, Dbms dbms, bool dollar_quoted_func)
    : query_(query),
      literal_escapes_(literal_escapes),
      dbms_(dbms),
      dollar_quoted_func_(dollar_quoted_func) {}

void SqlTokenizer::Advance() {
  pos_ += width_;
  if (pos_ >= query_.size()) {
    pos_ = query_.size();
    width_ = 0;
    ch_ = kEndChar;
    ++error_pos_;
    return;
  }
  unicode::Decoded d = unicode::DecodeRune(query_, pos_);
  if (!d.valid) {
    // Invalid UTF-8 ends the input with an error; the offending byte is never consumed.
    width_ = 0;
    ch_ = kEndChar;
    ++error_pos_;
    char hex[8];
    auto res = std::to_chars(hex, hex + sizeof(hex), static_cast<uint8_t>(query_[pos_]), 16);
    SetError(strings::Cat("invalid UTF-8 encoding beginning with 0x", std::string_view(hex, res.ptr - hex)));
    return;
  }
  if (ch_ != 0 || error_pos_ > 0) error_pos_ += static_cast<int64_t>(d.width);
  width_ = d.width;
  ch_ = d.rune;
}

std::string_view SqlTokenizer::Bytes() {
  std::string_view out = query_.substr(tok_start_, pos_ - tok_start_);
  tok_start_ = pos_;
  return out;
}

void SqlTokenizer::SetError(std::string message) {
  if (has_error_) return;
  has_error_ = true;
  error_ = strings::Cat("at position ", error_pos_, ": ", message);
}

void SqlTokenizer::SkipBlank() {
  while (unicode::IsSpace(ch_)) Advance();
  Bytes();
}

Token SqlTokenizer::Scan() {
  if (ch_ == 0) Advance();
  SkipBlank();

  const char32_t ch = ch_;
  if (IsLeadingLetter(ch) && !(dbms_ == Dbms::kPostgres && ch == '@')) {
    // In Postgres '@' is an operator, not the start of an identifier.
    return ScanIdentifier();
  }
  if (IsDigit(ch)) return ScanNumber(false);

  Advance();
  if (ch_ == kEndChar && has_error_) return {kLexError, {}};  // invalid encoding right after `ch`
  switch (ch) {
    case kEndChar:
      if (has_error_) return {kLexError, {}};
      return {kEndChar, {}};
    case ':':
      if (ch_ == ':') {
        Advance();
        Bytes();
        return {kColonCast, "::"};
      }
      // "autovacuum: VACUUM ..." is a plain colon, ":name" a bind variable, ":=" an assignment.
      if (unicode::IsSpace(ch_)) return {':', Bytes()};
      if (ch_ != '=') return ScanBindVar();
      return {':', Bytes()};
    case '~':
      if (ch_ == '*') {
        Advance();
        Bytes();
        return {'~', "~*"};
      }
      return {'~', Bytes()};
    case '?':
      if (dbms_ == Dbms::kPostgres) {
        if (ch_ == '|') {
          Advance();
          Bytes();
          return {kJsonAnyKeysExist, "?|"};
        }
        if (ch_ == '&') {
          Advance();
          Bytes();
          return {kJsonAllKeysExist, "?&"};
        }
        return {kJsonKeyExists, Bytes()};
      }
      return {'?', Bytes()};
    case '=':
    case ',':
    case ';':
    case '(':
    case ')':
    case '+':
    case '*':
    case '&':
    case '|':
    case '^':
    case ']':
      return {ch, Bytes()};
    case '[':
      // MSSQL bracketed identifiers: [dbo].[table].
      if (dbms_ == Dbms::kSqlServer) return ScanString(']', kDoubleQuotedString);
      return {'[', Bytes()};
    case '.':
      if (IsDigit(ch_)) return ScanNumber(true);
      return {'.', Bytes()};
    case '/':
      if (ch_ == '/') {
        Advance();
        return ScanCommentToEndOfLine();
      }
      if (ch_ == '*') {
        Advance();
        return ScanBlockComment();
      }
      return {'/', Bytes()};
    case '-':
      if (ch_ == '-') {
        Advance();
        return ScanCommentToEndOfLine();
      }
      if (ch_ == '>' && dbms_ == Dbms::kPostgres) {
        Advance();
        if (ch_ == '>') {
          Advance();
          Bytes();
          return {kJsonSelectText, "->>"};
        }
        Bytes();
        return {kJsonSelect, "->"};
      }
      if (ch_ == '>' || IsDigit(ch_)) return ScanNumber(false);  // negative number (or "->" outside Postgres)
      if (ch_ == '.') {
        Advance();
        if (IsDigit(ch_)) return ScanNumber(true);
        // The agent steps back onto the '.' without moving its read offset: the current rune becomes a
        // '.' occupying the last byte read so far, so the token is "-." (plus any leading bytes of a
        // multi-byte rune after the dot) and the next token starts with that phantom '.'. Reproduced so
        // resources match the agent's.
        const size_t end = pos_ + width_;
        pos_ = end - 1;
        width_ = 1;
        ch_ = '.';
        --error_pos_;
      }
      return {'-', Bytes()};
    case '#':
      if (dbms_ == Dbms::kSqlServer) return ScanIdentifier();  // #temp and ##global temp tables
      if (dbms_ == Dbms::kPostgres) {
        if (ch_ == '>') {
          Advance();
          if (ch_ == '>') {
            Advance();
            Bytes();
            return {kJsonSelectPathText, "#>>"};
          }
          Bytes();
          return {kJsonSelectPath, "#>"};
        }
        if (ch_ == '-') {
          Advance();
          Bytes();
          return {kJsonDelete, "#-"};
        }
        return {'#', Bytes()};
      }
      Advance();  // MySQL comment; like the agent, the rune after '#' is skipped unconditionally
      return ScanCommentToEndOfLine();
    case '<':
      if (ch_ == '>') {
        Advance();
        Bytes();
        return {kNE, "<>"};
      }
      if (ch_ == '=') {
        Advance();
        if (ch_ == '>') {
          Advance();
          Bytes();
          return {kNullSafeEqual, "<=>"};
        }
        Bytes();
        return {kLE, "<="};
      }
      if (ch_ == '@' && dbms_ == Dbms::kPostgres) {
        Advance();
        Bytes();
        return {kJsonContainsLeft, "<@"};
      }
      return {'<', Bytes()};
    case '>':
      if (ch_ == '=') {
        Advance();
        Bytes();
        return {kGE, ">="};
      }
      return {'>', Bytes()};
    case '!':
      if (ch_ == '=') {
        Advance();
        Bytes();
        return {kNE, "!="};
      }
      if (ch_ == '~') {
        Advance();
        if (ch_ == '*') {
          Advance();
          Bytes();
          return {kNE, "!~*"};
        }
        Bytes();
        return {kNE, "!~"};
      }
      if (IsValidCharAfterOperator(ch_)) return {kNot, Bytes()};
      SetError(strings::Cat("unexpected char \"", RuneText(ch_), "\" (", static_cast<uint32_t>(ch_),
                            ") after \"!\""));
      return {kLexError, Bytes()};
    case '\'':
      return ScanString('\'', kString);
    case '"':
      return ScanString('"', kDoubleQuotedString);
    case '`':
      return ScanString('`', kId);
    case '%':
      if (ch_ == '(') return ScanVariableIdentifier();  // %(name)s
      if (IsLetter(ch_)) return ScanFormatParameter();  // %s
      return {'%', Bytes()};                            // modulo
    case '$':
      if (IsDigit(ch_)) return ScanPreparedStatement();  // $1
      // MSSQL MERGE ... OUTPUT $action: an identifier, not a dollar-quoted string.
      if (dbms_ == Dbms::kSqlServer && IsLetter(ch_)) return ScanIdentifier();
      return ScanDollarQuotedString();
    case '@':
      // Only reached for Postgres, where '@' is an operator.
      if (ch_ == '>') {
        Advance();
        Bytes();
        return {kJsonContains, "@>"};
      }
      return {'@', Bytes()};
    case '{':
      // A JDBC escape at the very start ({call proc(?)}) keeps its structure; elsewhere {fn ...} or
      // {d '...'} is a literal.
      if (error_pos_ == 1 || curlys_ > 0) {
        ++curlys_;
        return {'{', Bytes()};
      }
      return ScanEscapeSequence();
    case '}':
      if (curlys_ == 0) {
        SetError(strings::Cat("unexpected byte ", static_cast<uint32_t>(ch)));
        return {kLexError, Bytes()};
      }
      --curlys_;
      return {'}', Bytes()};
    default:
      SetError(strings::Cat("unexpected byte ", static_cast<uint32_t>(ch)));
      return {kLexError, Bytes()};
  }
}

Token SqlTokenizer::ScanIdentifier() {
  Advance();
  while (IsLetter(ch_) || IsDigit(ch_) || ch_ == '.' || ch_ == '*' || ch_ == '$') Advance();
  std::string_view text = Bytes();
  return {KeywordKind(text), text};
}

Token SqlTokenizer::ScanNumber(bool seen_decimal_point) {
  auto mantissa = [this](int base) {
    while (DigitValue(ch_) < base) Advance();
  };
  bool fraction = true;
  if (seen_decimal_point) {
    mantissa(10);
    fraction = false;  // straight to the exponent
  } else if (ch_ == '0') {
    Advance();
    if (ch_ == 'x' || ch_ == 'X') {
      Advance();
      mantissa(16);
      fraction = false;
      goto done;
    }
    mantissa(8);
    if (ch_ == '8' || ch_ == '9') mantissa(10);
    if (ch_ != '.' && ch_ != 'e' && ch_ != 'E') goto done;
  } else {
    mantissa(10);
  }
  if (fraction && ch_ == '.') {
    Advance();
    mantissa(10);
  }
  if (ch_ == 'e' || ch_ == 'E') {
    Advance();
    if (ch_ == '+' || ch_ == '-') Advance();
    mantissa(10);
  }
done:
  std::string_view text = Bytes();
  if (text.empty()) {
    SetError("Parse error: ended up with zero-length number.");
    return {kLexError, {}};
  }
  return {kNumber, text};
}

Token SqlTokenizer::ScanString(char32_t delim, TokenKind kind) {
  string_buffer_.clear();
  for (;;) {
    char32_t c = ch_;
    Advance();
    if (c == delim) {
      if (ch_ != delim) break;  // a doubled delimiter embeds the delimiter
      Advance();
    } else if (c == '\\') {
      seen_escape_ = true;
      if (!literal_escapes_) {
        c = ch_;
        Advance();
      }
    }
    if (c == kEndChar) {
      SetError("unexpected EOF in string");
      Bytes();
      return {kLexError, string_buffer_};
    }
    unicode::AppendRune(string_buffer_, c);
  }
  Bytes();
  bool blank = true;
  for (size_t i = 0; i < string_buffer_.size() && blank;) {
    unicode::Decoded d = unicode::DecodeRune(string_buffer_, i);
    blank = unicode::IsSpace(d.rune);
    i += d.width;
  }
  if (blank) {
    // An empty or blank string keeps its delimiters so the query stays well-formed (e.g. `` or "").
    string_buffer_.clear();
    unicode::AppendRune(string_buffer_, delim);
    unicode::AppendRune(string_buffer_, delim);
  }
  return {kind, string_buffer_};
}

Token SqlTokenizer::ScanDollarQuotedString() {
  Token tag = ScanString('$', kString);
  if (tag.kind == kLexError) return {kLexError, Bytes()};
  if (tag.text == "$$") {
    delimiter_ = "$$";
  } else {
    delimiter_ = strings::Cat("$", tag.text, "$");
  }
  const bool keep_body = dollar_quoted_func_ && delimiter_ == "$func$";
  dollar_buffer_.clear();
  size_t matched = 0;
  for (;;) {
    const char32_t c = ch_;
    Advance();
    if (c == kEndChar) {
      SetError("unexpected EOF in dollar-quoted string");
      Bytes();
      return {kLexError, {}};
    }
    // The agent compares the low byte of each rune against the delimiter and does not re-check a rune
    // that breaks a partial match; both quirks decide where the string ends, so they are kept.
    if (static_cast<uint8_t>(c & 0xFF) == static_cast<uint8_t>(delimiter_[matched])) {
      if (++matched == delimiter_.size()) break;
      continue;
    }
    if (keep_body) {
      dollar_buffer_.append(delimiter_, 0, matched);
      unicode::AppendRune(dollar_buffer_, c);
    }
    matched = 0;
  }
  Bytes();
  if (keep_body) return {kDollarQuotedFunc, dollar_buffer_};
  return {kDollarQuotedString, "?"};  // replaced by the filters anyway
}

Token SqlTokenizer::ScanPreparedStatement() {
  Token number = ScanNumber(false);
  if (number.kind == kLexError) {
    SetError("invalid number");
    return {kLexError, Bytes()};
  }
  return {kPreparedStatement, number.text};
}

Token SqlTokenizer::ScanEscapeSequence() {
  while (ch_ != '}' && ch_ != kEndChar) Advance();
  if (ch_ == kEndChar) {
    SetError("unexpected EOF in escape sequence");
    return {kLexError, Bytes()};
  }
  Advance();
  return {kEscapeSequence, Bytes()};
}

Token SqlTokenizer::ScanBindVar() {
  TokenKind kind = kValueArg;
  if (ch_ == ':') {
    kind = kListArg;
    Advance();
  }
  if (!IsLetter(ch_) && !IsDigit(ch_)) {
    SetError(strings::Cat("bind variables should start with letters or digits, got \"", RuneText(ch_), "\" (",
                          static_cast<uint32_t>(ch_), ")"));
    return {kLexError, Bytes()};
  }
  while (IsLetter(ch_) || IsDigit(ch_) || ch_ == '.') Advance();
  return {kind, Bytes()};
}

Token SqlTokenizer::ScanVariableIdentifier() {
  Advance();
  while (ch_ != ')' && ch_ != kEndChar) Advance();
  Advance();
  if (!IsLetter(ch_)) {
    SetError(strings::Cat("invalid character after variable identifier: \"", RuneText(ch_), "\" (",
                          static_cast<uint32_t>(ch_), ")"));
    return {kLexError, Bytes()};
  }
  Advance();
  return {kVariable, Bytes()};
}

Token SqlTokenizer::ScanFormatParameter() {
  Advance();
  return {kVariable, Bytes()};
}

Token SqlTokenizer::ScanCommentToEndOfLine() {
  while (ch_ != kEndChar) {
    if (ch_ == '\n') {
      Advance();
      break;
    }
    Advance();
  }
  return {kComment, Bytes()};
}

Token SqlTokenizer::ScanBlockComment() {
  for (;;) {
    if (ch_ == '*') {
      Advance();
      if (ch_ == '/') {
        Advance();
        break;
      }
      continue;
    }
    if (ch_ == kEndChar) {
      SetError("unexpected EOF in comment");
      return {kLexError, Bytes()};
    }
    Advance();
  }
  return {kComment, Bytes()};
}

}  // namespace dogwatch::trace::sqlobf
