#include "common/http/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dogwatch::http {
namespace {

// curl_global_init is not safe to race with other threads using libcurl; do it exactly once.
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct BodySink {
  Response* response;
  size_t cap;
};

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t bytes = size * count;
  const size_t room = sink->cap - std::min(sink->cap, sink->response->body.size());
  sink->response->body.append(data, std::min(bytes, room));
  if (bytes > room) sink->response->body_truncated = true;
  // Report everything as consumed: the rest of an oversized body is read and discarded, which
  // keeps the connection reusable instead of failing the transfer.
  return bytes;
}

int CheckCancel(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel->load(std::memory_order_relaxed) ? 1 : 0;
}

bool HasLineBreakOrNul(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// Frees the request's header list on every return path.
struct HeaderListOwner {
  curl_slist** list;
  ~HeaderListOwner() { curl_slist_free_all(*list); }
};

}  // namespace

struct Client::State {
  CURL* handle = nullptr;
  char error[CURL_ERROR_SIZE] = {};
};

Client::Client(ClientOptions options) : options_(std::move(options)), state_(new State) {
  InitCurlOnce();
  state_->handle = curl_easy_init();
}

Client::~Client() {
  if (state_->handle != nullptr) curl_easy_cleanup(state_->handle);
}

absl::StatusOr<Response> Client::Send(const Request& request) {
  CURL* curl = state_->handle;
  if (curl == nullptr) return absl::InternalError("libcurl: could not create an easy handle");
  if (request.url.empty() || HasLineBreakOrNul(request.url)) {
    return absl::InvalidArgumentError("http request: empty URL or URL with a line break");
  }
  if (request.method.empty() || HasLineBreakOrNul(request.method) ||
      request.method.find(' ') != std::string::npos) {
    return absl::InvalidArgumentError("http request: invalid method");
  }

  // Reset drops the previous request's options but keeps live connections, DNS and TLS session
  // caches: that is what makes reuse worthwhile.
  curl_easy_reset(curl);
  state_->error[0] = '\0';

  curl_slist* header_list = nullptr;
  const HeaderListOwner owner{&header_list};
  auto append_header = [&header_list](const std::string& line) {
    curl_slist* next = curl_slist_append(header_list, line.c_str());
    if (next == nullptr) return false;  // the list so far is intact and still owned
    header_list = next;
    return true;
  };
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || HasLineBreakOrNul(name) || HasLineBreakOrNul(value) ||
        name.find(':') != std::string::npos) {
      return absl::InvalidArgumentError("http request: header with an invalid name or a line break");
    }
    // "Name;" is curl's syntax for a header sent with an empty value ("Name:" would remove it).
    const std::string line = value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value);
    if (!append_header(line)) return absl::ResourceExhaustedError("http request: out of memory");
  }
  // Otherwise curl labels every POST body as a form (application/x-www-form-urlencoded).
  const bool has_content_type =
      std::any_of(request.headers.begin(), request.headers.end(),
                  [](const auto& header) { return absl::EqualsIgnoreCase(header.first, "Content-Type"); });
  if (!has_content_type && !append_header("Content-Type:")) {
    return absl::ResourceExhaustedError("http request: out of memory");
  }
  // Without this curl waits for "100 Continue" before sending bodies over 1 MiB: a wasted round
  // trip (or a full second against servers that never send it).
  if (!append_header("Expect:")) return absl::ResourceExhaustedError("http request: out of memory");

  Response response;
  BodySink sink{&response, options_.max_response_body_bytes};

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, state_->error);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // we are multi-threaded; no SIGALRM for DNS
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect could carry the API key elsewhere
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, options_.skip_ssl_validation ? 0L : 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, options_.skip_ssl_validation ? 0L : 2L);
  // "" disables proxies even when http_proxy/https_proxy are in the environment.
  curl_easy_setopt(curl, CURLOPT_PROXY, options_.proxy.c_str());
  if (!options_.no_proxy.empty()) curl_easy_setopt(curl, CURLOPT_NOPROXY, options_.no_proxy.c_str());
  if (!options_.user_agent.empty()) {
    curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  if (options_.cancel != nullptr) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &CheckCancel);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(options_.cancel));
  }

  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    // A null pointer would make curl read the body from stdin, so an empty body points at "".
    const char* data = request.body.empty() ? "" : request.body.data();
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (request.method != "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) {
    return absl::CancelledError("http request cancelled before it started");
  }
  const CURLcode code = curl_easy_perform(curl);
  // The header list dies with this call; make sure the reused handle does not keep pointing at it.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  if (code == CURLE_ABORTED_BY_CALLBACK) {
    return absl::CancelledError(absl::StrCat(request.method, " ", request.url, ": cancelled"));
  }
  if (code != CURLE_OK) {
    const char* detail = state_->error[0] != '\0' ? state_->error : curl_easy_strerror(code);
    return absl::UnavailableError(absl::StrCat(request.method, " ", request.url, ": ", detail));
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace dogwatch::http
