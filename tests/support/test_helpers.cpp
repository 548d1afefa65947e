#include "test_helpers.hpp"

#include <cctype>

namespace passthru_test {

passthru::CallContext sample_call() {
  passthru::CallContext call;
  call.call_sid = "abc123";
  call.call_from = "+919876543210";
  call.call_to = "+914412345678";
  call.direction = passthru::Direction::incoming;
  call.current_time = "2024-01-15T10:30:00+05:30";
  call.dial_whom_number = "";
  call.digits = "1234";
  return call;
}

passthru::Routes sample_routes() {
  passthru::Routes routes;
  routes.default_next = "default-applet";
  routes.on_error = "error-applet";
  routes.on_timeout = "timeout-applet";
  routes.known_applets = {"vip-connect", "standard-queue", "new-customer"};
  return routes;
}

passthru::StepOptions step_options(std::string url, std::chrono::milliseconds timeout) {
  passthru::StepOptions options;
  options.url = std::move(url);
  options.timeout = timeout;
  options.routes = sample_routes();
  return options;
}

LogCollector::LogCollector() : state_(std::make_shared<State>()) {}

passthru::LogSink LogCollector::sink() const {
  return [state = state_](passthru::LogLevel level, std::string_view message) {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->lines.push_back({level, std::string(message)});
  };
}

std::vector<LogCollector::Line> LogCollector::lines() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->lines;
}

passthru::ClientOptions quiet_options(const LogCollector& logs) {
  passthru::ClientOptions options;
  options.log_sink = logs.sink();
  return options;
}

std::optional<passthru::Outcome> execute_and_wait(passthru_test::TestClient& client,
                                                  const passthru::StepConfig& step,
                                                  passthru::CallContext call,
                                                  std::chrono::milliseconds timeout) {
  OutcomeCollector collector;
  auto handle = client.execute(step, std::move(call), collector.callback());
  auto outcome = collector.wait_for_id(handle.id(), timeout);
  if (outcome && collector.total_calls() != 1) {
    passthru::Outcome wrong;
    wrong.reason = "callback called " + std::to_string(collector.total_calls()) + " times";
    return wrong;
  }
  return outcome;
}

void StartGate::arrive_and_wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (waiting_for_ > 0 && --waiting_for_ == 0) {
    open_.notify_all();
    return;
  }
  open_.wait(lock, [&] { return waiting_for_ == 0; });
}

void Event::set() {
  // Notify under the lock: a waiter may destroy the Event as soon as it sees
  // set_, which it cannot do before this function lets go of the mutex.
  std::lock_guard<std::mutex> lock(mutex_);
  set_ = true;
  changed_.notify_all();
}

bool Event::is_set() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return set_;
}

bool Event::wait_for(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return set_; });
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_form(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!text.empty()) {
    auto amp = text.find('&');
    auto part = text.substr(0, amp);
    auto eq = part.find('=');
    if (eq == std::string_view::npos) {
      params.emplace_back(percent_decode(part), std::string());
    } else {
      params.emplace_back(percent_decode(part.substr(0, eq)), percent_decode(part.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    text.remove_prefix(amp + 1);
  }
  return params;
}

std::optional<std::string> form_value(std::string_view text, std::string_view name) {
  for (auto& [key, value] : parse_form(text)) {
    if (key == name) return value;
  }
  return std::nullopt;
}

}  // namespace passthru_test
