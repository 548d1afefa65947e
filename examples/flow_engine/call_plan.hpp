// The simulated calls, and the customers' data and rules their servers answer from.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace flow_engine {

/// How a customer's server misbehaves for one call, whichever server it is.
enum class Fault {
  none,
  slow,          ///< answers only after kSlowAnswer (or at shutdown): past every step's timeout
  server_error,  ///< answers 500
};

/// What the CRM holds for a caller.
enum class CrmTier {
  vip,      ///< answers "vip-connect"
  regular,  ///< answers an empty body: the step's default
  legacy,   ///< an old record answering "premium-desk", an applet the flow does not know
  unknown,  ///< not in the CRM: answers "new-customer"
};

/// A local date and time, as the caller's CurrentTime says (+05:30).
struct LocalTime {
  int year = 2024;
  int month = 1;
  int day = 22;
  int minute_of_day = 0;
};

/// One simulated call. It carries everything any flow may need; each flow
/// uses its own part (a CRM flow reads the tier, an order flow the keypad).
struct PlannedCall {
  std::size_t index = 0;
  std::size_t flow = 0;  ///< index into FlowBook::flows(), round robin
  std::string call_sid;
  std::string call_from;
  LocalTime local_time;
  std::string current_time;  ///< local_time as ISO 8601: "2024-01-24T10:30:00+05:30"
  std::string keypad;        ///< the digits the caller types at a gather applet
  CrmTier tier = CrmTier::unknown;
  Fault fault = Fault::none;
  std::chrono::microseconds arrival{0};  ///< after the start of the run
};

/// The customers' databases, built from the plan before the servers start and
/// read-only afterwards (so any server thread may read them).
struct CustomerData {
  std::unordered_map<std::string, CrmTier> crm;         ///< by CallFrom; unknown callers absent
  std::unordered_map<std::string, std::string> orders;  ///< order number -> status
  std::unordered_map<std::string, Fault> faults;        ///< by CallSid; calls without a fault absent
};

/// A slow answer comes this late, unless the server shuts down first.
constexpr std::chrono::seconds kSlowAnswer{10};

/// `count` calls spread round robin over `flows` flows, arriving uniformly
/// over `ramp`. The same seed gives the same calls.
std::vector<PlannedCall> plan_calls(std::size_t count, std::size_t flows, std::chrono::milliseconds ramp,
                                    std::uint32_t seed);

/// The databases the customer servers answer from.
CustomerData customer_data(const std::vector<PlannedCall>& plan);

// The customers' business rules: the servers apply them to what a request
// carries, the check to what the plan says about the call.

/// The CRM's plain-text answer for a tier ("" for regular: an empty body).
const char* crm_answer(CrmTier tier) noexcept;

/// The greeting applet for a caller's number, by country code (and Chennai's
/// area code within India); "" when the customer has no rule for it.
std::string language_applet(const std::string& number);

/// Whether a department takes calls at this local time: "support" always;
/// "sales" Monday to Friday 09:30-18:00 and Saturday 10:00-14:00, never on
/// Sunday or on a public holiday. Empty for a department the customer has not.
std::optional<bool> department_open(const std::string& department, const LocalTime& time);

/// Some latency of a customer's database, 1 to 15 ms, fixed for each call.
std::chrono::milliseconds database_latency(const std::string& call_sid);

}  // namespace flow_engine
