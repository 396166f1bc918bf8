// http.url obfuscation (pkg/obfuscate/http.go). The agent parses the URL with Go's net/url and prints it
// back, so the output depends on that package's rules: which URLs are rejected, how the scheme is
// lower-cased, which characters of the path and fragment are percent-encoded. The parser below follows
// those rules for every URL component the obfuscator touches.

#include <array>
#include <string>
#include <string_view>

#include "trace-agent/obfuscate/internal.h"

namespace dogwatch::trace::obfuscate_internal {
namespace {

enum class Mode { kPath, kHost, kUserPassword, kFragment };

constexpr std::string_view kRedacted = "/REDACTED/";

constexpr bool IsAlnum(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool IsHex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
uint8_t HexValue(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// RFC 3986's sub-delims, which net/url lets a host carry and leaves alone in every encoded component.
constexpr bool IsSubDelim(uint8_t c) {
  switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}

// RFC 3986 as net/url applies it: which bytes must be percent-encoded in each component.
constexpr bool ShouldEscape(uint8_t c, Mode mode) {
  if (IsAlnum(c)) return false;
  if (mode == Mode::kHost &&
      (IsSubDelim(c) || c == ':' || c == '[' || c == ']' || c == '<' || c == '>' || c == '"')) {
    return false;
  }
  switch (c) {
    case '-':
    case '_':
    case '.':
    case '~':
      return false;
    case '$':
    case '&':
    case '+':
    case ',':
    case '/':
    case ':':
    case ';':
    case '=':
    case '?':
    case '@':
      switch (mode) {
        case Mode::kPath:
          return c == '?';
        case Mode::kUserPassword:
          return c == '@' || c == '/' || c == '?' || c == ':';
        case Mode::kFragment:
          return false;
        case Mode::kHost:
          break;
      }
      break;
    default:
      break;
  }
  if (mode == Mode::kFragment && (c == '!' || c == '(' || c == ')' || c == '*')) return false;
  return true;
}

// Whether text[i] ('%') starts a well-formed escape: two hex digits follow.
bool ValidEscapeAt(std::string_view text, size_t i) {
  return i + 2 < text.size() && IsHex(static_cast<uint8_t>(text[i + 1])) &&
         IsHex(static_cast<uint8_t>(text[i + 2]));
}

// Percent-decoding with net/url's validation. Returns false for a malformed escape (and, in host mode,
// for escapes of ASCII bytes other than %25 and for characters a host may not contain).
bool Unescape(std::string_view text, Mode mode, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c == '%') {
      if (!ValidEscapeAt(text, i)) return false;
      if (mode == Mode::kHost && HexValue(static_cast<uint8_t>(text[i + 1])) < 8 &&
          text.substr(i, 3) != "%25") {
        return false;
      }
      out->push_back(static_cast<char>(HexValue(static_cast<uint8_t>(text[i + 1])) * 16 +
                                       HexValue(static_cast<uint8_t>(text[i + 2]))));
      i += 3;
      continue;
    }
    if (mode == Mode::kHost && c < 0x80 && ShouldEscape(c, mode)) return false;
    out->push_back(static_cast<char>(c));
    ++i;
  }
  return true;
}

void Escape(std::string_view text, Mode mode, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : text) {
    const auto c = static_cast<uint8_t>(ch);
    if (ShouldEscape(c, mode)) {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
}

// Whether byte `c` of a component can be printed as is (net/url's validEncoded: the sub-delims, ':',
// '@', '[', ']' and '%', whose escapes are left alone, plus what the component need not escape).
constexpr bool ValidEncodedByte(uint8_t c, Mode mode) {
  if (IsSubDelim(c) || c == ':' || c == '@' || c == '[' || c == ']' || c == '%') return true;
  return !ShouldEscape(c, mode);
}

// Whether `text` can be printed as is (only characters the component allows, escapes left alone).
bool ValidEncoded(std::string_view text, Mode mode) {
  for (char ch : text) {
    if (!ValidEncodedByte(static_cast<uint8_t>(ch), mode)) return false;
  }
  return true;
}

bool ValidOptionalPort(std::string_view port) {
  if (port.empty()) return true;
  if (port[0] != ':') return false;
  for (char c : port.substr(1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool ValidUserinfo(std::string_view userinfo) {
  for (char ch : userinfo) {
    const auto c = static_cast<uint8_t>(ch);
    if (IsAlnum(c) || IsSubDelim(c)) continue;
    switch (c) {
      case '-':
      case '.':
      case '_':
      case ':':
      case '~':
      case '%':
      case '@':
        continue;
      default:
        return false;  // includes every non-ASCII byte
    }
  }
  return true;
}

struct ParsedUrl {
  std::string scheme;  // lower-cased
  std::string_view opaque;
  bool has_opaque = false;
  std::string host;  // decoded
  bool omit_host = false;
  std::string path;            // decoded
  std::string_view raw_path;   // as written
  bool force_query = false;    // "?" with nothing after it
  std::string_view raw_query;  // without the '?'
  std::string fragment;        // decoded
  std::string_view raw_fragment;
};

bool ParseHost(std::string_view host, std::string* out) {
  if (!host.empty() && host[0] == '[') {
    const size_t close = host.rfind(']');
    if (close == std::string_view::npos) return false;
    if (!ValidOptionalPort(host.substr(close + 1))) return false;
    // IPv6 zones (fe80::1%25en0) may contain escapes a host may not: validate the parts separately.
    const size_t zone = host.substr(0, close).find("%25");
    if (zone != std::string_view::npos) {
      std::string part;
      out->clear();
      if (!Unescape(host.substr(0, zone), Mode::kHost, &part)) return false;
      out->append(part);
      if (!Unescape(host.substr(zone, close - zone), Mode::kFragment, &part)) return false;
      out->append(part);
      if (!Unescape(host.substr(close), Mode::kHost, &part)) return false;
      out->append(part);
      return true;
    }
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    if (!ValidOptionalPort(host.substr(colon))) return false;
  }
  return Unescape(host, Mode::kHost, out);
}

bool ParseUrl(std::string_view url, ParsedUrl* u) {
  std::string_view main = url;
  if (const size_t hash = url.find('#'); hash != std::string_view::npos) {
    main = url.substr(0, hash);
    u->raw_fragment = url.substr(hash + 1);
    if (!Unescape(u->raw_fragment, Mode::kFragment, &u->fragment)) return false;
  }
  for (char c : main) {
    if (static_cast<uint8_t>(c) < 0x20 || c == 0x7f) return false;  // control characters
  }
  if (main == "*") {
    u->path = "*";
    u->raw_path = main;
    return true;
  }

  std::string_view rest = main;
  for (size_t i = 0; i < main.size(); ++i) {
    const auto c = static_cast<uint8_t>(main[i]);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) continue;
    if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
      if (i == 0) break;
      continue;
    }
    if (c == ':') {
      if (i == 0) return false;  // missing protocol scheme
      for (char s : main.substr(0, i)) {
        u->scheme.push_back((s >= 'A' && s <= 'Z') ? static_cast<char>(s + ('a' - 'A')) : s);
      }
      rest = main.substr(i + 1);
    }
    break;
  }

  if (!rest.empty() && rest.back() == '?' && rest.find('?') == rest.size() - 1) {
    u->force_query = true;
    rest.remove_suffix(1);
  } else if (const size_t q = rest.find('?'); q != std::string_view::npos) {
    u->raw_query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }

  if (rest.empty() || rest[0] != '/') {
    if (!u->scheme.empty()) {
      // "mailto:x@y": a rootless path is opaque and not parsed further.
      u->opaque = rest;
      u->has_opaque = !rest.empty();
      return true;
    }
    // Avoid confusion with malformed schemes, like cache_object:foo/bar.
    if (rest.substr(0, rest.find('/')).find(':') != std::string_view::npos) return false;
  }

  if ((!u->scheme.empty() || rest.substr(0, 3) != "///") && rest.substr(0, 2) == "//") {
    std::string_view authority = rest.substr(2);
    rest = {};
    if (const size_t slash = authority.find('/'); slash != std::string_view::npos) {
      rest = authority.substr(slash);
      authority = authority.substr(0, slash);
    }
    const size_t at = authority.rfind('@');
    if (!ParseHost(at == std::string_view::npos ? authority : authority.substr(at + 1), &u->host)) {
      return false;
    }
    if (at != std::string_view::npos) {
      // The userinfo is dropped, but an invalid one still makes the URL invalid.
      std::string_view userinfo = authority.substr(0, at);
      std::string scratch;
      if (!ValidUserinfo(userinfo)) return false;
      const size_t colon = userinfo.find(':');
      if (!Unescape(userinfo.substr(0, colon), Mode::kUserPassword, &scratch)) return false;
      if (colon != std::string_view::npos &&
          !Unescape(userinfo.substr(colon + 1), Mode::kUserPassword, &scratch)) {
        return false;
      }
    }
  } else if (!u->scheme.empty() && !rest.empty() && rest[0] == '/') {
    u->omit_host = true;
  }

  u->raw_path = rest;
  return Unescape(rest, Mode::kPath, &u->path);
}

// URL.String() with the userinfo removed.
std::string Serialize(const ParsedUrl& u, bool path_changed) {
  std::string out;
  out.reserve(u.raw_path.size() + u.host.size() + u.raw_query.size() + u.raw_fragment.size() + 16);
  if (!u.scheme.empty()) {
    out.append(u.scheme);
    out.push_back(':');
  }
  if (u.has_opaque) {
    out.append(u.opaque);
  } else {
    if (!u.scheme.empty() || !u.host.empty()) {
      if (!(u.omit_host && u.host.empty())) {
        if (!u.host.empty() || !u.path.empty()) out.append("//");
        Escape(u.host, Mode::kHost, &out);
      }
    }
    std::string path;
    if (!path_changed && ValidEncoded(u.raw_path, Mode::kPath)) {
      path.assign(u.raw_path);
    } else {
      Escape(u.path, Mode::kPath, &path);
    }
    if (!path.empty() && path[0] != '/' && !u.host.empty()) out.push_back('/');
    if (out.empty() && path.substr(0, path.find('/')).find(':') != std::string::npos) out.append("./");
    out.append(path);
  }
  if (u.force_query || !u.raw_query.empty()) {
    out.push_back('?');
    out.append(u.raw_query);
  }
  if (!u.fragment.empty()) {
    out.push_back('#');
    if (ValidEncoded(u.raw_fragment, Mode::kFragment)) {
      out.append(u.raw_fragment);
    } else {
      Escape(u.fragment, Mode::kFragment, &out);
    }
  }
  return out;
}

void ReplaceAll(std::string& text, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// The path bytes UrlKeptVerbatim accepts (besides '%', checked first): what the serializer prints back
// as is in a path, less '[' and ']', which the shortcut leaves to the full parser; '#' (a fragment),
// controls and non-ASCII bytes are not among them. A table built at compile time from ValidEncodedByte:
// one load per byte on the hot path instead of its switches.
constexpr std::array<bool, 256> kVerbatimPathByte = [] {
  std::array<bool, 256> table{};
  for (size_t c = 0; c < table.size(); ++c) {
    table[c] = c != '[' && c != ']' && ValidEncodedByte(static_cast<uint8_t>(c), Mode::kPath);
  }
  return table;
}();
static_assert(!kVerbatimPathByte['#'] && !kVerbatimPathByte['?'] && !kVerbatimPathByte['['] &&
              !kVerbatimPathByte[0x00] && !kVerbatimPathByte[0x7f] && !kVerbatimPathByte[0x80]);

}  // namespace

bool UrlKeptVerbatim(std::string_view url) {
  // The URLs tracers send are almost always "scheme://host[:port]/path[?query]" in canonical form,
  // which net/url prints back byte for byte: recognizing them in one pass saves parsing, decoding and
  // re-encoding every http.url (7% of the trace-agent's CPU). Anything unusual (userinfo, fragments,
  // escapes in the host, upper-case schemes, IPv6 literals) takes the full parser. A URL net/url would
  // reject is returned unchanged by the default obfuscation too, so a query string is never looked at.
  size_t i = 0;
  const size_t n = url.size();
  if (n > 0 && url[0] == '/') {
    if (n > 1 && url[1] == '/') return false;  // network-path reference: authority rules apply
  } else {
    // scheme: [a-z][a-z0-9+.-]*, then "://"
    if (n == 0 || !(url[0] >= 'a' && url[0] <= 'z')) return false;
    for (i = 1; i < n; ++i) {
      const auto c = static_cast<uint8_t>(url[i]);
      if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') continue;
      break;
    }
    if (url.substr(i, 3) != "://") return false;
    i += 3;
    // host[:port]: letters, digits, '-', '.', at most one ':' followed by digits only.
    const size_t host_start = i;
    bool port = false;
    for (; i < n && url[i] != '/' && url[i] != '?'; ++i) {
      const auto c = static_cast<uint8_t>(url[i]);
      if (port) {
        if (c < '0' || c > '9') return false;
      } else if (c == ':') {
        port = true;
      } else if (!IsAlnum(c) && c != '-' && c != '.') {
        return false;  // '@' (userinfo), '%', '[', '#', controls, non-ASCII...
      }
    }
    if (i == host_start || url[host_start] == ':') return false;
  }
  // path, up to the query
  for (; i < n && url[i] != '?'; ++i) {
    const auto c = static_cast<uint8_t>(url[i]);
    if (c == '%') {
      if (!ValidEscapeAt(url, i)) return false;
      i += 2;
      continue;
    }
    if (!kVerbatimPathByte[c]) return false;
  }
  // query: copied verbatim by the serializer, or the whole URL is (unparsable); only a fragment,
  // which the parser splits off before anything else, changes that.
  return url.find('#', i) == std::string_view::npos;
}

std::string ObfuscateUrlString(std::string_view url, const HttpObfuscationOptions& options) {
  if (KeepsAllButUserinfo(options) && UrlKeptVerbatim(url)) return std::string(url);
  return ObfuscateUrlStringParsed(url, options);
}

std::string ObfuscateUrlStringParsed(std::string_view url, const HttpObfuscationOptions& options) {
  ParsedUrl u;
  const bool parsed = ParseUrl(url, &u);
  if (KeepsAllButUserinfo(options)) {
    // Only the userinfo goes; an unparsable URL is left alone, as the agent does.
    return parsed ? Serialize(u, false) : std::string(url);
  }
  // Better to hide everything than to expose a URL we could not take apart.
  if (!parsed) return "?";
  if (options.remove_query_string && !u.raw_query.empty()) {
    u.force_query = true;
    u.raw_query = {};
  }
  bool path_changed = false;
  if (options.remove_paths_with_digits) {
    std::string path;
    path.reserve(u.path.size());
    size_t start = 0;
    for (;;) {
      const size_t slash = u.path.find('/', start);
      std::string_view segment = std::string_view(u.path).substr(start, slash - start);
      if (start > 0) path.push_back('/');
      if (segment.find_first_of("0123456789") != std::string_view::npos) {
        // A placeholder the path escaping leaves alone; becomes '?' below.
        path.append(kRedacted);
        path_changed = true;
      } else {
        path.append(segment);
      }
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    if (path_changed) u.path = std::move(path);
  }
  std::string out = Serialize(u, path_changed);
  // Like the agent, over the whole URL (a literal "/REDACTED/" anywhere is replaced too).
  ReplaceAll(out, kRedacted, "?");
  return out;
}

}  // namespace dogwatch::trace::obfuscate_internal
