// detail::parse_traceparent and friends: the W3C Trace Context rules a
// request follows when it joins the engine's trace of the call.
#include "trace_context.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace {

using passthru::detail::format_traceparent;
using passthru::detail::parse_traceparent;
using passthru::detail::TraceIds;
using passthru::detail::valid_tracestate;

constexpr const char* kExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(Traceparent, TheSpecificationsExampleGivesItsTraceIdAndFlags) {
  const auto parent = parse_traceparent(kExample);
  ASSERT_TRUE(parent);
  EXPECT_EQ(parent->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parent->flags, "01");
  EXPECT_EQ(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")->flags, "00");
}

TEST(Traceparent, RejectsWhatTheSpecificationRejects) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      // no flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // version 00 is exactly 55 bytes
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper-case hex
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // all-zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // all-zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
           "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version not hex
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // wrong separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   // not hex
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",
           " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
       }) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
}

TEST(Traceparent, ALaterVersionIsReadForTheFieldsVersion00Knows) {
  const auto parent =
      parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-adds");
  ASSERT_TRUE(parent);
  EXPECT_EQ(parent->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parent->flags, "01");  // only "sampled" is known
  EXPECT_TRUE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
  EXPECT_FALSE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00x"));
}

TEST(Tracestate, IsSentOnlyWhenPrintableAndAtMost512Bytes) {
  EXPECT_TRUE(valid_tracestate("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
  EXPECT_TRUE(valid_tracestate(std::string(512, 'a')));
  EXPECT_FALSE(valid_tracestate(std::string(513, 'a')));
  EXPECT_FALSE(valid_tracestate(""));
  EXPECT_FALSE(valid_tracestate("a=b\r\nX-Injected: 1"));
  EXPECT_FALSE(valid_tracestate("a=\x7f"));
}

TEST(TraceIds, AreLowerCaseHexOfTheRightLengthAndDoNotRepeat) {
  TraceIds ids;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string trace = ids.new_trace_id();
    const std::string span = ids.new_span_id();
    ASSERT_EQ(trace.size(), 32u);
    ASSERT_EQ(span.size(), 16u);
    const std::string header = format_traceparent(trace, span, "01");
    ASSERT_TRUE(parse_traceparent(header)) << header;  // valid by our own parser: never all zero
    EXPECT_TRUE(seen.insert(trace).second);
  }
}

}  // namespace
