// Micro-benchmarks of request building: a call's parameters become a GET
// query string or a POST form body, with the step's headers (and, signed, an
// HMAC-SHA256 signature). Pure code, no sockets: a slowdown here shows alone.
#include "request_builder.hpp"
#include "signing.hpp"
#include "step_data.hpp"

#include <passthru/call_context.hpp>
#include <passthru/step_config.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <string_view>

namespace {

using passthru::CallContext;
using passthru::Method;
using passthru::StepConfig;
using passthru::StepOptions;

constexpr std::string_view kNow = "2024-01-15T10:30:00+05:30";

// A call with the six standard parameters: CallSid, CallFrom, CallTo,
// Direction, CurrentTime, DialWhomNumber.
CallContext typical_call() {
  CallContext call;
  call.call_sid = "CA3f9b2c8e7d6a5b4c3d2e1f0a9b8c7d6e";
  call.call_from = "+919876543210";
  call.call_to = "+914412345678";
  call.current_time = std::string(kNow);
  call.dial_whom_number = "+918012345678";
  return call;
}

// The same with DTMF digits and six custom parameters, some needing encoding.
CallContext rich_call() {
  CallContext call = typical_call();
  call.digits = "1234";
  call.custom = {{"order", "A-1/2024"}, {"lang", "hi"},         {"name", "Ravi Kumar"},
                 {"tier", "gold"},      {"note", "call back?"}, {"amount", "1,299.00 INR"}};
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

// build_request(), plus the signature headers the engine adds to a signed step.
void BM_BuildRequest(benchmark::State& state, Method method, bool signed_request, CallContext call) {
  const StepConfig step = typical_step(method, signed_request);
  const auto& keys = step.options().signing_keys;
  const auto now = std::chrono::system_clock::now();
  for (auto _ : state) {
    auto request = passthru::detail::build_request(step.data(), call, kNow);
    if (!keys.empty()) {
      auto lines = passthru::detail::signature_headers(keys, passthru::to_string(request.method),
                                                       request.signed_url, request.body, now);
      benchmark::DoNotOptimize(lines);
    }
    benchmark::DoNotOptimize(request);
  }
}
BENCHMARK_CAPTURE(BM_BuildRequest, get, Method::get, false, typical_call());
BENCHMARK_CAPTURE(BM_BuildRequest, post, Method::post, false, typical_call());
BENCHMARK_CAPTURE(BM_BuildRequest, get_custom6, Method::get, false, rich_call());
BENCHMARK_CAPTURE(BM_BuildRequest, post_custom6, Method::post, false, rich_call());
BENCHMARK_CAPTURE(BM_BuildRequest, post_signed, Method::post, true, typical_call());

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
