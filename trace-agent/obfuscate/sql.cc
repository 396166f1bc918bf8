// SQL obfuscation: the tokenizer's tokens go through four filters, in the agent's order
// (pkg/obfuscate/sql.go), then are joined with single spaces:
//   metadata  - collects tables/commands/comments; marks table names
//   discard   - drops comments, ';' and AS aliases (MSSQL [bracketed] aliases included)
//   replace   - literals, bind parameters and placeholders become '?'; optional digit replacement
//   grouping  - collapses value lists: IN (?, ?, ?) -> IN ( ? ), VALUES (?), (?) -> VALUES ( ? )
// Each filter sees the previous token's final kind, which is what makes the collapsing work.

#include <algorithm>
#include <string>

#include "common/strings/strings.h"
#include "trace-agent/obfuscate/internal.h"
#include "trace-agent/obfuscate/sql_tokenizer.h"
#include "trace-agent/obfuscate/unicode.h"

namespace dogwatch::trace::obfuscate_internal {
namespace {

using namespace sqlobf;  // NOLINT(build/namespaces): the token kinds read better unqualified here

// $func$ bodies are obfuscated recursively; a crafted query could nest them deeply, so past this depth
// a body is treated as an ordinary string literal (replaced by '?').
constexpr int kMaxDollarFuncDepth = 8;

bool IsFilteredGroupable(TokenKind kind) {
  return kind == kFilteredGroupable || kind == kFilteredGroupableParenthesis;
}

TokenKind MarkFilteredGroupable(TokenKind kind) {
  return kind == '(' ? kFilteredGroupableParenthesis : kFilteredGroupable;
}

std::string_view CommandName(TokenKind kind) {
  switch (kind) {
    case kSelect:
      return "SELECT";
    case kUpdate:
      return "UPDATE";
    case kInsert:
      return "INSERT";
    case kDelete:
      return "DELETE";
    case kJoin:
      return "JOIN";
    case kAlter:
      return "ALTER";
    case kDrop:
      return "DROP";
    case kCreate:
      return "CREATE";
    case kGrant:
      return "GRANT";
    case kRevoke:
      return "REVOKE";
    case kCommit:
      return "COMMIT";
    case kBegin:
      return "BEGIN";
    case kTruncate:
      return "TRUNCATE";
    default:
      return {};
  }
}

// "jobs_2020_1597876964" -> "jobs_?_?".
void ReplaceDigits(std::string_view text, std::string* out) {
  out->clear();
  bool in_digits = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      if (!in_digits) out->push_back('?');
      in_digits = true;
      continue;
    }
    in_digits = false;
    out->push_back(c);
  }
}

// A token on its way through the filters. `present` false means the filters dropped its text.
struct FilterToken {
  TokenKind kind;
  std::string_view text;
  bool present;
};

class SqlObfuscation {
 public:
  SqlObfuscation(const SqlObfuscationOptions& options, Dbms dbms, int depth)
      : options_(options), dbms_(dbms), depth_(depth) {}

  absl::StatusOr<ObfuscatedQuery> Run(std::string_view query, bool literal_escapes, bool* seen_escape) {
    SqlTokenizer tokenizer(query, literal_escapes, dbms_, options_.dollar_quoted_func);
    std::string out;
    out.reserve(query.size());
    TokenKind last = 0;
    for (;;) {
      Token token = tokenizer.Scan();
      if (seen_escape != nullptr) *seen_escape = tokenizer.seen_escape();
      if (token.kind == kEndChar) break;
      if (token.kind == kLexError) {
        return absl::InvalidArgumentError(tokenizer.error().empty() ? "<nil>" : tokenizer.error());
      }
      if (token.kind == kDollarQuotedFunc) EmbeddedQuery(token, literal_escapes);

      FilterToken t{token.kind, token.text, true};
      Metadata(t, last);
      if (absl::Status status = Discard(t, last); !status.ok()) return status;
      Replace(t, last);
      Group(t, last);
      if (t.present) {
        if (!out.empty() && t.kind != ',' && !(t.kind == '=' && last == ':')) out.push_back(' ');
        out.append(t.text);
      }
      last = t.kind;
    }
    if (out.empty()) return absl::InvalidArgumentError("result is empty");
    ObfuscatedQuery result;
    result.query = std::move(out);
    result.metadata = std::move(metadata_);
    return result;
  }

 private:
  // The body of $func$...$func$ (dollar_quoted_func) is itself a query: obfuscate it in place, or fall
  // back to treating it as a string literal.
  void EmbeddedQuery(Token& token, bool literal_escapes) {
    if (depth_ >= kMaxDollarFuncDepth) {
      token.kind = kDollarQuotedString;
      return;
    }
    SqlObfuscation inner(options_, dbms_, depth_ + 1);
    absl::StatusOr<ObfuscatedQuery> body = inner.Run(token.text, literal_escapes, nullptr);
    if (!body.ok()) {
      token.kind = kDollarQuotedString;
      return;
    }
    func_text_ = strings::Cat("$func$", body->query, "$func$");
    token.text = func_text_;
  }

  void Metadata(FilterToken& t, TokenKind last) {
    if (options_.collect_comments && t.kind == kComment) {
      std::string comment(t.text);
      std::replace(comment.begin(), comment.end(), '\n', ' ');
      std::string trimmed(unicode::TrimSpace(comment));
      metadata_.size += trimmed.size();
      metadata_.comments.push_back(std::move(trimmed));
    }
    if (options_.collect_commands) {
      std::string_view command = CommandName(t.kind);
      if (!command.empty()) {
        metadata_.size += command.size();
        metadata_.commands.emplace_back(command);
      }
    }
    if (!options_.table_names) return;
    bool is_table = false;
    if (last == kFrom || last == kJoin) {
      // FROM ( SELECT ...: a nested query, not a table.
      const unicode::Decoded first = unicode::DecodeRune(t.text, 0);
      is_table = first.valid && unicode::IsLetter(first.rune);
    } else if (last == kUpdate || last == kInto) {
      is_table = true;
    }
    if (!is_table) return;
    std::string name(t.text);
    if (options_.replace_digits) {
      std::string replaced;
      ReplaceDigits(name, &replaced);
      name = std::move(replaced);
    }
    StoreTable(std::move(name));
    t.kind = kTableName;
  }

  void StoreTable(std::string name) {
    if (std::find(tables_seen_.begin(), tables_seen_.end(), name) != tables_seen_.end()) return;
    if (!metadata_.tables_csv.empty()) {
      metadata_.tables_csv.push_back(',');
      ++metadata_.size;
    }
    metadata_.size += name.size();
    metadata_.tables_csv.append(name);
    tables_seen_.push_back(std::move(name));
  }

  absl::Status Discard(FilterToken& t, TokenKind last) {
    bool after_alias = last == kAs;
    if (last == kFilteredBracketedIdentifier) {
      if (t.kind != ']') {
        // Inside an MSSQL bracketed alias ("AS [alias]") only identifiers may appear.
        if (t.kind != kId) {
          return absl::InvalidArgumentError(
              strings::Cat("expected identifier in bracketed filter, got ", t.kind));
        }
        t = {kFilteredBracketedIdentifier, {}, false};
        return absl::OkStatus();
      }
      after_alias = true;  // the closing bracket is handled like the alias itself
    }
    if (after_alias) {
      if (t.kind == '[') {
        t = {kFilteredBracketedIdentifier, {}, false};
      } else if (!options_.keep_sql_alias) {
        t = {kFiltered, {}, false};
      }
      return absl::OkStatus();
    }
    if (t.kind == kComment) {
      t = {kFiltered, {}, false};
    } else if (t.kind == ';') {
      t = {MarkFilteredGroupable(t.kind), {}, false};
    } else if (t.kind == kAs && !options_.keep_sql_alias) {
      t.present = false;
    }
    return absl::OkStatus();
  }

  void Replace(FilterToken& t, TokenKind last) {
    // These apply even to a token the discard filter dropped, as in the agent.
    if (last == kSavepoint || (last == '=' && t.kind == kDoubleQuotedString)) {
      t = {MarkFilteredGroupable(t.kind), "?", true};
      return;
    }
    switch (t.kind) {
      case kDollarQuotedString:
      case kString:
      case kNumber:
      case kNull:
      case kVariable:
      case kPreparedStatement:
      case kBooleanLiteral:
      case kEscapeSequence:
      case '?':  // ARRAY [ ?, ? ] collapses like literals
        t = {MarkFilteredGroupable(t.kind), "?", true};
        return;
      case kTableName:
      case kId:
        if (options_.replace_digits && t.present) {
          ReplaceDigits(t.text, &digits_text_);
          t.text = digits_text_;
        }
        return;
      default:
        return;
    }
  }

  void Group(FilterToken& t, TokenKind last) {
    if ((last == '(' && IsFilteredGroupable(t.kind)) || (t.kind == '(' && group_multi_ > 0)) ++group_multi_;
    const bool starts_subquery = t.kind == kSelect || t.kind == kDelete || t.kind == kUpdate || t.kind == kId;
    if (group_multi_ > 0 && last == kFilteredGroupableParenthesis && starts_subquery) {
      // "( SELECT" after a dropped '(': a nested query, not another value group.
      group_filter_ = group_multi_ = 0;
      group_text_ = strings::Cat("( ", t.present ? t.text : std::string_view());
      t.text = group_text_;
      t.present = true;
      return;
    }
    if (IsFilteredGroupable(t.kind)) {
      if (++group_filter_ > 1) t = {MarkFilteredGroupable(t.kind), {}, false};
      return;
    }
    if (group_filter_ > 0 && (t.kind == ',' || t.kind == '?')) {
      t = {MarkFilteredGroupable(t.kind), {}, false};
      return;
    }
    if (group_multi_ > 1) {
      t = {MarkFilteredGroupable(t.kind), {}, false};
      return;
    }
    if (t.kind != ',' && t.kind != '(' && t.kind != ')') group_filter_ = group_multi_ = 0;
  }

  const SqlObfuscationOptions& options_;
  const Dbms dbms_;
  const int depth_;
  SqlMetadata metadata_;
  std::vector<std::string> tables_seen_;
  int group_filter_ = 0;  // values in the current group: 3 for ( ?, ?, ? )
  int group_multi_ = 0;   // groups in a row: 2 for ( ?, ? ), ( ?, ? )
  std::string func_text_;
  std::string digits_text_;
  std::string group_text_;
};

}  // namespace

absl::StatusOr<ObfuscatedQuery> ObfuscateSqlOnce(std::string_view query, const SqlObfuscationOptions& options,
                                                 bool literal_escapes, bool* seen_escape) {
  SqlObfuscation obfuscation(options, ParseDbms(options.dbms), 0);
  return obfuscation.Run(query, literal_escapes, seen_escape);
}

}  // namespace dogwatch::trace::obfuscate_internal
