#include "engine.hpp"

#include <algorithm>
#include <numeric>
#include <system_error>
#include <utility>

namespace flow_engine {

namespace {

// A flow whose play applets loop forever would otherwise keep a call alive.
constexpr std::size_t kMaxApplets = 64;
// Every call ends by its last arrival plus its prompts and its steps' timeouts;
// this only stops a broken engine or library from hanging the program.
constexpr std::chrono::seconds kWatchdog{60};

StepRecord step_record(const Applet& step, const passthru::Outcome& outcome, std::string label, bool held) {
  StepRecord record;
  record.applet = step.name;
  record.label = std::move(label);
  record.held = held;
  record.route = outcome.route;
  record.http_status = outcome.http_status;
  record.elapsed = outcome.elapsed;
  record.reason = outcome.reason;
  return record;
}

}  // namespace

FlowEngine::FlowEngine(asio::io_context& io, const FlowBook& flows, const std::vector<PlannedCall>& plan)
    : io_(io),
      flows_(flows),
      plan_(plan),
      calls_(plan.size()),
      records_(plan.size()),
      arrival_order_(plan.size()),
      arrivals_(io),
      watchdog_(io) {
  std::iota(arrival_order_.begin(), arrival_order_.end(), std::size_t{0});
  std::stable_sort(arrival_order_.begin(), arrival_order_.end(),
                   [&plan](std::size_t a, std::size_t b) { return plan[a].arrival < plan[b].arrival; });
}

void FlowEngine::run(passthru::PassthruClient& client) {
  client_ = &client;
  run_started_ = Clock::now();
  const auto last_arrival =
      plan_.empty() ? std::chrono::microseconds(0) : plan_[arrival_order_.back()].arrival;
  watchdog_.expires_at(run_started_ + last_arrival + kWatchdog);
  watchdog_.async_wait([this](const std::error_code& error) {
    if (error) return;  // cancelled: everything finished
    stats_.anomalies.push_back("watchdog: " + std::to_string(plan_.size() - ended_calls_) + " calls and " +
                               std::to_string(requests_in_flight_) + " requests still running after " +
                               std::to_string(kWatchdog.count()) + " s");
    io_.stop();
  });
  admit_arrivals();
  finish_if_done();  // no calls at all
  io_.run();
  client_ = nullptr;
}

// One timer walks the arrival times in order: every call due now starts in this turn.
void FlowEngine::admit_arrivals() {
  const Clock::time_point now = Clock::now();
  while (next_arrival_ < arrival_order_.size() &&
         run_started_ + plan_[arrival_order_[next_arrival_]].arrival <= now) {
    start_call(arrival_order_[next_arrival_++]);
  }
  if (next_arrival_ == arrival_order_.size()) return;
  arrivals_.expires_at(run_started_ + plan_[arrival_order_[next_arrival_]].arrival);
  arrivals_.async_wait([this](const std::error_code& error) {
    if (!error) admit_arrivals();
  });
}

void FlowEngine::start_call(std::size_t index) {
  const PlannedCall& plan = plan_[index];
  LiveCall& call = calls_[index];
  call.plan = &plan;
  call.flow = &flows_.flows().at(plan.flow);
  call.context.call_sid = plan.call_sid;
  call.context.call_from = plan.call_from;
  call.context.call_to = call.flow->number;
  call.context.direction = passthru::Direction::incoming;
  call.context.current_time = plan.current_time;
  call.variables = {{"CallSid", plan.call_sid},
                    {"CallFrom", plan.call_from},
                    {"CallTo", call.flow->number},
                    {"CurrentTime", plan.current_time}};
  call.timer = std::make_unique<asio::steady_timer>(io_);
  call.started = Clock::now();
  stats_.peak_calls = std::max(stats_.peak_calls, ++live_calls_);
  advance(index, call.flow->find(call.flow->start));
}

// Runs applets until the call has to wait (a prompt, a held request) or ends.
void FlowEngine::advance(std::size_t index, const Applet* applet) {
  LiveCall& call = calls_[index];
  CallRecord& record = records_[index];
  for (;;) {
    if (++call.applets_run > kMaxApplets) {
      return end_call(index, "ran " + std::to_string(kMaxApplets) + " applets: a loop in the flow?");
    }
    switch (applet->type) {
      case AppletType::play:
      case AppletType::gather:
        if (applet->type == AppletType::gather) {
          // The simulated caller types their digits while the prompt plays.
          const std::string digits = call.plan->keypad.substr(0, applet->max_digits);
          call.context.digits = digits;
          call.variables["digits"] = digits;
        }
        record.path.push_back(applet->name);
        record.said.push_back(render(applet->say, call.variables));
        if (applet->duration.count() > 0)
          return pause(index, applet->duration, call.flow->find(applet->next));
        applet = call.flow->find(applet->next);
        continue;
      case AppletType::branch: {
        record.path.push_back(applet->name);
        const auto value = call.variables.find(applet->variable);
        const auto chosen =
            value == call.variables.end() ? applet->cases.end() : applet->cases.find(value->second);
        applet = call.flow->find(chosen == applet->cases.end() ? applet->otherwise : chosen->second);
        continue;
      }
      case AppletType::passthru:
        send(index, *applet);
        if (applet->hold_caller) return;  // on_outcome() takes the call on
        record.path.push_back(detached_label(*applet));
        applet = call.flow->find(applet->next);
        continue;
      case AppletType::connect:
      case AppletType::voicemail:
      case AppletType::hangup: record.path.push_back(applet->name); return end_call(index);
    }
  }
}

void FlowEngine::pause(std::size_t index, std::chrono::milliseconds duration, const Applet* next) {
  asio::steady_timer& timer = *calls_[index].timer;
  timer.expires_after(duration);
  timer.async_wait([this, index, next](const std::error_code& error) {
    if (!error) advance(index, next);
  });
}

void FlowEngine::send(std::size_t index, const Applet& step) {
  LiveCall& call = calls_[index];
  passthru::CallContext context = call.context;
  for (const auto& [name, value] : step.params)
    context.custom.emplace_back(name, render(value, call.variables));
  stats_.peak_requests = std::max(stats_.peak_requests, ++requests_in_flight_);
  // Applets live in the FlowBook, which outlives the client: `step` stays valid.
  if (step.hold_caller) {
    call.sent = Clock::now();
    const passthru::RequestHandle request = client_->execute(
        *step.step, std::move(context),
        [this, index, &step](passthru::Outcome outcome) { on_outcome(index, step, std::move(outcome)); });
    call.awaiting = request.id();  // execute() never calls back, nor runs a hook, before it returns
    held_requests_.emplace(request.id(), index);
  } else {
    ++detached_in_flight_;
    client_->execute(*step.step, std::move(context), [this, index, &step](passthru::Outcome outcome) {
      on_detached_outcome(index, step, std::move(outcome));
    });
  }
}

void FlowEngine::on_outcome(std::size_t index, const Applet& step, passthru::Outcome outcome) {
  --requests_in_flight_;
  LiveCall& call = calls_[index];
  CallRecord& record = records_[index];
  if (call.ended || call.awaiting != outcome.request_id) {
    stats_.anomalies.push_back(call.plan->call_sid + ": outcome of request " +
                               std::to_string(outcome.request_id) + " (" + step.name +
                               ") came for a call not waiting for it");
    return;
  }
  call.awaiting = 0;
  const std::string label = step_label(step, outcome.route, outcome.ok(), outcome.variables);
  StepRecord done = step_record(step, outcome, label, true);
  stop_hold_music(call, done);
  record.steps.push_back(std::move(done));
  record.path.push_back(label);
  for (auto& [name, value] : outcome.variables) call.variables[name] = std::move(value);
  switch (outcome.route) {
    case passthru::Route::cancelled:
      // Only when the client shuts down: never start anything more.
      return end_call(index, "cancelled: " + outcome.reason);
    case passthru::Route::external_flow:
      record.path.push_back("external-flow " + outcome.target);
      return end_call(index);
    case passthru::Route::next_applet:
    case passthru::Route::default_next:
    case passthru::Route::on_error:
    case passthru::Route::on_timeout: break;
  }
  const Applet* next = call.flow->find(outcome.target);
  if (next == nullptr) return end_call(index, "no applet '" + outcome.target + "' in the flow");
  advance(index, next);
}

void FlowEngine::start_hold_music(const passthru::RequestInfo& request) {
  const auto held = held_requests_.find(request.request_id);
  if (held == held_requests_.end()) return;  // not held: the caller has moved on
  LiveCall& call = calls_[held->second];
  if (call.awaiting != request.request_id) {
    stats_.anomalies.push_back(call.plan->call_sid + ": hold music for request " +
                               std::to_string(request.request_id) + " (" + request.step +
                               ") after its outcome came");
    return;
  }
  // A real engine would start the music on the call's media stream here.
  if (++call.hold_music_starts == 1) call.hold_music_started = Clock::now();
}

// The outcome has come: the music stops, and the step's record says how long it played.
void FlowEngine::stop_hold_music(LiveCall& call, StepRecord& step) {
  step.hold_music_starts = call.hold_music_starts;
  if (call.hold_music_starts > 0) {
    const Clock::time_point now = Clock::now();
    step.hold_music_after =
        std::chrono::duration_cast<std::chrono::microseconds>(call.hold_music_started - call.sent);
    step.hold_music_played =
        std::chrono::duration_cast<std::chrono::microseconds>(now - call.hold_music_started);
  }
  call.hold_music_starts = 0;
}

void FlowEngine::on_detached_outcome(std::size_t index, const Applet& step, passthru::Outcome outcome) {
  --requests_in_flight_;
  --detached_in_flight_;
  const std::string label = step_label(step, outcome.route, outcome.ok(), outcome.variables);
  records_[index].steps.push_back(step_record(step, outcome, label, false));
  finish_if_done();
}

void FlowEngine::end_call(std::size_t index, std::string problem) {
  LiveCall& call = calls_[index];
  CallRecord& record = records_[index];
  ++record.ends;
  if (call.ended) {
    stats_.anomalies.push_back(call.plan->call_sid + ": ended a second time");
    return;
  }
  call.ended = true;
  record.problem = std::move(problem);
  record.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - call.started);
  --live_calls_;
  ++ended_calls_;
  finish_if_done();
}

// io.run() returns once nothing is pending: the watchdog must not be the last thing.
void FlowEngine::finish_if_done() {
  if (finished_ || ended_calls_ != plan_.size() || detached_in_flight_ != 0) return;
  finished_ = true;
  stats_.wall = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - run_started_);
  watchdog_.cancel();
}

}  // namespace flow_engine
