// The flow file: call flows as applets, read from JSON (see README.md for the format).
#pragma once

#include <passthru/outcome.hpp>
#include <passthru/step_config.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace flow_engine {

/// What an applet does with a call. `connect`, `voicemail` and `hangup` end it.
enum class AppletType { passthru, play, gather, branch, connect, voicemail, hangup };

const char* to_string(AppletType type) noexcept;
bool ends_call(AppletType type) noexcept;

/// One applet of a flow. Only the fields of its type are set.
struct Applet {
  std::string name;
  AppletType type = AppletType::hangup;
  std::string next;                          ///< play, gather; passthru with hold_caller false
  std::string say;                           ///< play, gather: prompt text, {variable} placeholders
  std::chrono::milliseconds duration{0};     ///< play, gather: how long the prompt (and typing) takes
  std::size_t max_digits = 0;                ///< gather
  std::string variable;                      ///< branch: the call variable compared
  std::map<std::string, std::string> cases;  ///< branch: value -> applet
  std::string otherwise;                     ///< branch: applet when no case matches
  std::string destination;                   ///< connect: queue, voicemail: mailbox

  // passthru
  std::string server;        ///< the customer server named by the URL's {port:NAME}
  std::string url_template;  ///< the URL as written, with its {port:NAME}
  /// False: the engine moves the call on to `next` at once and only counts the
  /// outcome when it arrives (the request still runs to its own timeout).
  bool hold_caller = true;
  /// Custom parameters sent after the standard ones; values are templates.
  std::vector<std::pair<std::string, std::string>> params;
  passthru::StepOptions options;             ///< everything but the URL's port
  std::optional<passthru::StepConfig> step;  ///< built by FlowBook::bind()
};

/// One call flow: a start applet and the applets it leads to.
struct Flow {
  std::string name;
  std::string use_case;  ///< free text, shown in the report
  std::string number;    ///< the ExoPhone callers dial, sent as CallTo
  std::string start;
  std::map<std::string, Applet> applets;

  /// The applet named `name`, or nullptr.
  const Applet* find(const std::string& name) const;
};

/// A flow file that cannot be used; what() says where and why.
class FlowError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Every flow of a flow file, validated: each applet named as a next step
/// exists, every Passthru step's options pass StepConfig::build().
class FlowBook {
 public:
  /// Reads and validates `path`. Throws FlowError.
  static FlowBook load(const std::string& path);

  /// Builds each Passthru step's StepConfig, replacing `{port:NAME}` in its
  /// URL by `ports.at(NAME)`. Throws FlowError for a server not in `ports`.
  void bind(const std::map<std::string, int>& ports);

  const std::vector<Flow>& flows() const noexcept { return flows_; }
  /// The customer servers the flows' URLs name.
  std::set<std::string> servers() const;
  /// How long a held caller waits before hearing hold music ("hold_music_after_ms"
  /// at the top of the file; 0, the default: never). Client-wide, as the
  /// library's RequestHooks::waiting_after is.
  std::chrono::milliseconds hold_music_after() const noexcept { return hold_music_after_; }

 private:
  std::vector<Flow> flows_;
  std::chrono::milliseconds hold_music_after_{0};
};

/// `text` with every `{name}` replaced by `variables.at(name)`; unknown names stay as written.
std::string render(const std::string& text, const std::map<std::string, std::string>& variables);

/// How a Passthru step shows in a call's path: `crm-lookup[next_applet]`,
/// `crm-lookup[default (unexpected answer)]`, `order-lookup[default, order_status=shipped]`,
/// `log-call[not held]`.
std::string step_label(const Applet& step, passthru::Route route, bool understood,
                       const std::map<std::string, std::string>& variables);
std::string detached_label(const Applet& step);

/// Joins a call's path: `welcome > crm-lookup[next_applet] > vip-connect`.
std::string join_path(const std::vector<std::string>& path);

}  // namespace flow_engine
