// The C API of <passthru/passthru.h>, on top of the C++ one. Every entry
// point catches everything: a C caller cannot unwind a C++ exception.
#include <passthru/passthru.h>

#include <passthru/call_context.hpp>
#include <passthru/client.hpp>
#include <passthru/error.hpp>
#include <passthru/event_loop.hpp>
#include <passthru/hooks.hpp>
#include <passthru/log.hpp>
#include <passthru/metrics.hpp>
#include <passthru/outcome.hpp>
#include <passthru/step_config.hpp>
#include <passthru/version.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

// The opaque handles of the C API.
struct passthru_step {
  passthru::StepConfig config;
};

namespace {

// Calls the engine's C hooks; its entry points are the passthru_loop_* functions.
class CLoop final : public passthru::EventLoop {
 public:
  explicit CLoop(const passthru_loop_hooks& hooks) noexcept : hooks_(hooks) {}

  void watch_socket(int fd, passthru::Watch what) override {
    hooks_.watch_socket(hooks_.user_data, fd, watch_bits(what));
  }

  void arm_timer(Clock::time_point when) override {
    // Rounded up: a timer that fires early only makes the client re-arm it,
    // one rounded down would fire early every time.
    const auto delay = std::chrono::ceil<std::chrono::microseconds>(when - Clock::now());
    hooks_.arm_timer(hooks_.user_data, delay.count() > 0 ? static_cast<std::int64_t>(delay.count()) : 0);
  }

  void cancel_timer() override { hooks_.cancel_timer(hooks_.user_data); }

  void wake() override { hooks_.wake(hooks_.user_data); }

 private:
  static int watch_bits(passthru::Watch what) noexcept {
    switch (what) {
      case passthru::Watch::none: return PASSTHRU_WATCH_NONE;
      case passthru::Watch::read: return PASSTHRU_WATCH_READ;
      case passthru::Watch::write: return PASSTHRU_WATCH_WRITE;
      case passthru::Watch::read_write: return PASSTHRU_WATCH_READ_WRITE;
    }
    return PASSTHRU_WATCH_NONE;
  }

  passthru_loop_hooks hooks_;
};

}  // namespace

struct passthru_client {
  // Declared first, destroyed last: the client detaches from it in its destructor.
  std::unique_ptr<CLoop> loop;
  std::unique_ptr<passthru::PassthruClient> client;
};

namespace {

static_assert(PASSTHRU_READY_READ == passthru::Ready::read &&
                  PASSTHRU_READY_WRITE == passthru::Ready::write &&
                  PASSTHRU_READY_ERROR == passthru::Ready::error,
              "readiness bits pass through unchanged");
static_assert(static_cast<int>(passthru::LogLevel::trace) == PASSTHRU_LOG_TRACE &&
                  static_cast<int>(passthru::LogLevel::debug) == PASSTHRU_LOG_DEBUG &&
                  static_cast<int>(passthru::LogLevel::info) == PASSTHRU_LOG_INFO &&
                  static_cast<int>(passthru::LogLevel::warn) == PASSTHRU_LOG_WARN &&
                  static_cast<int>(passthru::LogLevel::error) == PASSTHRU_LOG_ERROR &&
                  static_cast<int>(passthru::LogLevel::off) == PASSTHRU_LOG_OFF,
              "log levels map one to one");
static_assert(static_cast<int>(passthru::Route::next_applet) == PASSTHRU_ROUTE_NEXT_APPLET &&
                  static_cast<int>(passthru::Route::external_flow) == PASSTHRU_ROUTE_EXTERNAL_FLOW &&
                  static_cast<int>(passthru::Route::default_next) == PASSTHRU_ROUTE_DEFAULT &&
                  static_cast<int>(passthru::Route::on_error) == PASSTHRU_ROUTE_ON_ERROR &&
                  static_cast<int>(passthru::Route::on_timeout) == PASSTHRU_ROUTE_ON_TIMEOUT &&
                  static_cast<int>(passthru::Route::cancelled) == PASSTHRU_ROUTE_CANCELLED,
              "routes map one to one");

static_assert(static_cast<int>(passthru::Endpoint::none) == PASSTHRU_ENDPOINT_NONE &&
                  static_cast<int>(passthru::Endpoint::primary) == PASSTHRU_ENDPOINT_PRIMARY &&
                  static_cast<int>(passthru::Endpoint::fallback) == PASSTHRU_ENDPOINT_FALLBACK,
              "endpoints map one to one");

static_assert(static_cast<int>(passthru::Errc::timed_out) == PASSTHRU_ERROR_TIMED_OUT &&
                  static_cast<int>(passthru::Errc::cancelled) == PASSTHRU_ERROR_CANCELLED &&
                  static_cast<int>(passthru::Errc::shut_down) == PASSTHRU_ERROR_SHUT_DOWN &&
                  static_cast<int>(passthru::Errc::invalid_request) == PASSTHRU_ERROR_INVALID_REQUEST &&
                  static_cast<int>(passthru::Errc::dns_failed) == PASSTHRU_ERROR_DNS_FAILED &&
                  static_cast<int>(passthru::Errc::connect_failed) == PASSTHRU_ERROR_CONNECT_FAILED &&
                  static_cast<int>(passthru::Errc::tls_failed) == PASSTHRU_ERROR_TLS_FAILED &&
                  static_cast<int>(passthru::Errc::send_failed) == PASSTHRU_ERROR_SEND_FAILED &&
                  static_cast<int>(passthru::Errc::receive_failed) == PASSTHRU_ERROR_RECEIVE_FAILED &&
                  static_cast<int>(passthru::Errc::answer_too_large) == PASSTHRU_ERROR_ANSWER_TOO_LARGE &&
                  static_cast<int>(passthru::Errc::http_status) == PASSTHRU_ERROR_HTTP_STATUS &&
                  static_cast<int>(passthru::Errc::unexpected_answer) == PASSTHRU_ERROR_UNEXPECTED_ANSWER &&
                  static_cast<int>(passthru::Errc::external_flow_denied) ==
                      PASSTHRU_ERROR_EXTERNAL_FLOW_DENIED &&
                  static_cast<int>(passthru::Errc::transport_failed) == PASSTHRU_ERROR_TRANSPORT_FAILED &&
                  static_cast<int>(passthru::Errc::blocked_destination) ==
                      PASSTHRU_ERROR_BLOCKED_DESTINATION &&
                  static_cast<int>(passthru::Errc::circuit_open) == PASSTHRU_ERROR_CIRCUIT_OPEN &&
                  static_cast<int>(passthru::Errc::background_full) == PASSTHRU_ERROR_BACKGROUND_FULL,
              "error codes map one to one");

// A refusal that is the caller's doing, short of a step config error.
struct InvalidArgument {};

// The value a C caller stored in an enum field: C allows any int there, but
// reading an out-of-range value as the C++ enum type would be undefined.
template <typename Enum>
int enum_value(const Enum& field) noexcept {
  static_assert(sizeof(Enum) == sizeof(int), "C enums are int-sized");
  int value = 0;
  std::memcpy(&value, &field, sizeof value);
  return value;
}

std::string str(const char* text) { return text == nullptr ? std::string() : std::string(text); }

// Copies `text` into the caller's buffer, truncated and always NUL-terminated.
void copy_error(std::string_view text, char* buffer, std::size_t size) noexcept {
  if (buffer == nullptr || size == 0) return;
  const std::size_t n = text.size() < size - 1 ? text.size() : size - 1;
  std::memcpy(buffer, text.data(), n);
  buffer[n] = '\0';
}

// The C field a C++ StepOptions field is set from: "routes.default_next" is
// "default_next", "tls.ca_file" is "tls_ca_file", "timeout" is "timeout_ms".
std::string c_field(const std::string& field) {
  for (const char* duration :
       {"timeout", "primary_timeout", "hedge_after", "connect_timeout", "read_timeout"}) {
    if (field == duration) return field + "_ms";
  }
  if (field.rfind("routes.", 0) == 0) return field.substr(7);
  if (field.rfind("tls.", 0) == 0) return "tls_" + field.substr(4);
  return field;
}

// "field: what is wrong", with the C name of the field. ConfigError::what()
// reads "passthru: invalid step config: <field>: <message>".
std::string config_error_text(const passthru::ConfigError& error) {
  const std::string what = error.what();
  const std::string head = error.field() + ": ";
  const auto at = what.find(head);
  const std::string message = at == std::string::npos ? what : what.substr(at + head.size());
  return c_field(error.field()) + ": " + message;
}

// A C array of `count` strings as a vector; a NULL array with a count is the
// named field's error, a NULL entry an empty string (which the step refuses).
std::vector<std::string> strings(const char* const* items, std::size_t count, const char* field) {
  std::vector<std::string> out;
  if (count == 0) return out;
  if (items == nullptr) {
    throw passthru::ConfigError(field, "is NULL with a count of " + std::to_string(count));
  }
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) out.push_back(str(items[i]));
  return out;
}

passthru::StepOptions step_options(const passthru_step_config& c) {
  passthru::StepOptions o;
  o.url = str(c.url);
  switch (enum_value(c.method)) {
    case PASSTHRU_GET: o.method = passthru::Method::get; break;
    case PASSTHRU_POST: o.method = passthru::Method::post; break;
    default:
      throw passthru::ConfigError(
          "method", "must be PASSTHRU_GET or PASSTHRU_POST, got " + std::to_string(enum_value(c.method)));
  }
  o.timeout = std::chrono::milliseconds(c.timeout_ms);
  o.routes.default_next = str(c.default_next);
  o.routes.on_error = str(c.on_error);
  o.routes.on_timeout = str(c.on_timeout);
  o.routes.known_applets = strings(c.known_applets, c.known_applet_count, "routes.known_applets");
  o.routes.external_flow_hosts =
      strings(c.external_flow_hosts, c.external_flow_host_count, "routes.external_flow_hosts");
  if (c.header_count > 0) {
    if (c.headers == nullptr) {
      throw passthru::ConfigError("headers", "is NULL with a count of " + std::to_string(c.header_count));
    }
    o.headers.reserve(c.header_count);
    for (std::size_t i = 0; i < c.header_count; ++i) {
      o.headers.push_back(passthru::Header{str(c.headers[i].name), str(c.headers[i].value)});
    }
  }
  o.quote_digits = c.quote_digits != 0;
  o.max_answer_bytes = c.max_answer_bytes;
  o.name = str(c.name);
  o.tls.min_version = c.tls_min_version_1_3 != 0 ? passthru::TlsVersion::v1_3 : passthru::TlsVersion::v1_2;
  o.tls.ca_file = str(c.tls_ca_file);
  o.tls.ca_dir = str(c.tls_ca_dir);
  o.tls.client_cert_file = str(c.tls_client_cert_file);
  o.tls.client_key_file = str(c.tls_client_key_file);
  o.tls.client_key_password = str(c.tls_client_key_password);
  o.tls.pinned_public_key = str(c.tls_pinned_public_key);
  o.tls.verify_peer = c.tls_verify_peer != 0;
  o.tls.verify_host = c.tls_verify_host != 0;
  o.allow_plain_http = c.allow_plain_http != 0;
  o.max_redirects = c.max_redirects;
  o.signing_keys = strings(c.signing_keys, c.signing_key_count, "signing_keys");
  o.secret_names = strings(c.secret_names, c.secret_name_count, "secret_names");
  o.fire_and_forget = c.fire_and_forget != 0;
  switch (enum_value(c.http_version)) {
    case PASSTHRU_HTTP_AUTOMATIC: o.http_version = passthru::HttpVersion::automatic; break;
    case PASSTHRU_HTTP_1_1: o.http_version = passthru::HttpVersion::http1_1; break;
    case PASSTHRU_HTTP_2: o.http_version = passthru::HttpVersion::http2; break;
    default:
      throw passthru::ConfigError(
          "http_version", "must be PASSTHRU_HTTP_AUTOMATIC, PASSTHRU_HTTP_1_1 or PASSTHRU_HTTP_2, got " +
                              std::to_string(enum_value(c.http_version)));
  }
  o.fallback_url = str(c.fallback_url);
  o.primary_timeout = std::chrono::milliseconds(c.primary_timeout_ms);
  o.retries = c.retries;
  o.retry_after_send = c.retry_after_send != 0;
  o.connect_timeout = std::chrono::milliseconds(c.connect_timeout_ms);
  o.read_timeout = std::chrono::milliseconds(c.read_timeout_ms);
  o.hedge_after = std::chrono::milliseconds(c.hedge_after_ms);
  return o;
}

// Calls `use(const passthru_outcome*)` with the C form of `outcome`, its
// strings borrowed for the call. Allocates nothing it cannot do without: the
// callback must run even when memory runs out (then without the error text
// or the variables).
template <typename Use>
void with_c_outcome(const passthru::Outcome& outcome, Use&& use) {
  passthru_outcome c{};
  c.request_id = outcome.request_id;
  c.route = static_cast<passthru_route>(outcome.route);
  c.target = outcome.target.c_str();
  c.reason = outcome.reason.c_str();
  c.http_status = outcome.http_status;
  c.elapsed_us = static_cast<std::int64_t>(outcome.elapsed.count());
  c.queued_us = static_cast<std::int64_t>(outcome.timings.queued.count());
  c.dns_us = static_cast<std::int64_t>(outcome.timings.dns.count());
  c.connect_us = static_cast<std::int64_t>(outcome.timings.connect.count());
  c.tls_us = static_cast<std::int64_t>(outcome.timings.tls.count());
  c.first_byte_us = static_cast<std::int64_t>(outcome.timings.first_byte.count());
  c.transfer_us = static_cast<std::int64_t>(outcome.timings.transfer.count());
  c.attempts = outcome.attempts;
  c.bytes_sent = outcome.bytes_sent;
  c.bytes_received = outcome.bytes_received;
  c.remote_address = outcome.remote_address.c_str();
  c.connection_reused = outcome.connection_reused ? 1 : 0;
  c.trace_id = outcome.trace_id.c_str();
  c.span_id = outcome.span_id.c_str();
  c.content_type = outcome.content_type.c_str();
  c.answer = outcome.answer.c_str();
  c.answer_length = outcome.answer.size();
  c.http_version = outcome.http_version;
  c.background = outcome.background ? 1 : 0;
  c.answered_by = static_cast<passthru_endpoint>(outcome.answered_by);
  c.hedged = std::any_of(outcome.attempt_log.begin(), outcome.attempt_log.end(),
                         [](const passthru::Attempt& attempt) { return attempt.hedged; })
                 ? 1
                 : 0;

  std::string error_text;
  if (outcome.error) {
    c.error = outcome.error.category() == passthru::error_category() ? outcome.error.value()
                                                                     : PASSTHRU_ERROR_TRANSPORT_FAILED;
    try {
      error_text = outcome.error.message();
    } catch (...) {
      error_text.clear();
    }
  }
  c.error_text = error_text.c_str();

  // Answers rarely hand back more than a few variables: those stay on the stack.
  constexpr std::size_t kOnStack = 16;
  passthru_param on_stack[kOnStack];
  std::unique_ptr<passthru_param[]> on_heap;
  passthru_param* variables = on_stack;
  if (outcome.variables.size() > kOnStack) {
    on_heap.reset(new (std::nothrow) passthru_param[outcome.variables.size()]);
    variables = on_heap.get();
  }
  if (variables != nullptr) {
    std::size_t n = 0;
    for (const auto& [name, value] : outcome.variables) {
      variables[n++] = passthru_param{name.c_str(), value.c_str()};
    }
    c.variables = variables;
    c.variable_count = n;
  }
  use(static_cast<const passthru_outcome*>(&c));
}

// Hands one Outcome to the C callback.
void deliver(passthru_outcome_fn on_outcome, void* user_data, const passthru::Outcome& outcome) {
  with_c_outcome(outcome, [on_outcome, user_data](const passthru_outcome* c) { on_outcome(c, user_data); });
}

// Calls `use(const passthru_request_info*)` with the C form of `request`,
// its strings borrowed for the call; without the headers if memory runs out.
template <typename Use>
void with_c_request(const passthru::RequestInfo& request, Use&& use) {
  passthru_request_info c{};
  c.request_id = request.request_id;
  c.call_sid = request.call_sid.c_str();
  c.step = request.step.c_str();
  c.method = request.method == passthru::Method::post ? PASSTHRU_POST : PASSTHRU_GET;
  c.url = request.url.c_str();
  c.body = request.body.c_str();
  c.trace_id = request.trace_id.c_str();
  c.timeout_ms = static_cast<std::int64_t>(request.timeout.count());

  // A request sends a handful of headers: those stay on the stack.
  constexpr std::size_t kOnStack = 16;
  const char* on_stack[kOnStack];
  std::unique_ptr<const char*[]> on_heap;
  const char** headers = on_stack;
  if (request.headers.size() > kOnStack) {
    on_heap.reset(new (std::nothrow) const char*[request.headers.size()]);
    headers = on_heap.get();
  }
  if (headers != nullptr) {
    for (std::size_t i = 0; i < request.headers.size(); ++i) headers[i] = request.headers[i].c_str();
    c.headers = headers;
    c.header_count = request.headers.size();
  }
  use(static_cast<const passthru_request_info*>(&c));
}

// The C hooks as RequestHooks; a NULL function pointer stays an empty hook.
passthru::RequestHooks request_hooks(const passthru_hooks& c) {
  passthru::RequestHooks hooks;
  void* const user_data = c.user_data;
  if (c.on_start != nullptr) {
    hooks.on_start = [on_start = c.on_start, user_data](const passthru::RequestInfo& request) {
      with_c_request(request, [&](const passthru_request_info* info) { on_start(info, user_data); });
    };
  }
  if (c.on_waiting != nullptr) {
    hooks.on_waiting = [on_waiting = c.on_waiting, user_data](const passthru::RequestInfo& request,
                                                              std::chrono::milliseconds waited) {
      with_c_request(request, [&](const passthru_request_info* info) {
        on_waiting(info, static_cast<std::int64_t>(waited.count()), user_data);
      });
    };
  }
  hooks.waiting_after = std::chrono::milliseconds(c.waiting_after_ms);
  if (c.on_end != nullptr) {
    hooks.on_end = [on_end = c.on_end, user_data](const passthru::RequestInfo& request,
                                                  const passthru::Outcome& outcome) {
      with_c_request(request, [&](const passthru_request_info* info) {
        with_c_outcome(outcome,
                       [&](const passthru_outcome* c_outcome) { on_end(info, c_outcome, user_data); });
      });
    };
  }
  return hooks;
}

extern "C" {
// Runs and frees a task handed to passthru_executor_fn; C linkage, as the
// function pointer type it is passed as.
static void passthru_run_task(void* task_data) {
  std::unique_ptr<std::function<void()>> task(static_cast<std::function<void()>*>(task_data));
  if (!task) return;
  try {
    (*task)();
  } catch (...) {
    // The task delivers one outcome and catches what the callback throws;
    // nothing may unwind into the engine's C code.
  }
}
}

// Anything outside what the header documents for a string handed to libcurl
// as a header: CR, LF and other control characters.
bool has_control_characters(const char* text) {
  for (const char* p = text; *p != '\0'; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return true;
  }
  return false;
}

passthru::ClientOptions client_options(const passthru_client_options* c) {
  passthru::ClientOptions o;
  if (c == nullptr) return o;
  const int log_level = enum_value(c->log_level);
  if (log_level < PASSTHRU_LOG_TRACE || log_level > PASSTHRU_LOG_OFF) throw InvalidArgument{};
  // Only the enum's range here; the client judges which levels make sense.
  const int request_log_level = enum_value(c->request_log_level);
  if (request_log_level < PASSTHRU_LOG_TRACE || request_log_level > PASSTHRU_LOG_OFF) throw InvalidArgument{};
  if (c->slow_answer_threshold_ms <= 0) throw InvalidArgument{};
  if (c->hooks.waiting_after_ms < 0) throw InvalidArgument{};
  // Real offsets lie within a day; a larger one would overflow the clock.
  if (c->has_utc_offset != 0 && (c->utc_offset_minutes <= -24 * 60 || c->utc_offset_minutes >= 24 * 60)) {
    throw InvalidArgument{};
  }
  if (c->connection_max_idle_s < 0) throw InvalidArgument{};
  if (c->user_agent != nullptr && has_control_characters(c->user_agent)) throw InvalidArgument{};
  if (c->allowed_destination_count > 0 && c->allowed_destinations == nullptr) throw InvalidArgument{};

  if (c->log != nullptr) {
    o.log_sink = [log = c->log, user_data = c->log_user_data](passthru::LogLevel level,
                                                              std::string_view message) {
      log(static_cast<passthru_log_level>(level), message.data(), message.size(), user_data);
    };
  }
  o.log_level = static_cast<passthru::LogLevel>(log_level);
  o.request_log_level = static_cast<passthru::LogLevel>(request_log_level);
  o.slow_answer_threshold = std::chrono::milliseconds(c->slow_answer_threshold_ms);
  o.send_traceparent = c->send_traceparent != 0;
  o.hooks = request_hooks(c->hooks);
  const passthru_circuit_breaker& breaker = c->circuit_breaker;
  o.circuit_breaker.consecutive_failures = breaker.consecutive_failures;
  o.circuit_breaker.failure_ratio = breaker.failure_ratio;
  o.circuit_breaker.window = std::chrono::milliseconds(breaker.window_ms);
  o.circuit_breaker.minimum_requests = breaker.minimum_requests;
  o.circuit_breaker.open_for = std::chrono::milliseconds(breaker.open_for_ms);
  o.circuit_breaker.probes = breaker.probes;
  if (c->has_utc_offset != 0) o.utc_offset = std::chrono::minutes(c->utc_offset_minutes);
  o.user_agent = str(c->user_agent);
  o.max_in_flight = c->max_in_flight;
  o.max_per_origin = c->max_per_origin;
  if (c->max_background != 0) o.max_background = c->max_background;  // 0: the default
  o.connection_max_idle = std::chrono::seconds(c->connection_max_idle_s);
  o.block_private_destinations = c->block_private_destinations != 0;
  for (std::size_t i = 0; i < c->allowed_destination_count; ++i) {
    o.allowed_destinations.push_back(str(c->allowed_destinations[i]));
  }
  if (c->executor != nullptr) {
    o.executor = [executor = c->executor, user_data = c->executor_user_data](std::function<void()> task) {
      // If this allocation throws, the library runs the task on the driver thread.
      auto* heap = new std::function<void()>(std::move(task));
      executor(&passthru_run_task, heap, user_data);
    };
  }
  return o;
}

passthru::CallContext call_context(const passthru_call& c) {
  passthru::CallContext call;
  call.call_sid = str(c.call_sid);
  call.call_from = str(c.call_from);
  call.call_to = str(c.call_to);
  switch (enum_value(c.direction)) {
    case PASSTHRU_INCOMING: call.direction = passthru::Direction::incoming; break;
    case PASSTHRU_OUTGOING: call.direction = passthru::Direction::outgoing; break;
    default: throw InvalidArgument{};
  }
  call.current_time = str(c.current_time);
  call.dial_whom_number = str(c.dial_whom_number);
  if (c.digits != nullptr) call.digits = std::string(c.digits);
  if (c.custom_count > 0) {
    if (c.custom == nullptr) throw InvalidArgument{};
    call.custom.reserve(c.custom_count);
    for (std::size_t i = 0; i < c.custom_count; ++i) {
      call.custom.emplace_back(str(c.custom[i].name), str(c.custom[i].value));
    }
  }
  call.traceparent = str(c.traceparent);
  call.tracestate = str(c.tracestate);
  return call;
}

// The status of an exception no narrower handler took.
int status_of_current_exception() noexcept {
  try {
    throw;
  } catch (const InvalidArgument&) {
    return PASSTHRU_EINVAL;
  } catch (const std::bad_alloc&) {
    return PASSTHRU_ENOMEM;
  } catch (...) {
    return PASSTHRU_EINTERNAL;
  }
}

// Creates a client from already converted options; `loop` is null for the
// client with its own thread.
int create_client(std::unique_ptr<CLoop> loop, const passthru_client_options* options,
                  passthru_client** client) noexcept {
  try {
    passthru::ClientOptions converted = client_options(options);
    auto created = std::make_unique<passthru_client>();
    if (loop) {
      created->client = std::make_unique<passthru::PassthruClient>(*loop, std::move(converted));
      created->loop = std::move(loop);
    } else {
      created->client = std::make_unique<passthru::PassthruClient>(std::move(converted));
    }
    *client = created.release();
    return PASSTHRU_OK;
  } catch (const std::invalid_argument&) {
    return PASSTHRU_EINVAL;  // an allowed_destinations entry that is not a CIDR
  } catch (const std::logic_error& error) {
    // Exactly std::logic_error: the loop already drives a client.
    return typeid(error) == typeid(std::logic_error) ? PASSTHRU_EBUSY : PASSTHRU_EINTERNAL;
  } catch (...) {
    return status_of_current_exception();
  }
}

}  // namespace

extern "C" {

const char* passthru_strerror(int status) {
  switch (status) {
    case PASSTHRU_OK: return "success";
    case PASSTHRU_EINVAL: return "invalid argument";
    case PASSTHRU_ECONFIG: return "invalid step configuration";
    case PASSTHRU_ENOMEM: return "out of memory";
    case PASSTHRU_EBUSY: return "the event loop already drives a client";
    case PASSTHRU_EINTERNAL: return "internal error";
    default: return "unknown passthru status";
  }
}

const char* passthru_version(void) { return PASSTHRU_VERSION_STRING; }

const char* passthru_route_name(passthru_route route) {
  const int value = enum_value(route);
  switch (value) {
    case PASSTHRU_ROUTE_NEXT_APPLET:
    case PASSTHRU_ROUTE_EXTERNAL_FLOW:
    case PASSTHRU_ROUTE_DEFAULT:
    case PASSTHRU_ROUTE_ON_ERROR:
    case PASSTHRU_ROUTE_ON_TIMEOUT:
    case PASSTHRU_ROUTE_CANCELLED: return passthru::to_string(static_cast<passthru::Route>(value));
  }
  return "unknown";
}

void passthru_step_config_init(passthru_step_config* config) {
  if (config == nullptr) return;
  // The C++ defaults, so the two APIs cannot drift apart.
  const passthru::StepOptions defaults;
  *config = passthru_step_config{};
  config->method = defaults.method == passthru::Method::post ? PASSTHRU_POST : PASSTHRU_GET;
  config->timeout_ms = static_cast<long>(defaults.timeout.count());
  config->quote_digits = defaults.quote_digits ? 1 : 0;
  config->max_answer_bytes = defaults.max_answer_bytes;
  config->tls_min_version_1_3 = defaults.tls.min_version == passthru::TlsVersion::v1_3 ? 1 : 0;
  config->tls_verify_peer = defaults.tls.verify_peer ? 1 : 0;
  config->tls_verify_host = defaults.tls.verify_host ? 1 : 0;
  config->allow_plain_http = defaults.allow_plain_http ? 1 : 0;
  config->max_redirects = defaults.max_redirects;
}

int passthru_step_create(const passthru_step_config* config, passthru_step** step, char* error,
                         std::size_t error_size) {
  copy_error("", error, error_size);
  if (step == nullptr) {
    copy_error("step: is NULL", error, error_size);
    return PASSTHRU_EINVAL;
  }
  *step = nullptr;
  if (config == nullptr) {
    copy_error("config: is NULL", error, error_size);
    return PASSTHRU_EINVAL;
  }
  try {
    *step = new passthru_step{passthru::StepConfig::build(step_options(*config))};
    return PASSTHRU_OK;
  } catch (const passthru::ConfigError& config_error) {
    try {
      copy_error(config_error_text(config_error), error, error_size);
    } catch (...) {
      copy_error(config_error.what(), error, error_size);
    }
    return PASSTHRU_ECONFIG;
  } catch (...) {
    return status_of_current_exception();
  }
}

void passthru_step_destroy(passthru_step* step) { delete step; }

void passthru_client_options_init(passthru_client_options* options) {
  if (options == nullptr) return;
  try {
    const passthru::ClientOptions defaults;
    *options = passthru_client_options{};
    options->log_level = static_cast<passthru_log_level>(defaults.log_level);
    options->max_in_flight = defaults.max_in_flight;
    options->max_per_origin = defaults.max_per_origin;
    options->max_background = defaults.max_background;
    options->connection_max_idle_s = static_cast<long>(defaults.connection_max_idle.count());
    options->has_utc_offset = defaults.utc_offset ? 1 : 0;
    options->utc_offset_minutes = defaults.utc_offset ? static_cast<int>(defaults.utc_offset->count()) : 0;
    options->block_private_destinations = defaults.block_private_destinations ? 1 : 0;
    options->request_log_level = static_cast<passthru_log_level>(defaults.request_log_level);
    options->slow_answer_threshold_ms = static_cast<std::int64_t>(defaults.slow_answer_threshold.count());
    options->send_traceparent = defaults.send_traceparent ? 1 : 0;
    options->hooks.waiting_after_ms = static_cast<std::int64_t>(defaults.hooks.waiting_after.count());
    const passthru::CircuitBreakerOptions& breaker = defaults.circuit_breaker;
    options->circuit_breaker.consecutive_failures = breaker.consecutive_failures;
    options->circuit_breaker.failure_ratio = breaker.failure_ratio;
    options->circuit_breaker.window_ms = static_cast<std::int64_t>(breaker.window.count());
    options->circuit_breaker.minimum_requests = breaker.minimum_requests;
    options->circuit_breaker.open_for_ms = static_cast<std::int64_t>(breaker.open_for.count());
    options->circuit_breaker.probes = breaker.probes;
  } catch (...) {
    // ClientOptions{} allocates (the latency buckets); should that throw,
    // the struct still gets the documented defaults.
    *options = passthru_client_options{};
    options->log_level = PASSTHRU_LOG_WARN;
    options->max_in_flight = 4096;
    options->max_background = 1024;
    options->connection_max_idle_s = 4;
    options->request_log_level = PASSTHRU_LOG_INFO;
    options->slow_answer_threshold_ms = 3000;
    options->send_traceparent = 1;
    options->circuit_breaker.window_ms = 10000;
    options->circuit_breaker.minimum_requests = 20;
    options->circuit_breaker.open_for_ms = 5000;
    options->circuit_breaker.probes = 3;
  }
}

int passthru_client_create(const passthru_client_options* options, passthru_client** client) {
  if (client == nullptr) return PASSTHRU_EINVAL;
  *client = nullptr;
  return create_client(nullptr, options, client);
}

int passthru_client_create_on_loop(const passthru_loop_hooks* hooks, const passthru_client_options* options,
                                   passthru_client** client) {
  if (client == nullptr) return PASSTHRU_EINVAL;
  *client = nullptr;
  if (hooks == nullptr || hooks->watch_socket == nullptr || hooks->arm_timer == nullptr ||
      hooks->cancel_timer == nullptr || hooks->wake == nullptr) {
    return PASSTHRU_EINVAL;
  }
  std::unique_ptr<CLoop> loop(new (std::nothrow) CLoop(*hooks));
  if (!loop) return PASSTHRU_ENOMEM;
  return create_client(std::move(loop), options, client);
}

void passthru_client_destroy(passthru_client* client) {
  if (client == nullptr) return;
  try {
    // The client first: it completes its requests and unwatches its sockets
    // through the loop's hooks.
    client->client.reset();
    client->loop.reset();
  } catch (...) {
    // ~PassthruClient does not throw; nothing may reach the C caller.
  }
  delete client;
}

int passthru_execute(passthru_client* client, const passthru_step* step, const passthru_call* call,
                     passthru_outcome_fn on_outcome, void* user_data, std::uint64_t* request_id) {
  if (request_id != nullptr) *request_id = 0;
  if (client == nullptr || !client->client || step == nullptr || call == nullptr || on_outcome == nullptr) {
    return PASSTHRU_EINVAL;
  }
  try {
    passthru::CallContext context = call_context(*call);
    const passthru::RequestHandle handle = client->client->execute(
        step->config, std::move(context),
        [on_outcome, user_data](passthru::Outcome outcome) { deliver(on_outcome, user_data, outcome); });
    if (request_id != nullptr) *request_id = handle.id();
    return PASSTHRU_OK;
  } catch (...) {
    return status_of_current_exception();
  }
}

void passthru_cancel(passthru_client* client, std::uint64_t request_id) {
  if (client == nullptr || !client->client) return;
  client->client->cancel(request_id);
}

char* passthru_client_metrics_text(const passthru_client* client, const char* prefix) {
  if (client == nullptr || !client->client) return nullptr;
  try {
    const std::string text = passthru::to_prometheus(
        client->client->metrics(), prefix == nullptr ? std::string_view("passthru") : prefix);
    char* copy = static_cast<char*>(std::malloc(text.size() + 1));
    if (copy != nullptr) std::memcpy(copy, text.c_str(), text.size() + 1);
    return copy;
  } catch (...) {
    return nullptr;  // an invalid prefix (std::invalid_argument), or out of memory
  }
}

void passthru_free(void* memory) { std::free(memory); }

void passthru_loop_socket_ready(passthru_client* client, int fd, int events) {
  if (client == nullptr || !client->loop) return;
  client->loop->socket_ready(fd,
                             events & (PASSTHRU_READY_READ | PASSTHRU_READY_WRITE | PASSTHRU_READY_ERROR));
}

void passthru_loop_timer_expired(passthru_client* client) {
  if (client == nullptr || !client->loop) return;
  client->loop->timer_expired();
}

void passthru_loop_woken(passthru_client* client) {
  if (client == nullptr || !client->loop) return;
  client->loop->woken();
}

}  // extern "C"
