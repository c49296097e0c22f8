// The cloud's preemption notice: Azure Scheduled Events documents parsed (which event is ours,
// its deadline, what is malformed), and fetched over HTTP with the header Azure requires.
#include <gtest/gtest.h>

#include "metadata_server.hpp"
#include "scheduled_events.hpp"

namespace cohort::runner {
namespace {

using namespace std::chrono_literals;

// Azure's own example document, with a second event for another machine.
constexpr const char* kDocument = R"({
  "DocumentIncarnation": 3,
  "Events": [
    {"EventId": "AAAA", "EventType": "Reboot", "ResourceType": "VirtualMachine", "Resources": ["vm-1"],
     "EventStatus": "Scheduled", "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT", "DurationInSeconds": -1},
    {"EventId": "BBBB", "EventType": "Preempt", "ResourceType": "VirtualMachine", "Resources": ["vm-2"],
     "EventStatus": "Scheduled", "NotBefore": "Mon, 19 Sep 2016 18:30:17 GMT", "EventSource": "Platform"},
    {"EventId": "CCCC", "EventType": "Preempt", "ResourceType": "VirtualMachine", "Resources": ["vm-1", "vm-3"],
     "EventStatus": "Scheduled", "NotBefore": "Mon, 19 Sep 2016 18:30:47 GMT", "EventSource": "Platform"}
  ]
})";
constexpr std::int64_t kNow = 1474309700000;  // 2016-09-19T18:28:20Z

TEST(ScheduledEventsTest, HttpDatesAreUtc) {
  auto t = parse_http_date("Mon, 19 Sep 2016 18:29:47 GMT");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(*t, 1474309787000);
  EXPECT_FALSE(parse_http_date("2016-09-19T18:29:47Z").ok());
  EXPECT_FALSE(parse_http_date("Mon, 19 Sep 2016 18:29:47 GMT trailing").ok());
}

TEST(ScheduledEventsTest, OnlyAPreemptOfThisMachineIsANotice) {
  auto e = parse_scheduled_events(kDocument, {"vm-1"}, kNow);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  ASSERT_TRUE(e->has_value()) << "CCCC names vm-1";
  EXPECT_EQ((*e)->event_id, "CCCC");
  EXPECT_EQ((*e)->deadline_unix_ms, 1474309847000);

  e = parse_scheduled_events(kDocument, {"cohort-node-1", "vm-2"}, kNow);
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->has_value());
  EXPECT_EQ((*e)->event_id, "BBBB") << "any of the names matches";

  e = parse_scheduled_events(kDocument, {"vm-9"}, kNow);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->has_value()) << "a Reboot, and Preempts of other machines";

  e = parse_scheduled_events(R"({"DocumentIncarnation": 0, "Events": []})", {"vm-1"}, kNow);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->has_value());
}

TEST(ScheduledEventsTest, AnEventNamingNoResourceIsTheWholeMachineAndAStartedOneIsNow) {
  auto e = parse_scheduled_events(
      R"({"Events": [{"EventId": "X", "EventType": "Preempt", "EventStatus": "Started", "NotBefore": ""}]})", {"vm-1"},
      kNow);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  ASSERT_TRUE(e->has_value());
  EXPECT_EQ((*e)->deadline_unix_ms, kNow);
  e = parse_scheduled_events(
      R"({"Events": [{"EventId": "Y", "EventType": "Preempt", "Resources": [], "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT"}]})",
      {"vm-1"}, kNow);
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->has_value());
  EXPECT_EQ((*e)->deadline_unix_ms, 1474309787000);
}

TEST(ScheduledEventsTest, AMalformedDocumentIsAnErrorNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<html>busy</html>", "not a JSON object"},
      {R"({"DocumentIncarnation": 1})", "no Events"},
      {R"({"Events": {}})", "Events is not an array"},
      {R"({"Events": [7]})", "Events[0] is not an object"},
      {R"({"Events": [{"EventType": "Preempt", "Resources": "vm-1"}]})", "Events[0].Resources is not an array"},
      {R"({"Events": [{"EventType": "Preempt", "NotBefore": "tomorrow"}]})", "Events[0].NotBefore: 'tomorrow'"},
  };
  for (const auto& [body, message] : cases) {
    auto e = parse_scheduled_events(body, {"vm-1"}, kNow);
    ASSERT_FALSE(e.ok()) << body;
    EXPECT_EQ(e.status().code(), Code::kInvalidArgument);
    EXPECT_NE(e.status().message().find(message), std::string::npos) << e.status().message();
  }
}

TEST(ScheduledEventsTest, FetchSendsTheMetadataHeaderAndReportsHttpErrors) {
  testing::MetadataServer server;
  ASSERT_TRUE(server.start());
  server.respond(200, kDocument);
  auto body = fetch_scheduled_events(server.url(), 2s);
  ASSERT_TRUE(body.ok()) << body.status().to_string();
  EXPECT_EQ(*body, kDocument);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].rfind("GET /metadata/scheduledevents?api-version=2020-07-01 HTTP/1.1\r\n", 0), 0u)
      << requests[0];
  EXPECT_NE(requests[0].find("\r\nMetadata: true\r\n"), std::string::npos) << requests[0];

  server.respond(400, R"({"error": "Bad request. Required metadata header not specified"})");
  body = fetch_scheduled_events(server.url(), 2s);
  ASSERT_FALSE(body.ok());
  EXPECT_NE(body.status().message().find("HTTP 400"), std::string::npos) << body.status().message();
  EXPECT_NE(body.status().message().find("metadata header"), std::string::npos) << body.status().message();

  const std::string url = server.url();
  server.stop();
  body = fetch_scheduled_events(url, 2s);
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), Code::kUnavailable) << body.status().to_string();
  EXPECT_NE(body.status().message().find(url), std::string::npos) << body.status().message();
}

}  // namespace
}  // namespace cohort::runner
