#pragma once
// The SQL tokenizer behind SQL obfuscation. It is deliberately not a SQL parser: it recognizes just
// enough (literals, comments, identifiers, a few keywords and operators) to let the filters in sql.cc
// replace literals and collapse lists, and it accepts the many dialects tracers send (MySQL, Postgres,
// MSSQL, Oracle, CQL, JDBC escapes). Its token boundaries and error cases follow the Datadog Agent's
// legacy obfuscator (pkg/obfuscate/sql_tokenizer.go) so that resources, and therefore stats keys, match
// the agent's for the same query.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dogwatch::trace::sqlobf {

// A token kind is either a character (for single-character tokens such as '(' or ',') or one of the
// named kinds below, all above the Unicode range.
using TokenKind = uint32_t;

inline constexpr TokenKind kEndChar = 0x110000;
enum : TokenKind {
  kLexError = 0x110001,
  kId,
  kLimit,
  kNull,
  kString,
  kDoubleQuotedString,
  kDollarQuotedString,
  kDollarQuotedFunc,
  kNumber,
  kBooleanLiteral,
  kValueArg,
  kListArg,
  kComment,
  kVariable,
  kSavepoint,
  kPreparedStatement,
  kEscapeSequence,
  kNullSafeEqual,
  kLE,
  kGE,
  kNE,
  kNot,
  kAs,
  kAlter,
  kDrop,
  kCreate,
  kGrant,
  kRevoke,
  kCommit,
  kBegin,
  kTruncate,
  kSelect,
  kFrom,
  kUpdate,
  kDelete,
  kInsert,
  kInto,
  kJoin,
  kTableName,
  kColonCast,
  kJsonSelect,          // ->
  kJsonSelectText,      // ->>
  kJsonSelectPath,      // #>
  kJsonSelectPathText,  // #>>
  kJsonContains,        // @>
  kJsonContainsLeft,    // <@
  kJsonKeyExists,       // ?
  kJsonAnyKeysExist,    // ?|
  kJsonAllKeysExist,    // ?&
  kJsonDelete,          // #-
  // Kinds produced by the filters, never by the tokenizer.
  kFilteredGroupable,
  kFilteredGroupableParenthesis,
  kFiltered,
  kFilteredBracketedIdentifier,
};

enum class Dbms { kGeneric, kPostgres, kSqlServer };
Dbms ParseDbms(std::string_view name);  // "postgresql", "mssql"; anything else is generic

struct Token {
  TokenKind kind = kEndChar;
  // Valid until the next Scan(): points into the query or into the tokenizer's scratch buffers.
  std::string_view text;
};

class SqlTokenizer {
 public:
  // `literal_escapes`: a backslash inside a string is an ordinary character (standard SQL) rather than
  // an escape (MySQL). The caller retries with the other setting when a query fails to tokenize.
  SqlTokenizer(std::string_view query, bool literal_escapes, Dbms dbms, bool dollar_quoted_func);

  Token Scan();

  // Set after a kLexError; "at position N: ..." like the agent's messages.
  const std::string& error() const { return error_; }
  bool seen_escape() const { return seen_escape_; }

 private:
  void Advance();
  std::string_view Bytes();  // input consumed since the previous call, excluding the current rune
  void SetError(std::string message);
  void SkipBlank();

  Token ScanIdentifier();
  Token ScanNumber(bool seen_decimal_point);
  Token ScanString(char32_t delim, TokenKind kind);
  Token ScanDollarQuotedString();
  Token ScanPreparedStatement();
  Token ScanEscapeSequence();
  Token ScanBindVar();
  Token ScanVariableIdentifier();
  Token ScanFormatParameter();
  Token ScanCommentToEndOfLine();
  Token ScanBlockComment();

  std::string_view query_;
  size_t pos_ = 0;        // byte offset of ch_
  size_t width_ = 0;      // bytes of ch_ in the input (0 at the end or on invalid UTF-8)
  size_t tok_start_ = 0;  // where the bytes of the token being scanned start
  char32_t ch_ = 0;       // current rune; kEndChar at the end or after invalid UTF-8
  // The agent's error position, which counts slightly differently from pos_; kept for messages only.
  int64_t error_pos_ = 0;
  uint32_t curlys_ = 0;  // open braces of a top-level JDBC escape such as {call proc(?)}
  bool literal_escapes_;
  bool seen_escape_ = false;
  bool has_error_ = false;
  Dbms dbms_;
  bool dollar_quoted_func_;
  std::string error_;
  std::string string_buffer_;  // unquoted string contents
  std::string dollar_buffer_;  // dollar-quoted function bodies
  std::string delimiter_;      // the $tag$ of a dollar-quoted string
};

}  // namespace dogwatch::trace::sqlobf
