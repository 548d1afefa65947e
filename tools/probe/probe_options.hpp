// passthru-probe's command line: the flags, and the step, call and client
// they describe.
#pragma once

#include <passthru/call_context.hpp>
#include <passthru/client.hpp>
#include <passthru/step_config.hpp>

#include <CLI/App.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace passthru_probe {

/// A flag's value that cannot make a step (exit status 2). what() names the flag.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Everything the command line says, as typed.
struct ProbeOptions {
  std::string url;
  std::string method = "GET";
  long timeout_ms = 0;  ///< Set from StepOptions' default.

  // The call.
  std::string call_sid;  ///< Empty: probe-<random hex>.
  std::string from;
  std::string to;
  std::string direction = "incoming";
  std::string current_time;
  std::string dial_whom;
  std::optional<std::string> digits;
  std::vector<std::string> params;  ///< NAME=VALUE
  std::string traceparent;

  // The step.
  std::vector<std::string> headers;  ///< "Name: value"
  std::string name;
  std::string default_next = "default-next";
  std::string on_error;
  std::string on_timeout;
  std::vector<std::string> applets;
  std::vector<std::string> flow_hosts;
  bool quote_digits = false;
  std::size_t max_answer_bytes = 0;  ///< Set from StepOptions' default.
  bool allow_plain_http = false;
  int max_redirects = 0;
  std::string cacert;
  std::string cert;
  std::string key;
  bool insecure = false;
  std::string pin;
  std::string signing_key_file;

  // Output.
  bool json = false;
  bool quiet = false;
  bool verbose = false;

  // Load.
  std::size_t count = 1;
  std::size_t concurrency = 1;
  long slow_ms = 3000;
};

/// Declares every flag on `app`, bound to `options`, with its help text.
void add_probe_flags(CLI::App& app, ProbeOptions& options);

/// The step the flags describe, not yet validated (StepConfig::build does
/// that). Throws UsageError for a flag the library never sees: a header
/// without a colon, an unreadable signing key file.
passthru::StepOptions make_step_options(const ProbeOptions& options);

/// The call to send, under `call_sid`. Throws UsageError for a --param
/// without '='.
passthru::CallContext make_call(const ProbeOptions& options, std::string call_sid);

/// "probe-" and 12 random hex digits, or --call-sid when given.
std::string base_call_sid(const ProbeOptions& options);

/// The client: log lines to standard error at debug with --verbose (none
/// otherwise: the report says it all), the slow-answer threshold of --slow-ms.
passthru::ClientOptions make_client_options(const ProbeOptions& options);

/// The flag a ConfigError's field comes from ("headers[1].name" -> the second
/// -H/--header), for the error message.
std::string flag_of_field(const ProbeOptions& options, const std::string& field);

}  // namespace passthru_probe
