#include "scheduled_events.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

namespace cohort::runner {

namespace {

// A Scheduled Events document is a few hundred bytes; anything this large is not one.
constexpr std::size_t kMaxBody = 1 << 20;

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > kMaxBody) return 0;  // curl ends the transfer with a write error
  body->append(data, size * n);
  return size * n;
}

// libcurl's global state: once per process, before any thread uses it.
void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

std::string string_field(const nlohmann::json& e, const char* key) {
  auto it = e.find(key);
  return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<std::int64_t> parse_http_date(std::string_view text) {
  const std::string s(text);
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') {
    return invalid_argument("'" + s + "' is not an HTTP date such as 'Mon, 19 Sep 2016 18:29:47 GMT'");
  }
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

Result<std::optional<PreemptEvent>> parse_scheduled_events(std::string_view body, const std::vector<std::string>& names,
                                                           std::int64_t now_unix_ms) {
  const auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return invalid_argument("the scheduled events document is not a JSON object");
  }
  auto events = doc.find("Events");
  if (events == doc.end()) return invalid_argument("the scheduled events document has no Events");
  if (!events->is_array()) return invalid_argument("Events is not an array");
  for (std::size_t i = 0; i < events->size(); ++i) {
    const auto& e = (*events)[i];
    const std::string where = "Events[" + std::to_string(i) + "]";
    if (!e.is_object()) return invalid_argument(where + " is not an object");
    if (string_field(e, "EventType") != "Preempt") continue;
    auto resources = e.find("Resources");
    bool ours = resources == e.end() || (resources->is_array() && resources->empty());
    if (!ours) {
      if (!resources->is_array()) return invalid_argument(where + ".Resources is not an array");
      ours = std::any_of(resources->begin(), resources->end(), [&](const nlohmann::json& r) {
        return r.is_string() && std::find(names.begin(), names.end(), r.get<std::string>()) != names.end();
      });
    }
    if (!ours) continue;
    PreemptEvent p{string_field(e, "EventId"), now_unix_ms};
    const std::string not_before = string_field(e, "NotBefore");
    // Started: the machine is going now. Azure leaves NotBefore empty then.
    if (string_field(e, "EventStatus") != "Started" && !not_before.empty()) {
      auto t = parse_http_date(not_before);
      if (!t.ok()) return invalid_argument(where + ".NotBefore: " + t.status().message());
      p.deadline_unix_ms = *t;
    }
    return std::optional<PreemptEvent>(std::move(p));
  }
  return std::optional<PreemptEvent>();
}

Result<std::string> fetch_scheduled_events(const std::string& url, std::chrono::milliseconds timeout) {
  init_curl();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return internal_error("curl_easy_init failed");
  std::unique_ptr<curl_slist, SlistDeleter> headers(curl_slist_append(nullptr, "Metadata: true"));
  std::string body;
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  // The metadata endpoint is link-local: a proxy from the environment must not see it (Azure's
  // own guidance).
  curl_easy_setopt(curl.get(), CURLOPT_NOPROXY, "*");
  const CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    return Status(Code::kUnavailable, "GET " + url + ": " + (error[0] != '\0' ? error : curl_easy_strerror(rc)));
  }
  long http = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &http);
  if (http != 200 && http != 0) {  // 0: a file:// URL, which has no status
    return internal_error("GET " + url + ": HTTP " + std::to_string(http) + ": " + body.substr(0, 200));
  }
  return body;
}

}  // namespace cohort::runner
