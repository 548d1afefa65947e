// A test fixture with one client, one loopback HTTP server and a run() that
// checks what every outcome of a multi-attempt request must satisfy.
#pragma once

#include "test_client.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

namespace passthru_test {

class OneClientTest : public ::testing::Test {
 protected:
  /// Runs one request of the sample call; an empty Outcome (and a failure) if none came.
  passthru::Outcome run(const passthru::StepOptions& options) {
    const auto outcome = execute_and_wait(client_, passthru::StepConfig::build(options), sample_call());
    if (!outcome) {
      ADD_FAILURE() << "no outcome";
      return {};
    }
    EXPECT_NE(outcome->request_id, 0u) << outcome->reason;
    EXPECT_EQ(outcome->attempts, static_cast<int>(outcome->attempt_log.size()));
    return *outcome;
  }

  // The server outlives the client, so no worker waits on a kept-alive connection.
  TestHttpServer server_;
  LogCollector logs_;
  TestClient client_{quiet_options(logs_)};
};

}  // namespace passthru_test
