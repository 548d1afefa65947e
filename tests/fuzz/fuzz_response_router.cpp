// Fuzzes ResponseRouter::route with arbitrary answers and checks the routing
// invariants that hold for every input.
//
// Input layout:
//   byte 0: bits 0-1 transport (completed, timed_out, failed, cancelled),
//           bits 2-4 status class, bits 5-7 which Routes to use
//   byte 1: status within the class; bit 7 sets HttpResult::error
//   rest:   content type, '\n', body (the body is also the 3xx location;
//           the content type is also the transport detail)
#include <passthru/response_router.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace {

using passthru::HttpResult;
using passthru::Outcome;
using passthru::ResponseRouter;
using passthru::Route;
using passthru::Routes;
using passthru::Transport;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

std::array<Routes, 8> make_routes() {
  std::array<Routes, 8> routes;
  routes[0].default_next = "next-default";
  routes[1] = {"d", "err", "", {}, {}};
  routes[2] = {"d", "err", "to", {}, {}};
  routes[3] = {"d", "", "to", {}, {}};
  routes[4] = {"d", "e", "", {"vip-connect", "sales", "support desk", "https://flows.example.com/known"}, {}};
  routes[5] = {"d", "", "", {}, {"*.example.com"}};
  routes[6] = {"d", "e", "t", {"a"}, {"flows.example.com", "*.Example.ORG"}};
  routes[7] = {"d", "", "", {}, {"*", "*.", "localhost"}};
  return routes;
}

const std::array<ResponseRouter, 8>& routers() {
  static const std::array<Routes, 8> routes = make_routes();
  static const std::array<ResponseRouter, 8> all = {ResponseRouter(routes[0]), ResponseRouter(routes[1]),
                                                    ResponseRouter(routes[2]), ResponseRouter(routes[3]),
                                                    ResponseRouter(routes[4]), ResponseRouter(routes[5]),
                                                    ResponseRouter(routes[6]), ResponseRouter(routes[7])};
  return all;
}

int status_for(unsigned status_class, unsigned fine) {
  switch (status_class) {
    case 0: return 0;
    case 6: return 200 + static_cast<int>(fine % 100);
    case 7: return static_cast<int>(static_cast<std::int8_t>(fine)) * 10;  // negative, 600+, ...
    default: return static_cast<int>(status_class) * 100 + static_cast<int>(fine % 100);
  }
}

bool has_space(std::string_view text) {
  return text.find_first_of(std::string_view(" \t\r\n\f\v")) != std::string_view::npos;
}

bool starts_with_http(std::string_view text) {
  std::string head(text.substr(0, 8));
  std::transform(head.begin(), head.end(), head.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); });
  return head.rfind("http://", 0) == 0 || head.rfind("https://", 0) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const unsigned selector = data[0];
  const unsigned fine = data[1];
  const std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::size_t newline = rest.find('\n');
  const std::string_view content_type = rest.substr(0, newline);
  const std::string_view body =
      newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);

  HttpResult result;
  result.transport = static_cast<Transport>(selector & 0x3);
  result.status = status_for((selector >> 2) & 0x7, fine & 0x7F);
  result.content_type = std::string(content_type);
  result.body = std::string(body);
  if (result.status >= 300 && result.status <= 399) result.location = result.body;
  if (result.transport != Transport::completed) {
    result.detail = result.content_type;
    if ((fine & 0x80) != 0) result.error = std::make_error_code(std::errc::connection_refused);
  }

  const ResponseRouter& router = routers()[(selector >> 5) & 0x7];
  const Routes& routes = router.routes();
  const Outcome out = router.route(result);

  const bool cancelled = result.transport == Transport::cancelled;
  const bool completed_2xx =
      result.transport == Transport::completed && result.status >= 200 && result.status <= 299;
  const std::string error_target = routes.on_error.empty() ? routes.default_next : routes.on_error;

  // The invariants the router documents.
  check((out.route == Route::cancelled) == cancelled);
  check(cancelled || !out.target.empty());
  check(!completed_2xx || (out.route != Route::on_error && out.route != Route::on_timeout));
  if (out.route == Route::next_applet) {
    if (routes.known_applets.empty()) {
      check(!has_space(out.target));
    } else {
      check(std::find(routes.known_applets.begin(), routes.known_applets.end(), out.target) !=
            routes.known_applets.end());
    }
  }
  check(!out.ok() || out.route == Route::next_applet || out.route == Route::external_flow ||
        out.route == Route::default_next);

  // What follows from the README's routing rules.
  check(out.http_status == result.status);
  check(!out.reason.empty());
  check(out.request_id == 0 && out.elapsed.count() == 0);
  if (!completed_2xx) check(!out.ok() && out.variables.empty());
  if (result.transport == Transport::timed_out) check(out.route == Route::on_timeout);
  if (result.transport == Transport::failed) check(out.route == Route::on_error);
  if (result.transport == Transport::completed && !completed_2xx) check(out.route == Route::on_error);
  if (result.error && !completed_2xx) check(out.error == result.error);
  switch (out.route) {
    case Route::default_next: check(out.target == routes.default_next); break;
    case Route::on_error: check(out.target == error_target); break;
    case Route::on_timeout:
      check(out.target == (routes.on_timeout.empty() ? error_target : routes.on_timeout));
      break;
    case Route::external_flow: check(starts_with_http(out.target) && !has_space(out.target)); break;
    case Route::next_applet: check(out.target.size() <= result.body.size()); break;
    case Route::cancelled: check(out.target.empty()); break;
  }
  return 0;
}
