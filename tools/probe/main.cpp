// passthru-probe: sends a Passthru request to a customer's endpoint exactly
// as an engine would, through the library's public API, and shows what was
// sent, what came back, where the call would go and where the time went.
#include "exit_status.hpp"
#include "load_report.hpp"
#include "load_test.hpp"
#include "probe_options.hpp"
#include "single_report.hpp"
#include "single_request.hpp"
#include "text.hpp"

#include <passthru/passthru.hpp>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace {

using namespace passthru_probe;

constexpr const char* kDescription =
    "Sends a Passthru request to URL exactly as a call-flow engine would (through the passthru\n"
    "library, with the guide's parameters) and shows the request, the answer, the route the call\n"
    "would take and where the time went. With --count, a load test.\n";

constexpr const char* kFooter =
    "Exit status (the route the call would take):\n"
    "  0  next_applet    2xx naming an applet (--applet limits which)\n"
    "  3  external_flow  2xx with a flow URL (--flow-host limits the hosts)\n"
    "  4  default        2xx with an empty body, or one not understood (to --default)\n"
    "  5  on_error       3xx/4xx/5xx, refused, reset, DNS or TLS failure (to --on-error)\n"
    "  6  on_timeout     no answer within --timeout (to --on-timeout)\n"
    "  2  a bad flag or an invalid step (the message names the field)\n"
    "  1  an internal failure\n"
    "With --count, the worst route seen, in the order above: on_timeout is the worst.\n"
    "\n"
    "Examples:\n"
    "  passthru-probe https://crm.example.com/passthru --from +919876543210 --applet vip-connect\n"
    "  passthru-probe -X POST https://crm.example.com/passthru --digits 1234 --json\n"
    "  passthru-probe https://crm.example.com/passthru --count 1000 --concurrency 50";

void print_step_error(const passthru::ConfigError& error, const ProbeOptions& options) {
  std::string_view message = error.what();
  constexpr std::string_view kLibraryPrefix = "passthru: ";
  if (message.substr(0, kLibraryPrefix.size()) == kLibraryPrefix)
    message.remove_prefix(kLibraryPrefix.size());
  std::string flag = flag_of_field(options, error.field());
  if (error.field() == "url" && message.find("allow_plain_http") != std::string_view::npos) {
    flag += "; --allow-plain-http permits it";
  }
  fmt::print(stderr, "passthru-probe: {}{}\nRun with --help for more information.\n", message,
             flag.empty() ? "" : fmt::format(" (set by {})", flag));
}

int probe(const ProbeOptions& options) {
  if (options.insecure) {
    fmt::print(stderr,
               "passthru-probe: WARNING: --insecure: the server's certificate and host name are not checked; "
               "never configure a production step like this\n");
  }
  const passthru::StepConfig step = passthru::StepConfig::build(make_step_options(options));
  const std::string call_sid = base_call_sid(options);
  const passthru::CallContext call = make_call(options, call_sid);
  passthru::ClientOptions client_options = make_client_options(options);
  const std::chrono::milliseconds slow(options.slow_ms);

  if (options.count == 1) {
    const SingleResult result = run_single(step, call, std::move(client_options));
    const ReportSettings settings{slow, options.verbose, options.quiet};
    if (options.json) {
      fmt::print("{}\n", dump_json(single_json(result, settings)));
    } else {
      print_single_report(stdout, result, settings);
    }
    return exit_status(result.outcome.route);
  }

  const LoadSettings load{options.count, options.concurrency, !options.quiet};
  const LoadRun run = run_load(step, call, call_sid, std::move(client_options), load);
  const LoadReportSettings settings{options.concurrency, slow, step.options().timeout, options.quiet};
  if (options.json) {
    fmt::print("{}\n", dump_json(load_json(run, settings)));
  } else {
    print_load_report(stdout, run, settings);
  }
  return exit_status(worst_route(run));
}

}  // namespace

int main(int argc, char** argv) {
  ProbeOptions options;
  CLI::App app{kDescription, "passthru-probe"};
  app.get_formatter()->column_width(36);
  app.set_version_flag("--version", PASSTHRU_VERSION_STRING);
  app.footer(kFooter);
  add_probe_flags(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : kExitUsage;  // --help and --version exit 0
  }

  try {
    return probe(options);
  } catch (const passthru::ConfigError& error) {
    print_step_error(error, options);
    return kExitUsage;
  } catch (const UsageError& error) {
    fmt::print(stderr, "passthru-probe: {}\nRun with --help for more information.\n", error.what());
    return kExitUsage;
  } catch (const std::exception& error) {
    fmt::print(stderr, "passthru-probe: internal failure: {}\n", error.what());
    return kExitInternalFailure;
  }
}
