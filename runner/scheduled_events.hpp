// A cloud's preemption notice, read from its instance metadata endpoint, shaped like Azure's
// Scheduled Events (GET .../metadata/scheduledevents?api-version=2020-07-01 with the header
// `Metadata: true`):
//
//   {"DocumentIncarnation": 3, "Events": [{"EventId": "...", "EventType": "Preempt",
//     "ResourceType": "VirtualMachine", "Resources": ["vm-1"], "EventStatus": "Scheduled",
//     "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT", ...}]}
//
// The runner polls it (at most every 5 s) on a thread of its own and treats a Preempt event for
// this machine as the provider's notice: the jobs hear of it at once and the manager with the
// next heartbeat.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/status.hpp"

namespace cohort::runner {

struct PreemptEvent {
  std::string event_id;
  std::int64_t deadline_unix_ms = 0;  // NotBefore; `now` when the event has started or has none
};

// The first Preempt event of `body` that names one of `names` in its Resources (or names no
// resource at all: the whole machine). nullopt when there is none. InvalidArgument naming the
// field when the document is not Scheduled Events JSON.
Result<std::optional<PreemptEvent>> parse_scheduled_events(std::string_view body, const std::vector<std::string>& names,
                                                           std::int64_t now_unix_ms);

// "Mon, 19 Sep 2016 18:29:47 GMT" (RFC 7231's IMF-fixdate, as Azure writes NotBefore) to Unix ms.
Result<std::int64_t> parse_http_date(std::string_view text);

// One GET of `url` with `Metadata: true`, bounded by `timeout`. Unavailable (with curl's
// reason) when it cannot connect, Internal for an HTTP status other than 200.
Result<std::string> fetch_scheduled_events(const std::string& url, std::chrono::milliseconds timeout);

}  // namespace cohort::runner
