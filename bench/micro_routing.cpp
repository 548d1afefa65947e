// Micro-benchmarks of routing: ResponseRouter::route() on the answers a
// customer's server typically gives, and on the failures it must survive.
#include <passthru/error.hpp>
#include <passthru/response_router.hpp>
#include <passthru/step_config.hpp>

#include <benchmark/benchmark.h>

#include <string>
#include <utility>

namespace {

using passthru::HttpResult;
using passthru::ResponseRouter;
using passthru::Routes;

Routes typical_routes() {
  Routes routes;
  routes.default_next = "main-menu";
  routes.on_error = "apology";
  routes.on_timeout = "general-queue";
  routes.known_applets = {"vip-connect", "standard-queue", "collections", "main-menu"};
  routes.external_flow_hosts = {"*.example.com"};
  return routes;
}

HttpResult answer(int status, std::string content_type, std::string body) {
  HttpResult result;
  result.status = status;
  result.content_type = std::move(content_type);
  result.body = std::move(body);
  return result;
}

void BM_Route(benchmark::State& state, HttpResult result) {
  const ResponseRouter router(typical_routes());
  for (auto _ : state) {
    auto outcome = router.route(result);
    benchmark::DoNotOptimize(outcome);
  }
}
BENCHMARK_CAPTURE(BM_Route, applet_name, answer(200, "text/plain", "vip-connect\n"));
BENCHMARK_CAPTURE(BM_Route, empty_body, answer(200, "text/plain", ""));
BENCHMARK_CAPTURE(BM_Route, json,
                  answer(200, "application/json",
                         R"({"next":"vip-connect","variables":{"tier":"gold","agent":"42"}})"));
BENCHMARK_CAPTURE(BM_Route, flow_url, answer(200, "text/plain", "https://flows.example.com/start/vip"));
BENCHMARK_CAPTURE(BM_Route, status_503, answer(503, "text/html", "<html>Service Unavailable</html>"));
BENCHMARK_CAPTURE(BM_Route, garbage, answer(200, "application/octet-stream", std::string(512, '\x7f')));

void BM_RouteTimeout(benchmark::State& state) {
  const ResponseRouter router(typical_routes());
  HttpResult result;
  result.transport = passthru::Transport::timed_out;
  result.error = passthru::make_error_code(passthru::Errc::timed_out);
  result.detail = "no answer within 3000 ms";
  for (auto _ : state) {
    auto outcome = router.route(result);
    benchmark::DoNotOptimize(outcome);
  }
}
BENCHMARK(BM_RouteTimeout);

}  // namespace
