#include "agent-core/forwarder/transport.h"

namespace dogwatch::forwarder {

HttpTransport::HttpTransport(http::ClientOptions options) : options_(std::move(options)) {
  options_.cancel = &cancelled_;
}

http::Client& HttpTransport::ClientForThisThread() {
  absl::MutexLock lock(&mu_);
  auto& client = clients_[std::this_thread::get_id()];
  if (client == nullptr) client = std::make_unique<http::Client>(options_);
  return *client;
}

absl::StatusOr<http::Response> HttpTransport::Send(
    const std::string& base_url, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body) {
  http::Request request;
  request.method = "POST";
  request.url = JoinUrl(base_url, path);
  request.headers = headers;
  request.body = body;
  // Only this thread ever uses its client, so the send itself runs without the map lock.
  return ClientForThisThread().Send(request);
}

void HttpTransport::CancelInFlight() { cancelled_.store(true); }

std::string JoinUrl(std::string_view base_url, std::string_view path) {
  while (!base_url.empty() && base_url.back() == '/') base_url.remove_suffix(1);
  std::string url(base_url);
  if (path.empty() || path.front() != '/') url.push_back('/');
  url.append(path);
  return url;
}

}  // namespace dogwatch::forwarder
