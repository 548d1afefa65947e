#include "expectations.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>

namespace flow_engine {

namespace {

// What a customer's server was built to answer.
struct DesignedAnswer {
  enum class Kind { body, http_error, silent } kind = Kind::body;
  std::string next;  ///< the applet the body names; empty for an empty body
  std::map<std::string, std::string> variables;
};

DesignedAnswer designed_answer(const std::string& server, const PlannedCall& call, const CustomerData& data,
                               const std::map<std::string, std::string>& params,
                               const std::optional<std::string>& digits) {
  DesignedAnswer answer;
  if (call.fault == Fault::slow) {
    answer.kind = DesignedAnswer::Kind::silent;
    return answer;
  }
  if (call.fault == Fault::server_error) {
    answer.kind = DesignedAnswer::Kind::http_error;
    return answer;
  }
  if (server == "crm") {
    answer.next = crm_answer(call.tier);
  } else if (server == "orders") {
    const auto order = digits ? data.orders.find(*digits) : data.orders.end();
    if (order == data.orders.end()) {
      answer.next = "order-not-found";
    } else {
      answer.variables["order_status"] = order->second;
    }
  } else if (server == "call-log") {
    // 200 with an empty body
  } else if (server == "hours") {
    const auto department = params.find("Department");
    const std::optional<bool> open =
        department_open(department == params.end() ? std::string() : department->second, call.local_time);
    if (!open) {
      answer.kind = DesignedAnswer::Kind::http_error;
    } else {
      answer.next = *open ? "connect-agents" : "after-hours";
    }
  } else if (server == "language") {
    answer.next = language_applet(call.call_from);
  } else {
    throw std::invalid_argument("no design for customer server '" + server + "'");
  }
  return answer;
}

// The applet guide's routing table, for the answers these servers give.
struct ExpectedRoute {
  passthru::Route route = passthru::Route::default_next;
  std::string target;
  bool understood = true;
  std::map<std::string, std::string> variables;
};

ExpectedRoute route_of(const Applet& step, const DesignedAnswer& answer) {
  const passthru::Routes& routes = step.options.routes;
  ExpectedRoute out;
  switch (answer.kind) {
    case DesignedAnswer::Kind::silent:
      out.route = passthru::Route::on_timeout;
      out.target = !routes.on_timeout.empty() ? routes.on_timeout
                   : !routes.on_error.empty() ? routes.on_error
                                              : routes.default_next;
      out.understood = false;
      return out;
    case DesignedAnswer::Kind::http_error:
      out.route = passthru::Route::on_error;
      out.target = !routes.on_error.empty() ? routes.on_error : routes.default_next;
      out.understood = false;
      return out;
    case DesignedAnswer::Kind::body: break;
  }
  const auto& known = routes.known_applets;
  if (answer.next.empty()) {
    out.target = routes.default_next;
    out.variables = answer.variables;
  } else if (std::find(known.begin(), known.end(), answer.next) != known.end()) {
    out.route = passthru::Route::next_applet;
    out.target = answer.next;
    out.variables = answer.variables;
  } else {
    out.target = routes.default_next;
    out.understood = false;
  }
  return out;
}

}  // namespace

ExpectedCall expect_call(const Flow& flow, const PlannedCall& call, const CustomerData& data) {
  ExpectedCall expected;
  std::map<std::string, std::string> variables = {{"CallSid", call.call_sid},
                                                  {"CallFrom", call.call_from},
                                                  {"CallTo", flow.number},
                                                  {"CurrentTime", call.current_time}};
  std::optional<std::string> digits;
  const Applet* applet = flow.find(flow.start);
  for (std::size_t steps = 0; applet != nullptr && steps < 64; ++steps) {
    if (ends_call(applet->type)) {
      expected.path.push_back(applet->name);
      break;
    }
    switch (applet->type) {
      case AppletType::gather:
        digits = call.keypad.substr(0, applet->max_digits);
        variables["digits"] = *digits;
        [[fallthrough]];
      case AppletType::play:
        expected.path.push_back(applet->name);
        expected.said.push_back(render(applet->say, variables));
        applet = flow.find(applet->next);
        break;
      case AppletType::branch: {
        expected.path.push_back(applet->name);
        const auto value = variables.find(applet->variable);
        const auto chosen =
            value == variables.end() ? applet->cases.end() : applet->cases.find(value->second);
        applet = flow.find(chosen == applet->cases.end() ? applet->otherwise : chosen->second);
        break;
      }
      case AppletType::passthru: {
        std::map<std::string, std::string> params;
        for (const auto& [name, value] : applet->params) params[name] = render(value, variables);
        const DesignedAnswer answer = designed_answer(applet->server, call, data, params, digits);
        ++expected.requests[applet->server];
        if (answer.kind == DesignedAnswer::Kind::silent) ++expected.slow_requests[applet->server];
        const ExpectedRoute route = route_of(*applet, answer);
        const std::string label = step_label(*applet, route.route, route.understood, route.variables);
        if (!applet->hold_caller) {
          expected.path.push_back(detached_label(*applet));
          expected.detached.push_back(label);
          applet = flow.find(applet->next);
          break;
        }
        expected.path.push_back(label);
        for (const auto& [name, value] : route.variables) variables[name] = value;
        applet = flow.find(route.target);
        break;
      }
      case AppletType::connect:
      case AppletType::voicemail:
      case AppletType::hangup: break;  // handled above
    }
  }
  return expected;
}

}  // namespace flow_engine
