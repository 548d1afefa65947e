#include "flow.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <initializer_list>

namespace flow_engine {

namespace {

using nlohmann::json;

const std::map<std::string, AppletType>& applet_types() {
  static const std::map<std::string, AppletType> types = {
      {"passthru", AppletType::passthru}, {"play", AppletType::play},
      {"gather", AppletType::gather},     {"branch", AppletType::branch},
      {"connect", AppletType::connect},   {"voicemail", AppletType::voicemail},
      {"hangup", AppletType::hangup}};
  return types;
}

// Names where in the file a problem is: "flow 'order-status', applet 'order-lookup'".
class Where {
 public:
  explicit Where(std::string where) : where_(std::move(where)) {}
  [[noreturn]] void fail(const std::string& what) const { throw FlowError(where_ + ": " + what); }

  const json& field(const json& object, const char* key) const {
    const auto found = object.find(key);
    if (found == object.end()) fail(std::string("missing \"") + key + "\"");
    return *found;
  }

  std::string string(const json& object, const char* key) const {
    const json& value = field(object, key);
    if (!value.is_string() || value.get<std::string>().empty()) {
      fail(std::string("\"") + key + "\" must be a non-empty string");
    }
    return value.get<std::string>();
  }

  std::string string_or(const json& object, const char* key, std::string fallback) const {
    return object.contains(key) ? string(object, key) : std::move(fallback);
  }

  std::chrono::milliseconds millis_or(const json& object, const char* key,
                                      std::chrono::milliseconds fallback) const {
    if (!object.contains(key)) return fallback;
    const json& value = object.at(key);
    if (!value.is_number_integer() || value.get<long long>() < 0) {
      fail(std::string("\"") + key + "\" must be a whole number of milliseconds, 0 or more");
    }
    return std::chrono::milliseconds(value.get<long long>());
  }

  bool boolean_or(const json& object, const char* key, bool fallback) const {
    if (!object.contains(key)) return fallback;
    if (!object.at(key).is_boolean()) fail(std::string("\"") + key + "\" must be true or false");
    return object.at(key).get<bool>();
  }

  std::map<std::string, std::string> strings(const json& object, const char* key) const {
    std::map<std::string, std::string> out;
    if (!object.contains(key)) return out;
    const json& value = object.at(key);
    if (!value.is_object()) fail(std::string("\"") + key + "\" must be an object of strings");
    for (const auto& item : value.items()) {
      if (!item.value().is_string()) fail(std::string("\"") + key + "." + item.key() + "\" must be a string");
      out.emplace(item.key(), item.value().get<std::string>());
    }
    return out;
  }

  // Every key must be one the applet's type reads: a typo must not pass silently.
  void only(const json& object, std::initializer_list<const char*> keys) const {
    for (const auto& item : object.items()) {
      bool known = item.key() == "type";
      for (const char* key : keys) known = known || item.key() == key;
      if (!known) fail("unknown field \"" + item.key() + "\"");
    }
  }

 private:
  std::string where_;
};

constexpr const char* kPortOpen = "{port:";

// "http://127.0.0.1:{port:crm}/crm" -> "crm"
std::string server_of(const Where& where, const std::string& url) {
  const auto open = url.find(kPortOpen);
  if (open == std::string::npos) where.fail("\"url\" must contain a {port:SERVER} placeholder");
  const auto close = url.find('}', open);
  if (close == std::string::npos) where.fail("\"url\" has an unclosed {port: placeholder");
  if (url.find(kPortOpen, close) != std::string::npos) where.fail("\"url\" names more than one server");
  const std::string server = url.substr(open + 6, close - open - 6);
  if (server.empty()) where.fail("\"url\" has an empty {port:} placeholder");
  return server;
}

std::string with_port(const std::string& url, int port) {
  const auto open = url.find(kPortOpen);
  const auto close = url.find('}', open);
  return url.substr(0, open) + std::to_string(port) + url.substr(close + 1);
}

void read_passthru(const Where& where, const json& object, Applet& applet) {
  where.only(object, {"url", "method", "timeout_ms", "default", "on_error", "on_timeout", "known_applets",
                      "quote_digits", "params", "hold_caller", "next"});
  applet.url_template = where.string(object, "url");
  applet.server = server_of(where, applet.url_template);
  applet.hold_caller = where.boolean_or(object, "hold_caller", true);
  passthru::StepOptions& options = applet.options;
  options.name = applet.name;
  const std::string method = where.string_or(object, "method", "GET");
  if (method != "GET" && method != "POST") where.fail("\"method\" must be \"GET\" or \"POST\"");
  options.method = method == "GET" ? passthru::Method::get : passthru::Method::post;
  options.timeout = where.millis_or(object, "timeout_ms", options.timeout);
  options.quote_digits = where.boolean_or(object, "quote_digits", false);
  if (applet.hold_caller) {
    options.routes.default_next = where.string(object, "default");
  } else {
    // The caller has moved on: the routes only label the outcome in the tally.
    applet.next = where.string(object, "next");
    options.routes.default_next = where.string_or(object, "default", applet.next);
  }
  options.routes.on_error = where.string_or(object, "on_error", "");
  options.routes.on_timeout = where.string_or(object, "on_timeout", "");
  if (object.contains("known_applets")) {
    const json& known = object.at("known_applets");
    if (!known.is_array()) where.fail("\"known_applets\" must be an array of applet names");
    for (const json& name : known) {
      if (!name.is_string()) where.fail("\"known_applets\" must be an array of applet names");
      options.routes.known_applets.push_back(name.get<std::string>());
    }
  }
  for (auto& [name, value] : where.strings(object, "params")) applet.params.emplace_back(name, value);
  // Validated now, with a stand-in port, so a bad step fails before any server starts.
  options.url = with_port(applet.url_template, 1);
  try {
    passthru::StepConfig::build(options);
  } catch (const passthru::ConfigError& error) {
    where.fail(std::string("invalid Passthru step: ") + error.what());
  }
}

Applet read_applet(const Where& where, const std::string& name, const json& object) {
  if (!object.is_object()) where.fail("an applet must be a JSON object");
  Applet applet;
  applet.name = name;
  const std::string type = where.string(object, "type");
  const auto found = applet_types().find(type);
  if (found == applet_types().end()) {
    where.fail("unknown applet type \"" + type +
               "\" (passthru, play, gather, branch, connect, voicemail, hangup)");
  }
  applet.type = found->second;
  switch (applet.type) {
    case AppletType::passthru: read_passthru(where, object, applet); break;
    case AppletType::play:
      where.only(object, {"say", "duration_ms", "next"});
      applet.say = where.string(object, "say");
      applet.duration = where.millis_or(object, "duration_ms", applet.duration);
      applet.next = where.string(object, "next");
      break;
    case AppletType::gather: {
      where.only(object, {"say", "duration_ms", "max_digits", "next"});
      applet.say = where.string(object, "say");
      applet.duration = where.millis_or(object, "duration_ms", applet.duration);
      const json& digits = where.field(object, "max_digits");
      if (!digits.is_number_integer() || digits.get<long long>() < 1 || digits.get<long long>() > 32) {
        where.fail("\"max_digits\" must be 1 to 32");
      }
      applet.max_digits = digits.get<std::size_t>();
      applet.next = where.string(object, "next");
      break;
    }
    case AppletType::branch:
      where.only(object, {"variable", "cases", "default"});
      applet.variable = where.string(object, "variable");
      applet.cases = where.strings(object, "cases");
      applet.otherwise = where.string(object, "default");
      break;
    case AppletType::connect:
      where.only(object, {"queue"});
      applet.destination = where.string(object, "queue");
      break;
    case AppletType::voicemail:
      where.only(object, {"mailbox"});
      applet.destination = where.string(object, "mailbox");
      break;
    case AppletType::hangup: where.only(object, {}); break;
  }
  return applet;
}

// Every applet a flow can move a call to must exist in it.
void check_links(const Flow& flow) {
  const auto must_exist = [&flow](const Applet& from, const std::string& to, const char* field) {
    if (flow.find(to) == nullptr) {
      throw FlowError("flow '" + flow.name + "', applet '" + from.name + "': \"" + field + "\" names '" + to +
                      "', which is not an applet of this flow");
    }
  };
  if (flow.find(flow.start) == nullptr) {
    throw FlowError("flow '" + flow.name + "': \"start\" names '" + flow.start + "', which is not an applet");
  }
  for (const auto& [name, applet] : flow.applets) {
    if (!applet.next.empty()) must_exist(applet, applet.next, "next");
    if (applet.type == AppletType::branch) {
      for (const auto& [value, to] : applet.cases) must_exist(applet, to, "cases");
      must_exist(applet, applet.otherwise, "default");
    }
    if (applet.type == AppletType::passthru && applet.hold_caller) {
      const passthru::Routes& routes = applet.options.routes;
      must_exist(applet, routes.default_next, "default");
      if (!routes.on_error.empty()) must_exist(applet, routes.on_error, "on_error");
      if (!routes.on_timeout.empty()) must_exist(applet, routes.on_timeout, "on_timeout");
      for (const std::string& known : routes.known_applets) must_exist(applet, known, "known_applets");
    }
  }
}

}  // namespace

const char* to_string(AppletType type) noexcept {
  switch (type) {
    case AppletType::passthru: return "passthru";
    case AppletType::play: return "play";
    case AppletType::gather: return "gather";
    case AppletType::branch: return "branch";
    case AppletType::connect: return "connect";
    case AppletType::voicemail: return "voicemail";
    case AppletType::hangup: return "hangup";
  }
  return "unknown";
}

bool ends_call(AppletType type) noexcept {
  return type == AppletType::connect || type == AppletType::voicemail || type == AppletType::hangup;
}

const Applet* Flow::find(const std::string& applet) const {
  const auto found = applets.find(applet);
  return found == applets.end() ? nullptr : &found->second;
}

FlowBook FlowBook::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw FlowError(path + ": cannot open");
  const json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) throw FlowError(path + ": not valid JSON");
  const Where file(path);
  if (!doc.is_object() || !doc.contains("flows") || !doc.at("flows").is_array() || doc.at("flows").empty()) {
    file.fail("expected {\"flows\": [ ... ]} with at least one flow");
  }
  file.only(doc, {"flows", "hold_music_after_ms"});
  FlowBook book;
  book.hold_music_after_ = file.millis_or(doc, "hold_music_after_ms", book.hold_music_after_);
  for (const json& entry : doc.at("flows")) {
    if (!entry.is_object()) file.fail("each flow must be a JSON object");
    Flow flow;
    flow.name = file.string(entry, "name");
    const Where where(path + ": flow '" + flow.name + "'");
    where.only(entry, {"name", "use_case", "number", "start", "applets"});
    for (const Flow& other : book.flows_) {
      if (other.name == flow.name) where.fail("two flows share this name");
    }
    flow.use_case = where.string_or(entry, "use_case", "");
    flow.number = where.string(entry, "number");
    flow.start = where.string(entry, "start");
    const json& applets = where.field(entry, "applets");
    if (!applets.is_object() || applets.empty()) where.fail("\"applets\" must be a non-empty object");
    for (const auto& item : applets.items()) {
      const Where at(path + ": flow '" + flow.name + "', applet '" + item.key() + "'");
      flow.applets.emplace(item.key(), read_applet(at, item.key(), item.value()));
    }
    // An answer may name any applet of the flow unless the step lists its own.
    for (auto& [name, applet] : flow.applets) {
      passthru::Routes& routes = applet.options.routes;
      if (applet.type != AppletType::passthru || !applet.hold_caller || !routes.known_applets.empty())
        continue;
      for (const auto& [other, ignored] : flow.applets) routes.known_applets.push_back(other);
    }
    check_links(flow);
    book.flows_.push_back(std::move(flow));
  }
  return book;
}

void FlowBook::bind(const std::map<std::string, int>& ports) {
  for (Flow& flow : flows_) {
    for (auto& [name, applet] : flow.applets) {
      if (applet.type != AppletType::passthru) continue;
      const auto port = ports.find(applet.server);
      if (port == ports.end()) {
        throw FlowError("flow '" + flow.name + "', applet '" + name + "': no customer server named '" +
                        applet.server + "'");
      }
      passthru::StepOptions options = applet.options;
      options.url = with_port(applet.url_template, port->second);
      applet.step = passthru::StepConfig::build(std::move(options));
    }
  }
}

std::set<std::string> FlowBook::servers() const {
  std::set<std::string> out;
  for (const Flow& flow : flows_) {
    for (const auto& [name, applet] : flow.applets) {
      if (applet.type == AppletType::passthru) out.insert(applet.server);
    }
  }
  return out;
}

std::string render(const std::string& text, const std::map<std::string, std::string>& variables) {
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto open = text.find('{', at);
    const auto close = open == std::string::npos ? std::string::npos : text.find('}', open);
    if (close == std::string::npos) break;
    out.append(text, at, open - at);
    const auto value = variables.find(text.substr(open + 1, close - open - 1));
    if (value == variables.end()) {
      out.append(text, open, close - open + 1);
    } else {
      out += value->second;
    }
    at = close + 1;
  }
  out.append(text, at, std::string::npos);
  return out;
}

std::string step_label(const Applet& step, passthru::Route route, bool understood,
                       const std::map<std::string, std::string>& variables) {
  std::string label = step.name + "[" + passthru::to_string(route);
  if (!understood && route == passthru::Route::default_next) label += " (unexpected answer)";
  for (const auto& [name, value] : variables) label += ", " + name + "=" + value;
  return label + "]";
}

std::string detached_label(const Applet& step) { return step.name + "[not held]"; }

std::string join_path(const std::vector<std::string>& path) {
  std::string out;
  for (const std::string& applet : path) {
    if (!out.empty()) out += " > ";
    out += applet;
  }
  return out;
}

}  // namespace flow_engine
