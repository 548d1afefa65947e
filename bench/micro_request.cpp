// Micro-benchmarks of request building: a call's parameters become a GET
// query string or a POST form body, with the step's headers (and, signed, an
// HMAC-SHA256 signature). Pure code, no sockets: a slowdown here shows alone.
#include "request_builder.hpp"
#include "step_data.hpp"

#include <passthru/call_context.hpp>
#include <passthru/step_config.hpp>

#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

namespace {

using passthru::CallContext;
using passthru::Method;
using passthru::StepConfig;
using passthru::StepOptions;

constexpr std::string_view kNow = "2024-01-15T10:30:00+05:30";

// A call with the six standard parameters (CallSid, CallFrom, CallTo,
// Direction, CurrentTime, DialWhomNumber) and the DTMF digits.
CallContext typical_call() {
  CallContext call;
  call.call_sid = "CA3f9b2c8e7d6a5b4c3d2e1f0a9b8c7d6e";
  call.call_from = "+919876543210";
  call.call_to = "+914412345678";
  call.current_time = std::string(kNow);
  call.dial_whom_number = "+918012345678";
  call.digits = "1234";
  return call;
}

StepConfig typical_step(Method method, bool signed_request) {
  StepOptions options;
  options.url = "https://crm.example.com/ivr/lookup?tenant=acme";
  options.method = method;
  options.routes.default_next = "main-menu";
  options.headers = {{"Authorization", "Bearer 0123456789abcdef"}, {"X-Tenant", "acme"}};
  if (signed_request) options.signing_keys = {std::string(32, 'k')};
  return StepConfig::build(options);
}

void BM_BuildRequest(benchmark::State& state, Method method, bool signed_request) {
  const StepConfig step = typical_step(method, signed_request);
  const CallContext call = typical_call();
  for (auto _ : state) {
    auto request = passthru::detail::build_request(step.data(), call, kNow);
    benchmark::DoNotOptimize(request);
  }
}
BENCHMARK_CAPTURE(BM_BuildRequest, get, Method::get, false);
BENCHMARK_CAPTURE(BM_BuildRequest, post, Method::post, false);
BENCHMARK_CAPTURE(BM_BuildRequest, post_signed, Method::post, true);

void BM_CallParams(benchmark::State& state) {
  const CallContext call = typical_call();
  for (auto _ : state) {
    auto params = passthru::detail::call_params(call, false, kNow);
    benchmark::DoNotOptimize(params);
  }
}
BENCHMARK(BM_CallParams);

void BM_PercentEncode(benchmark::State& state) {
  const std::string text = "+91 98765 43210 / ça va? 100% & more";
  for (auto _ : state) {
    auto encoded = passthru::detail::percent_encode(text);
    benchmark::DoNotOptimize(encoded);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_PercentEncode);

}  // namespace
