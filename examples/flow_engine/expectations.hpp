// What each call must do, computed from the plan and the customers' data alone.
#pragma once

#include "call_plan.hpp"
#include "flow.hpp"

#include <map>
#include <string>
#include <vector>

namespace flow_engine {

/// One call as the customers' servers were built to treat it.
struct ExpectedCall {
  std::vector<std::string> path;
  std::vector<std::string> said;
  std::vector<std::string> detached;         ///< labels of the requests the call did not wait for
  std::map<std::string, int> requests;       ///< requests each customer server must receive
  std::map<std::string, int> slow_requests;  ///< of which held by the server past every timeout
};

/// Walks the call through its flow without a network: each Passthru step's
/// answer is what the step's server answers for this call by design (the
/// plan's fault, then the customer's data and rules), routed as the applet
/// guide says. Nothing here reads an Outcome.
ExpectedCall expect_call(const Flow& flow, const PlannedCall& call, const CustomerData& data);

}  // namespace flow_engine
