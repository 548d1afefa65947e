#include "transfer_engine.hpp"

#include "curl_global.hpp"
#include "logger.hpp"
#include "redact.hpp"
#include "signing.hpp"
#include "step_data.hpp"

#include <passthru/error.hpp>
#include <passthru/signature.hpp>
#include <passthru/version.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

namespace passthru {
inline namespace v0 {
namespace detail {

namespace {

// libcurl's own timeout is only a backstop behind our deadline timer: the
// outcome is always delivered by our timer, never early by libcurl's (which
// can fire up to a millisecond early in 7.88).
constexpr auto kCurlBackstop = std::chrono::milliseconds(250);
constexpr std::size_t kMaxSpareHandles = 256;
// How many of the most recent spares take_spare() searches for one
// configured for the step: beyond that, one is reset.
constexpr std::size_t kSpareMatchWindow = 16;
constexpr std::size_t kStartsPerTurn = 64;
// Of those, how many may open a new connection: each costs libcurl's
// connect, the kernel's handshake and fresh memory, 50 to 100 us, all inside
// the one curl_multi_socket_action that starts them, while due deadlines wait.
constexpr std::size_t kNewConnectionsPerTurn = 8;
// expire_deadlines() looks at the clock again after this many removals.
constexpr std::size_t kRemovalsBetweenClockReads = 8;
// Backoff before retry n (0-based): equal jitter over kFirstBackoff * 2^n,
// capped at kMaxBackoff: at least half of it, so retries are spaced.
constexpr auto kFirstBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);
// libcurl's receive buffer (16 KiB by default, its minimum 1 KiB). A
// Passthru answer (status line, headers, an applet name or a small JSON)
// fits in one read of 1 KiB; larger ones, up to max_answer_bytes, take more
// reads. A request waiting on a slow server keeps about 3 KB less resident
// (bench/memory, 10,000 in flight: 18.6 to 15.4 KB per request).
constexpr long kReceiveBufferBytes = 1024;

using TimerEntry = std::multimap<Clock::time_point, std::uint64_t>::iterator;

}  // namespace

/// One HTTP exchange of a request: its own easy handle and what came back
/// on it. A request has one leg at a time, and two while hedged: the
/// fallback sent alongside a primary that has not answered
/// (StepOptions::hedge_after).
struct Leg {
  Transfer* transfer = nullptr;
  Endpoint endpoint = Endpoint::primary;
  BuiltRequest request;  // this endpoint's request
  CURL* easy = nullptr;  // kept across this leg's attempts; back to the spares at the end
  curl_slist* headers = nullptr;
  std::string answer;
  bool too_large = false;
  std::size_t head_bytes = 0;
  bool interim = false;          // the last head seen was a 1xx
  bool running = false;          // added to the multi handle
  bool attempt_limited = false;  // libcurl ends this attempt by read_timeout, before the deadline
  bool hedged = false;           // sent alongside the primary (Attempt::hedged)
  bool configured = false;       // `easy` holds every option its step sets (SpareHandle)
  std::string blocked;           // an address the destination guard refused
  bool permitted = false;        // the guard let at least one connection attempt through
  CircuitBreakers::Admission admission = CircuitBreakers::Admission::send;
  bool admitted = false;  // the breaker awaits this attempt's verdict
  int retries_done = 0;   // at this endpoint
  Clock::time_point attempt_started;
  char error[CURL_ERROR_SIZE] = {};

  Leg() = default;
  Leg(const Leg&) = delete;
  Leg& operator=(const Leg&) = delete;
  ~Leg() { curl_slist_free_all(headers); }

  const std::string& origin() const;
  const std::string& host() const;

  // What one attempt leaves behind, cleared before the next.
  void reset_attempt() {
    answer.clear();
    too_large = false;
    head_bytes = 0;
    interim = false;
    blocked.clear();
    permitted = false;
    error[0] = '\0';
    curl_slist_free_all(headers);
    headers = nullptr;
  }

  /// Bytes of the final answer (head and body) that have arrived.
  std::size_t received() const { return interim ? 0 : head_bytes + answer.size(); }

  // Counts the bytes of the final answer's head. An interim 1xx head (100
  // Continue) is not part of the answer, so a new status line starts over.
  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* self) {
    auto& leg = *static_cast<Leg*>(self);
    const std::size_t bytes = size * count;
    const std::string_view line(data, bytes);
    if (line.rfind("HTTP/", 0) == 0) {
      leg.head_bytes = 0;
      const auto space = line.find(' ');
      leg.interim = space != std::string_view::npos && space + 1 < line.size() && line[space + 1] == '1';
    }
    leg.head_bytes += bytes;
    return bytes;
  }

  // Judges every address libcurl is about to connect to, after DNS: a name
  // that resolves (or rebinds) to a blocked address is caught here. Every
  // new socket is shown to the engine, which may still watch its number.
  static curl_socket_t on_open_socket(void* self, curlsocktype purpose, curl_sockaddr* address);

  static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* self);
};

/// One request in flight, owned by TransferEngine::active_.
struct Transfer {
  std::uint64_t id = 0;
  StepConfig step;
  std::string call_sid;
  OutcomeCallback on_outcome;
  Clock::time_point started;
  std::optional<Clock::time_point> launched;  // when it left the queue for libcurl
  std::multimap<Clock::time_point, std::uint64_t>::iterator deadline;
  bool queued = false;        // waiting for a slot under ClientOptions::max_in_flight or max_per_origin
  bool origin_bound = false;  // queued because its origin had max_per_origin running
  const DestinationGuard* guard = nullptr;
  TransferEngine* engine = nullptr;
  std::vector<std::string> call_secrets;  // values of the call's secret parameters
  StepCounters* counters = nullptr;
  std::string trace_id;
  std::string span_id;
  std::shared_ptr<RequestInfo> info;  // for the hooks; null when there are none
  bool background = false;            // fire and forget: the call had its outcome when the request started
  std::optional<std::multimap<Clock::time_point, std::uint64_t>::iterator> notice;

  // The legs live here, never moved (libcurl holds pointers to them): `leg`
  // is the current one, `hedge` the fallback while it runs beside it.
  Leg legs[2];
  Leg* leg = &legs[0];
  Leg* hedge = nullptr;

  // Attempts (StepOptions::retries, fallback_url and hedge_after). The
  // fallback's request is built with the same parameters.
  std::optional<BuiltRequest> fallback_request;  // until the fallback is tried
  std::vector<Attempt> attempt_log;
  Wire last_wire;                         // of the last attempt that ended
  std::optional<HttpResult> last_result;  // of the last attempt that ended
  std::optional<TimerEntry> backoff;      // waiting to retry
  std::optional<TimerEntry> share_end;    // the primary's share of the timeout, or when to hedge

  Transfer(StepConfig s) : step(std::move(s)) {
    legs[0].transfer = this;
    legs[1].transfer = this;
  }
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  /// The leg that is not `leg`: where a hedge goes.
  Leg& other_leg() { return leg == &legs[0] ? legs[1] : legs[0]; }
};

const std::string& Leg::origin() const {
  const StepData& data = transfer->step.data();
  return endpoint == Endpoint::fallback ? data.fallback->origin : data.origin;
}

const std::string& Leg::host() const {
  const StepData& data = transfer->step.data();
  return endpoint == Endpoint::fallback ? data.fallback->host : data.host;
}

curl_socket_t Leg::on_open_socket(void* self, curlsocktype purpose, curl_sockaddr* address) {
  auto& leg = *static_cast<Leg*>(self);
  const DestinationGuard& guard = *leg.transfer->guard;
  if (purpose == CURLSOCKTYPE_IPCXN && guard.enabled()) {
    IpAddress ip;
    if (!IpAddress::from_sockaddr(&address->addr, ip) || !guard.permits(ip)) {
      if (leg.blocked.empty()) leg.blocked = ip.to_string();
      return CURL_SOCKET_BAD;
    }
    leg.permitted = true;
  }
  const curl_socket_t fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd != CURL_SOCKET_BAD) leg.transfer->engine->adopt_new_socket(fd);
  return fd;
}

std::size_t Leg::on_write(char* data, std::size_t size, std::size_t count, void* self) {
  auto& leg = *static_cast<Leg*>(self);
  const std::size_t bytes = size * count;
  // The cap lives here, not in CURLOPT_MAXFILESIZE: that does not stop a
  // chunked answer of unknown length, and we never buffer past the cap.
  if (leg.answer.size() + bytes > leg.transfer->step.data().options.max_answer_bytes) {
    leg.too_large = true;
    return 0;  // makes libcurl fail the transfer with CURLE_WRITE_ERROR
  }
  leg.answer.append(data, bytes);
  return bytes;
}

namespace {

Errc classify(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return Errc::dns_failed;
    case CURLE_COULDNT_CONNECT: return Errc::connect_failed;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED: return Errc::tls_failed;
    case CURLE_SEND_ERROR: return Errc::send_failed;
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING: return Errc::receive_failed;
    case CURLE_FILESIZE_EXCEEDED: return Errc::answer_too_large;
    case CURLE_TOO_MANY_REDIRECTS: return Errc::receive_failed;
    default: return Errc::transport_failed;
  }
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Why a TLS connection failed, in words an operator can act on, with
// libcurl's text kept in parentheses.
std::string tls_detail(CURL* easy, CURLcode code, const std::string& curl_text) {
  long verify = 0;
  curl_easy_getinfo(easy, CURLINFO_SSL_VERIFYRESULT, &verify);
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
      if (contains(curl_text, "subject name") || contains(curl_text, "host name") ||
          verify == 62 /* X509_V_ERR_HOSTNAME_MISMATCH */) {
        return fmt::format("TLS certificate does not match the host name ({})", curl_text);
      }
      if (verify == 10 /* X509_V_ERR_CERT_HAS_EXPIRED */ || contains(curl_text, "expired")) {
        return fmt::format("TLS certificate has expired ({})", curl_text);
      }
      if (verify == 9 /* X509_V_ERR_CERT_NOT_YET_VALID */ || contains(curl_text, "not yet valid")) {
        return fmt::format("TLS certificate is not yet valid ({})", curl_text);
      }
      if (verify == 18 || verify == 19 || verify == 20 || verify == 21 || verify == 2 ||
          contains(curl_text, "issuer") || contains(curl_text, "self-signed") ||
          contains(curl_text, "self signed")) {
        return fmt::format("TLS certificate is not trusted: not signed by a known CA ({})", curl_text);
      }
      return fmt::format("TLS certificate verification failed ({})", curl_text);
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return fmt::format("TLS public key does not match the pinned key ({})", curl_text);
    case CURLE_SSL_CERTPROBLEM:
      return fmt::format("TLS client certificate or key could not be used ({})", curl_text);
    case CURLE_SSL_CACERT_BADFILE:
      return fmt::format("TLS CA file or directory could not be used ({})", curl_text);
    default: break;
  }
  if (contains(curl_text, "wrong version number")) {
    return fmt::format(
        "TLS handshake failed: the server did not answer in TLS (plain HTTP on an https:// "
        "port?) ({})",
        curl_text);
  }
  if (contains(curl_text, "protocol version") || contains(curl_text, "unsupported protocol") ||
      contains(curl_text, "no protocols available")) {
    return fmt::format(
        "TLS handshake failed: the server does not offer TLS 1.2 or later, or not the "
        "minimum version the step requires ({})",
        curl_text);
  }
  if (contains(curl_text, "certificate required") || contains(curl_text, "handshake failure") ||
      contains(curl_text, "bad certificate") || contains(curl_text, "unknown ca")) {
    return fmt::format(
        "TLS handshake failed: the server refused the connection, possibly for want of a "
        "valid client certificate ({})",
        curl_text);
  }
  return fmt::format("TLS handshake failed ({})", curl_text);
}

// A reason an engineer can act on: "connection refused (127.0.0.1:8080)",
// "connection reset after 512 bytes of the answer", rather than libcurl's
// generic texts (which are kept in parentheses where they add something).
std::pair<Errc, std::string> describe_failure(CURL* easy, CURLcode code, const char* error_buffer,
                                              std::size_t received) {
  long os_errno = 0;
  curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
  const std::string curl_text =
      error_buffer[0] != '\0' ? std::string(error_buffer) : curl_easy_strerror(code);
  std::string os_text;
  if (os_errno != 0) {
    os_text = std::strerror(static_cast<int>(os_errno));
    if (!os_text.empty())
      os_text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(os_text[0])));
  }
  const Errc errc = classify(code);
  if (errc == Errc::tls_failed) return {errc, tls_detail(easy, code, curl_text)};
  switch (code) {
    case CURLE_COULDNT_CONNECT: {
      if (os_text.empty()) return {errc, curl_text};
      char* ip = nullptr;
      long port = 0;
      curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip);
      curl_easy_getinfo(easy, CURLINFO_PRIMARY_PORT, &port);
      if (ip != nullptr && *ip != '\0') return {errc, fmt::format("{} ({}:{})", os_text, ip, port)};
      return {errc, os_text};
    }
    case CURLE_GOT_NOTHING: return {errc, "connection closed without an answer"};
    case CURLE_PARTIAL_FILE:
      return {errc, fmt::format("connection closed after {} bytes, before the whole answer", received)};
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR: {
      // With TLS 1.3 a server refuses a client certificate after the
      // handshake: the alert arrives as a receive error.
      if (contains(curl_text, "alert") || contains(curl_text, "SSL")) {
        return {Errc::tls_failed, tls_detail(easy, code, curl_text)};
      }
      const char* what = code == CURLE_RECV_ERROR ? "receiving" : "sending";
      if (os_errno == ECONNRESET) {
        return {errc, code == CURLE_RECV_ERROR
                          ? fmt::format("connection reset after {} bytes of the answer", received)
                          : std::string("connection reset while sending the request")};
      }
      return {errc, fmt::format("error {} after {} bytes of the answer: {}", what, received,
                                os_text.empty() ? curl_text : os_text)};
    }
    case CURLE_UNSUPPORTED_PROTOCOL: {
      long redirects = 0;
      curl_easy_getinfo(easy, CURLINFO_REDIRECT_COUNT, &redirects);
      char* location = nullptr;
      curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &location);
      if (location != nullptr || redirects > 0 || contains(curl_text, "not supported or disabled")) {
        return {errc, fmt::format("redirect refused: only https:// targets are followed ({})", curl_text)};
      }
      return {errc, fmt::format("answer is not HTTP ({})", curl_text)};
    }
    case CURLE_WEIRD_SERVER_REPLY: return {errc, fmt::format("answer is not HTTP ({})", curl_text)};
    case CURLE_TOO_MANY_REDIRECTS: return {errc, fmt::format("too many redirects ({})", curl_text)};
    default: return {errc, curl_text};
  }
}

// 128 random bits per client: keys stay unique across processes and restarts.
std::string random_key_prefix() {
  std::random_device device;
  std::uint64_t high = (std::uint64_t{device()} << 32) | device();
  std::uint64_t low = (std::uint64_t{device()} << 32) | device();
  return fmt::format("{:016x}{:016x}", high, low);
}

// The routed target as a log line shows it: a flow URL from the answer may
// echo a secret; the Outcome keeps it whole, for routing.
std::string log_target(const std::string& target, const StepData& step,
                       const std::vector<std::string>* call_secrets) {
  std::string shown = redact(target, step.secrets);
  if (call_secrets != nullptr) shown = redact(std::move(shown), *call_secrets);
  return shown;
}

double milliseconds(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1000.0; }

std::chrono::microseconds curl_time(CURL* easy, CURLINFO what) {
  curl_off_t us = 0;
  if (curl_easy_getinfo(easy, what, &us) != CURLE_OK || us < 0) us = 0;
  return std::chrono::microseconds(us);
}

std::chrono::microseconds since(std::chrono::microseconds later, std::chrono::microseconds earlier) {
  return later > earlier ? later - earlier : std::chrono::microseconds(0);
}

// What libcurl measured of one transfer, read before its handle is removed.
void read_wire(CURL* easy, Wire& wire) {
  const auto lookup = curl_time(easy, CURLINFO_NAMELOOKUP_TIME_T);
  const auto connect = curl_time(easy, CURLINFO_CONNECT_TIME_T);
  const auto tls = curl_time(easy, CURLINFO_APPCONNECT_TIME_T);
  const auto first_byte = curl_time(easy, CURLINFO_STARTTRANSFER_TIME_T);
  wire.timings.dns = lookup;
  wire.timings.connect = since(connect, lookup);
  wire.timings.tls = tls.count() > 0 ? since(tls, connect) : std::chrono::microseconds(0);
  wire.timings.first_byte = first_byte;
  wire.timings.transfer = curl_time(easy, CURLINFO_TOTAL_TIME_T);
  long request_bytes = 0;
  curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_bytes);
  curl_off_t body_sent = 0;
  curl_easy_getinfo(easy, CURLINFO_SIZE_UPLOAD_T, &body_sent);
  long head_bytes = 0;
  curl_easy_getinfo(easy, CURLINFO_HEADER_SIZE, &head_bytes);
  curl_off_t body_received = 0;
  curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &body_received);
  // libcurl counts a body sent along with the head (under 64 KiB) both in
  // REQUEST_SIZE and in SIZE_UPLOAD, and a larger one in SIZE_UPLOAD only.
  const auto head_and_body = static_cast<std::uint64_t>(std::max<long>(request_bytes, 0));
  const auto body = static_cast<std::uint64_t>(std::max<curl_off_t>(body_sent, 0));
  wire.bytes_sent = head_and_body >= body ? head_and_body : head_and_body + body;
  wire.bytes_received = static_cast<std::uint64_t>(std::max<long>(head_bytes, 0)) +
                        static_cast<std::uint64_t>(std::max<curl_off_t>(body_received, 0));
  char* ip = nullptr;
  long port = 0;
  curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip);
  curl_easy_getinfo(easy, CURLINFO_PRIMARY_PORT, &port);
  if (ip != nullptr && *ip != '\0') {
    const bool v6 = std::strchr(ip, ':') != nullptr;
    std::string& address = wire.remote_address;
    address.reserve(std::strlen(ip) + 8);
    if (v6) address.push_back('[');
    address.append(ip);
    if (v6) address.push_back(']');
    address.append(1, ':').append(std::to_string(port));
  }
  long new_connections = 0;
  curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &new_connections);
  wire.connection_reused = !wire.remote_address.empty() && new_connections == 0;
  long version = 0;  // a CURL_HTTP_VERSION_* constant, 0 before an answer
  curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
  wire.http_version = version == CURL_HTTP_VERSION_1_0   ? 10
                      : version == CURL_HTTP_VERSION_1_1 ? 11
                      : version == CURL_HTTP_VERSION_2_0 ? 20
                      : version == CURL_HTTP_VERSION_3   ? 30
                                                         : 0;
}

}  // namespace

namespace {

// Client options are checked once, like a step: a bad value is named, never
// sent (a CR/LF in the User-Agent would inject a header into every request).
void validate(const ClientOptions& options) {
  const auto refuse = [](const std::string& what) {
    throw std::invalid_argument("passthru: ClientOptions::" + what);
  };
  if (options.user_agent.size() > 8 * 1024) refuse("user_agent: longer than 8 KiB");
  for (const char c : options.user_agent) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && byte != '\t') || byte == 0x7f) refuse("user_agent: contains a control character");
  }
  if (options.utc_offset && std::chrono::abs(*options.utc_offset) > std::chrono::hours(24)) {
    refuse("utc_offset: more than 24 hours from UTC");
  }
  if (options.connection_max_idle.count() < 0) refuse("connection_max_idle: negative");
  if (options.slow_answer_threshold.count() <= 0) refuse("slow_answer_threshold: must be greater than 0");
  if (options.hooks.waiting_after.count() < 0) refuse("hooks.waiting_after: negative");
  if (options.max_background == 0) refuse("max_background: must be at least 1");
  validate_latency_buckets(options.latency_buckets);
}

}  // namespace

TransferEngine::TransferEngine(const ClientOptions& options)
    : logger_(make_logger(options.log_sink, options.log_level)),
      utc_offset_(options.utc_offset),
      user_agent_(options.user_agent.empty() ? "passthru/" PASSTHRU_VERSION_STRING : options.user_agent),
      max_in_flight_(options.max_in_flight),
      max_per_origin_(options.max_per_origin),
      max_background_(options.max_background),
      max_idle_seconds_(options.connection_max_idle.count()),
      key_prefix_(random_key_prefix()),
      guard_(options.block_private_destinations, options.allowed_destinations),
      executor_(options.executor),
      request_log_level_(to_spdlog(options.request_log_level)),
      send_traceparent_(options.send_traceparent),
      hooks_config_(std::make_shared<const RequestHooks>(options.hooks)),
      describe_requests_(options.hooks.on_start || options.hooks.on_waiting || options.hooks.on_end),
      metrics_((validate(options), options.latency_buckets), options.max_metric_steps,
               options.slow_answer_threshold),
      breakers_(options.circuit_breaker) {
  ensure_curl_global_init();
  jitter_.seed(std::random_device{}());
  multi_ = curl_multi_init();
  if (multi_ == nullptr) throw std::runtime_error("passthru: curl_multi_init failed");
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &TransferEngine::on_curl_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &TransferEngine::on_curl_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  // libcurl's default since 7.62, said here because CURLOPT_PIPEWAIT relies on
  // it. CURLMOPT_MAX_CONCURRENT_STREAMS stays at 100 per connection.
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  // libcurl's default cache holds 4 idle connections per easy handle added
  // at the moment one is returned: after a burst of completions that dips,
  // and kept-alive connections are closed only to be opened again (a
  // connect and a close per request, measured with bench/run). Every
  // connection was opened by a request running at the time, and an idle one
  // is closed after connection_max_idle, so the cache is already bounded by
  // the peak of requests in flight; at most max_in_flight of them are kept.
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(max_in_flight_));
}

TransferEngine::~TransferEngine() {
  // shut_down() has emptied active_; anything left (an engine never driven)
  // is released without callbacks, since no loop can deliver them now.
  for (auto& [id, transfer] : active_) {
    for (Leg& leg : transfer->legs) {
      if (leg.easy == nullptr) continue;
      curl_multi_remove_handle(multi_, leg.easy);
      curl_easy_cleanup(leg.easy);
    }
  }
  active_.clear();
  hooks_ = nullptr;
  close();
}

void TransferEngine::close() {
  // What is still watched now is parked: idle connections, which
  // curl_multi_cleanup closes without calling on_close_socket.
  while (!watched_.empty()) unwatch(watched_.begin()->first);
  for (SpareHandle& spare : spare_handles_) curl_easy_cleanup(spare.easy);
  spare_handles_.clear();
  connections_.clear();
  origin_connections_.clear();
  if (multi_ != nullptr) {
    curl_multi_cleanup(multi_);
    multi_ = nullptr;
  }
  // libcurl removes every socket before this point; should one remain, the
  // loop still hears of it before our duplicate closes.
  while (!watched_.empty()) unwatch(watched_.begin()->first);
}

std::uint64_t TransferEngine::submit(StepConfig step, CallContext call, OutcomeCallback on_outcome,
                                     Clock::time_point started) {
  const std::uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
  StepCounters& counters = metrics_.step(step.data().label, step.data().options.timeout);
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    if (accepting_) {
      in_flight_.fetch_add(1, std::memory_order_relaxed);
      counters.accepted();
      const bool was_empty = inbox_.empty();
      inbox_.push_back(Command{
          0, Submission{id, std::move(step), std::move(call), std::move(on_outcome), started, &counters}});
      // The loop drains the whole inbox when woken: one wake per batch.
      if (was_empty) hooks_->wake();
      return id;
    }
  }
  // Only reachable while the client is being destroyed: answer at once.
  HttpResult result;
  result.transport = Transport::cancelled;
  result.error = Errc::shut_down;
  result.detail = "client shut down";
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  counters.accepted();
  Submission submission{id, std::move(step), std::move(call), std::move(on_outcome), started, &counters};
  auto transfer = make_transfer(submission);
  complete(*transfer, std::move(result));
  return id;
}

void TransferEngine::cancel(std::uint64_t id) noexcept {
  try {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    if (!accepting_) return;
    const bool was_empty = inbox_.empty();
    inbox_.push_back(Command{id, std::nullopt});
    if (was_empty) hooks_->wake();
  } catch (...) {
    // Out of memory while queueing a cancellation: the request still ends
    // by its deadline, so nothing is lost but promptness.
  }
}

void TransferEngine::on_wake() {
  drain_commands();
  rearm_timer();
}

void TransferEngine::drain_commands() {
  // A burst of thousands of execute() calls is started a slice at a time, so
  // deadlines and sockets are served between slices: otherwise the first
  // requests' deadlines would wait for the last requests' connects.
  std::size_t budget = kStartsPerTurn;
  new_connections_this_turn_ = 0;
  while (budget > 0 && new_connections_this_turn_ < kNewConnectionsPerTurn) {
    if (draining_next_ == draining_.size()) {
      draining_.clear();
      draining_next_ = 0;
      std::lock_guard<std::mutex> lock(inbox_mutex_);
      draining_.swap(inbox_);
      if (draining_.empty()) return;
    }
    for (; budget > 0 && new_connections_this_turn_ < kNewConnectionsPerTurn &&
           draining_next_ < draining_.size();
         --budget, ++draining_next_) {
      Command& command = draining_[draining_next_];
      if (command.submission) {
        start(std::move(*command.submission));
      } else if (auto found = active_.find(command.cancel_id); found != active_.end()) {
        HttpResult result;
        result.transport = Transport::cancelled;
        result.error = Errc::cancelled;
        result.detail = "cancelled by the engine";
        finish(*found->second, result);
      }
    }
  }
  // Out of budget with work possibly left: come back after timers and sockets.
  hooks_->wake();
}

std::string TransferEngine::now_iso8601() const {
  const auto now = std::chrono::system_clock::now();
  return format_iso8601(now, utc_offset_ ? *utc_offset_ : local_utc_offset(now));
}

// Any thread: shut_down() and submit() make one for a request never started.
std::unique_ptr<Transfer> TransferEngine::make_transfer(Submission& submission) {
  auto transfer = std::make_unique<Transfer>(std::move(submission.step));
  transfer->id = submission.id;
  transfer->call_sid = submission.call.call_sid;
  transfer->on_outcome = std::move(submission.on_outcome);
  transfer->started = submission.started;
  transfer->counters = submission.counters;
  transfer->guard = &guard_;
  transfer->engine = this;
  const StepData& step = transfer->step.data();
  for (const auto& [name, value] : submission.call.custom) {
    if (contains_name(step.options.secret_names, name)) transfer->call_secrets.push_back(value);
  }
  if (auto parent = parse_traceparent(submission.call.traceparent))
    transfer->trace_id = std::move(parent->trace_id);
  return transfer;
}

// What the hooks are told of a request: as sent, less its secrets.
void TransferEngine::describe(Transfer& transfer, bool built) {
  const StepData& step = transfer.step.data();
  auto info = std::make_shared<RequestInfo>();
  info->request_id = transfer.id;
  info->call_sid = transfer.call_sid;
  info->step = step.label;
  info->method = step.options.method;
  info->trace_id = transfer.trace_id;
  info->timeout = step.options.timeout;
  if (built) {
    const auto hide = [&](std::string text) {
      if (!step.secrets.empty()) text = redact(std::move(text), step.secrets);
      if (!transfer.call_secrets.empty()) text = redact(std::move(text), transfer.call_secrets);
      return text;
    };
    const BuiltRequest& request = transfer.leg->request;
    info->url = hide(redact_url(request.url, step.options.secret_names));
    info->body = hide(request.body);
    info->headers.reserve(request.headers.size() + 1);
    info->headers.push_back("User-Agent: " + user_agent_);
    for (const std::string& line : request.headers) {
      const auto colon = line.find(':');
      // "Expect:" tells libcurl not to send a header at all.
      if (colon == std::string::npos || colon + 1 == line.size()) continue;
      const std::string_view name(line.data(), colon);
      const bool secret = contains_name(step.options.secret_names, name) ||
                          contains_name({"authorization", "proxy-authorization", "cookie"}, name);
      info->headers.push_back(secret ? std::string(name) + ": ***" : hide(line));
    }
    // Signed when sent, after this: the values are not known yet.
    if (!step.options.signing_keys.empty()) {
      info->headers.push_back(std::string(kSignatureIdHeader) + ": (made when sent)");
      info->headers.push_back(std::string(kSignatureTimestampHeader) + ": (made when sent)");
      info->headers.push_back(std::string(kSignatureHeader) + ": ***");
    }
  }
  transfer.info = std::move(info);
}

void TransferEngine::start(Submission submission) {
  const std::chrono::milliseconds timeout = submission.step.data().options.timeout;
  const CallContext& call = submission.call;
  auto transfer = make_transfer(submission);
  const StepData& step = transfer->step.data();
  // A new trace is marked sampled: the customer's server may record it, and
  // our log line carries its id.
  std::string flags = "01";
  const auto parent = parse_traceparent(call.traceparent);
  if (parent) {
    flags = parent->flags;
  } else {
    transfer->trace_id = trace_ids_.new_trace_id();
  }
  transfer->span_id = trace_ids_.new_span_id();

  HttpResult result;
  const std::string current_time = now_iso8601();
  try {
    transfer->leg->request = build_request(step, call, current_time);
  } catch (const InvalidCall& error) {
    result.transport = Transport::failed;
    result.error = Errc::invalid_request;
    result.detail = std::string("invalid call context: ") + error.what();
    return complete(*transfer, std::move(result));
  }
  if (step.fallback) {
    try {
      transfer->fallback_request = build_fallback_request(step, call, current_time);
    } catch (const InvalidCall& error) {
      // Only the fallback's URL is too long for this call: the primary goes alone.
      logger_->warn("call={} step={}: no fallback for this call: {}", escape_for_log(transfer->call_sid),
                    escape_for_log(step.label), escape_for_log(error.what()));
    }
  }
  std::vector<std::string> extra_headers;
  if (!step.has_idempotency_key) {
    // libcurl silently sends a request again when a reused keep-alive
    // connection closes before answering; the same key on every copy (and
    // on every retry and fallback) lets the customer's server drop the duplicate.
    // Derived from the call, the step and this execution's nonce (the
    // client's random prefix and the request id): never shared by two
    // executions, the same on every copy of one. The id stays readable.
    const std::string id = std::to_string(transfer->id);
    std::string material;
    material.reserve(key_prefix_.size() + transfer->call_sid.size() + step.label.size() + id.size() + 3);
    material.append(key_prefix_).append(1, '\n').append(transfer->call_sid).append(1, '\n');
    material.append(step.label).append(1, '\n').append(id);
    const std::string digest = sha256_hex(material);
    std::string header = "Idempotency-Key: ";
    header.append(std::string_view(digest).substr(0, 32)).append(1, '-').append(id);
    extra_headers.push_back(std::move(header));
  }
  if (send_traceparent_) {
    extra_headers.push_back("traceparent: " +
                            format_traceparent(transfer->trace_id, transfer->span_id, flags));
    if (parent && valid_tracestate(call.tracestate))
      extra_headers.push_back("tracestate: " + call.tracestate);
  }
  for (BuiltRequest* request :
       {&transfer->leg->request, transfer->fallback_request ? &*transfer->fallback_request : nullptr}) {
    if (request != nullptr)
      request->headers.insert(request->headers.end(), extra_headers.begin(), extra_headers.end());
  }
  if (describe_requests_) describe(*transfer, true);

  const Clock::time_point deadline = transfer->started + timeout;
  if (deadline <= Clock::now()) {
    result.transport = Transport::timed_out;
    result.error = Errc::timed_out;
    result.detail = fmt::format("no answer within {} ms (the deadline passed before the request could start)",
                                timeout.count());
    return complete(*transfer, std::move(result));
  }

  if (breakers_.enabled()) {
    const auto now = Clock::now();
    Leg& leg = *transfer->leg;
    leg.admission = breakers_.admit(step.origin, now);
    if (leg.admission == CircuitBreakers::Admission::refuse && transfer->fallback_request) {
      // The primary is down: straight to the fallback, with the whole timeout.
      switch_to_fallback(*transfer);
      leg.admission = breakers_.admit(leg.origin(), now);
    }
    if (leg.admission == CircuitBreakers::Admission::refuse) {
      // The origin is down: the caller moves on now, not at the deadline.
      const std::string& origin = leg.origin();
      result.transport = Transport::failed;
      result.error = Errc::circuit_open;
      result.detail = fmt::format("circuit open ({}: {}; next try in {} ms)", origin,
                                  breakers_.why_open(origin), breakers_.retry_after(origin, now).count());
      return complete(*transfer, std::move(result));
    }
    leg.admitted = true;
  }

  if (step.options.fire_and_forget && !send_in_background(*transfer)) return;

  // From here the deadline timer owns the request, queued or running.
  transfer->deadline = deadlines_.emplace(deadline, transfer->id);
  if (transfer->fallback_request) {
    transfer->share_end = shares_.emplace(transfer->started + step.primary_share(), transfer->id);
  }
  const RequestHooks& hooks = *hooks_config_;
  if (hooks.on_waiting && hooks.waiting_after.count() > 0 && hooks.waiting_after < timeout) {
    transfer->notice = notices_.emplace(transfer->started + hooks.waiting_after, transfer->id);
  }
  Transfer& ref = *transfer;
  active_.emplace(transfer->id, std::move(transfer));
  if (hooks.on_start) {
    dispatch([hooks = hooks_config_, info = ref.info] { hooks->on_start(*info); }, ref);
  }
  // on_start may have cancelled it (queued as a command): it is still here.
  schedule(ref);
}

// A fire-and-forget step: the call goes to default_next now, and the
// request goes on without it, within max_background. False when it was
// dropped instead (the call still goes on; nothing is sent).
bool TransferEngine::send_in_background(Transfer& transfer) {
  const StepData& step = transfer.step.data();
  Outcome now;
  now.request_id = transfer.id;
  now.route = Route::default_next;
  now.target = step.options.routes.default_next;
  now.background = true;
  now.trace_id = transfer.trace_id;
  now.span_id = transfer.span_id;
  if (background_.load(std::memory_order_relaxed) >= max_background_) {
    HttpResult result;
    result.transport = Transport::failed;
    result.error = Errc::background_full;
    result.detail = fmt::format(
        "not sent: {} fire-and-forget requests already in the background (max_background)", max_background_);
    if (transfer.counters != nullptr) transfer.counters->dropped_from_background();
    complete(transfer, std::move(result));
    return false;
  }
  background_.fetch_add(1, std::memory_order_relaxed);
  transfer.background = true;
  now.reason = "sent in the background (fire and forget): the call goes on now";
  now.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - transfer.started);
  deliver(transfer, std::move(now), false);
  transfer.on_outcome = nullptr;  // the callback has had its one outcome
  return true;
}

bool TransferEngine::origin_has_room(const std::string& origin) const {
  if (max_per_origin_ == 0) return true;
  const auto found = origin_slots_.find(origin);
  return found == origin_slots_.end() || found->second.running < max_per_origin_;
}

// Runs the request now, or queues it: behind its origin while that origin has
// max_per_origin running (so one slow customer cannot hold every slot), else
// behind the client while max_in_flight run. Either wait counts against its
// own deadline.
void TransferEngine::schedule(Transfer& transfer) {
  const std::string& origin = transfer.leg->origin();
  if (!origin_has_room(origin)) {
    transfer.queued = true;
    transfer.origin_bound = true;
    queued_count_.fetch_add(1, std::memory_order_relaxed);
    origin_slots_[origin].waiting.push_back(transfer.id);
  } else if (max_in_flight_ != 0 && running_ >= max_in_flight_) {
    transfer.queued = true;
    queued_count_.fetch_add(1, std::memory_order_relaxed);
    waiting_.push_back(transfer.id);
  } else {
    launch(transfer);
  }
}

void TransferEngine::launch(Transfer& transfer) {
  if (!transfer.launched) transfer.launched = Clock::now();
  if (std::optional<std::string> failure = launch_leg(transfer, *transfer.leg)) {
    HttpResult result;
    result.transport = Transport::failed;
    result.error = Errc::transport_failed;
    result.detail = std::move(*failure);
    finish(transfer, result);
  }
}

// Starts an attempt of `leg`: nothing once libcurl has it, else why not.
std::optional<std::string> TransferEngine::launch_leg(Transfer& transfer, Leg& leg) {
  leg.attempt_started = Clock::now();
  const StepData& step = transfer.step.data();
  const auto fail = [](std::string detail) { return std::optional<std::string>(std::move(detail)); };

  CURL* easy = leg.easy;  // a retry reuses its handle
  if (easy == nullptr) {
    easy = take_spare(transfer, leg, leg.configured);
  } else if (!leg.configured) {
    curl_easy_reset(easy);
  }
  if (easy == nullptr) {
    easy = curl_easy_init();
    leg.configured = false;
  }
  if (easy == nullptr) return fail("curl_easy_init failed");
  leg.easy = easy;

  const BuiltRequest& request = leg.request;
  // EXPECT_100_THRESHOLD in libcurl 7.87 and later: no Expect below it.
  static_assert(kMaxPostBodyBytes <= 1024 * 1024, "libcurl would ask for 100-continue");
  for (std::size_t i = 0; i < request.headers.size(); ++i) {
    const std::size_t implied = request.implied_by_libcurl;
    if (implied != std::string::npos && i >= implied && i < implied + 2) continue;  // Content-Type, Expect
    const std::string& line = request.headers[i];
    curl_slist* appended = curl_slist_append(leg.headers, line.c_str());
    if (appended == nullptr) return fail("out of memory building headers");
    leg.headers = appended;
  }
  if (!step.options.signing_keys.empty()) {
    try {
      for (const std::string& line :
           signature_headers(step.options.signing_keys, to_string(request.method), request.signed_url,
                             request.body, std::chrono::system_clock::now())) {
        curl_slist* appended = curl_slist_append(leg.headers, line.c_str());
        if (appended == nullptr) return fail("out of memory building headers");
        leg.headers = appended;
      }
    } catch (const std::exception& error) {
      return fail(fmt::format("signing the request failed: {}", error.what()));
    }
  }

  if (!leg.configured) {
    configure_for_step(easy, step, leg);
    leg.configured = true;
  }
  // What differs from one request to the next of the same step.
  const auto remaining =
      std::chrono::ceil<std::chrono::milliseconds>(transfer.deadline->first - Clock::now());
  curl_easy_setopt(easy, CURLOPT_PRIVATE, &leg);
  // libcurl 7.88 writes the request line's query out one byte at a time
  // through its printf, and parses the URL holding it first: for a GET with
  // the call's parameters, a fifth of what libcurl spends on a request
  // (bench/floor_curl.cpp). Handed the request-target whole, and the step's
  // URL without them, it copies the line. Not when redirects are followed:
  // libcurl would send the same target to the next location.
  const bool whole_target = request.method == Method::get && step.options.max_redirects == 0;
  if (whole_target) {
    const bool fallback = leg.endpoint == Endpoint::fallback && step.fallback;
    const std::string& base_url = fallback ? step.fallback->base_url : step.base_url;
    const std::string& path = fallback ? step.fallback->path : step.path;
    const auto query = request.url.find('?');
    std::string target = path;
    if (query != std::string::npos) target.append(request.url, query, std::string::npos);
    curl_easy_setopt(easy, CURLOPT_URL, base_url.c_str());
    curl_easy_setopt(easy, CURLOPT_REQUEST_TARGET, target.c_str());
  } else {
    curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_REQUEST_TARGET, nullptr);
  }
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, &leg);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, leg.headers);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &leg);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &leg);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, leg.error);
  // Over HTTP/1.1 a connection serves one request at a time: with none of
  // the origin's idle, this request needs a new one (OriginConnections).
  // Over https, HTTP/2 may share a busy connection: libcurl looks.
  const bool may_multiplex =
      step.options.http_version != HttpVersion::http1_1 && leg.origin().rfind("https://", 0) == 0;
  const bool fresh = !may_multiplex && !has_idle_connection(leg.origin());
  curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
  if (fresh) ++new_connections_this_turn_;
  // StepOptions::connect_timeout and read_timeout limit each attempt; where
  // they reach past the deadline, our timer ends it and libcurl's is a backstop.
  const std::chrono::milliseconds connect_timeout = step.options.connect_timeout;
  const std::chrono::milliseconds attempt_limit = connect_timeout + step.options.read_timeout;
  // 0 is libcurl's default, which the deadline's backstop below bounds.
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   connect_timeout.count() > 0 && connect_timeout < remaining
                       ? static_cast<long>(connect_timeout.count())
                       : 0L);
  leg.attempt_limited = step.options.read_timeout.count() > 0 && attempt_limit < remaining;
  curl_easy_setopt(
      easy, CURLOPT_TIMEOUT_MS,
      static_cast<long>(leg.attempt_limited ? attempt_limit.count() : (remaining + kCurlBackstop).count()));
  if (request.method == Method::post) {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  }

  if (const CURLMcode rc = curl_multi_add_handle(multi_, easy); rc != CURLM_OK) {
    curl_easy_setopt(easy, CURLOPT_PRIVATE, nullptr);
    return fail(fmt::format("curl_multi_add_handle failed: {}", curl_multi_strerror(rc)));
  }
  leg.running = true;
  ++running_;
  if (max_per_origin_ != 0) ++origin_slots_[leg.origin()].running;
  return std::nullopt;
}

// Sets every option that is the same for each request of `step` to the
// leg's endpoint, on a handle fresh or reset. Pointers into a leg are per
// request: launch_leg sets those.
void TransferEngine::configure_for_step(CURL* easy, const StepData& step, const Leg& leg) {
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  // The threaded resolver runs getaddrinfo() on a thread of its own, which
  // cannot be interrupted. Removing a handle whose lookup still runs (a
  // deadline, a cancel, a shutdown) joins that thread unless this is set
  // (Curl_resolver_kill in lib/asyn-thread.c): the loop thread would wait
  // out a hanging DNS server, and every other request's outcome with it.
  // With it, libcurl detaches the thread, which frees its own state when
  // getaddrinfo() returns and never touches this handle again, so the handle
  // may be reset and reused at once (tests/dns). Hence libcurl 7.87 or later.
  curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
  curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN, static_cast<long>(max_idle_seconds_));
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  // HTTP/2 by ALPN over TLS only (see StepConfig::build for h2c). Without
  // HTTP/2 in libcurl, setting 2TLS fails and HTTP/1.1 is used.
  const bool http1_only = step.options.http_version == HttpVersion::http1_1;
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                   static_cast<long>(http1_only ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2TLS));
  // Requests that start together wait for the origin's first connection to
  // say whether it multiplexes, instead of opening one connection each: over
  // https that is known after the TLS handshake, so an HTTP/1.1 server costs
  // them one handshake; over http:// libcurl would hold them until the first
  // answer arrived, so there it stays off. Each request's deadline holds.
  if (!http1_only && leg.origin().rfind("https://", 0) == 0) curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
  // Proxy environment variables are not read: where a request goes is the
  // step's URL alone.
  curl_easy_setopt(easy, CURLOPT_PROXY, "");
  if (step.options.max_redirects > 0) {
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, static_cast<long>(step.options.max_redirects));
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  } else {
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  }
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &Leg::on_open_socket);
  // The loop hears watch_socket(fd, none) before any socket is closed.
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &TransferEngine::on_close_socket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
  const TlsOptions& tls = step.options.tls;
  // Set whatever the system's OpenSSL configuration allows: the minimum is ours.
  curl_easy_setopt(easy, CURLOPT_SSLVERSION,
                   static_cast<long>(tls.min_version == TlsVersion::v1_3 ? CURL_SSLVERSION_TLSv1_3
                                                                         : CURL_SSLVERSION_TLSv1_2));
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, tls.verify_peer ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, tls.verify_host ? 2L : 0L);
  // A CA file or directory replaces the system store rather than adding to it.
  if (!tls.ca_file.empty() || !tls.ca_dir.empty()) {
    curl_easy_setopt(easy, CURLOPT_CAINFO, tls.ca_file.empty() ? nullptr : tls.ca_file.c_str());
    curl_easy_setopt(easy, CURLOPT_CAPATH, tls.ca_dir.empty() ? nullptr : tls.ca_dir.c_str());
  }
  if (!tls.client_cert_file.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSLCERT, tls.client_cert_file.c_str());
    if (!tls.client_key_file.empty()) curl_easy_setopt(easy, CURLOPT_SSLKEY, tls.client_key_file.c_str());
    // Always set: with no password OpenSSL would otherwise ask for one on
    // the process's standard input, blocking the loop thread.
    curl_easy_setopt(easy, CURLOPT_KEYPASSWD, tls.client_key_password.c_str());
  }
  if (!tls.pinned_public_key.empty()) {
    curl_easy_setopt(easy, CURLOPT_PINNEDPUBLICKEY, tls.pinned_public_key.c_str());
  }
  curl_easy_setopt(easy, CURLOPT_USERAGENT, user_agent_.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Leg::on_write);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Leg::on_header);
  curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(step.options.max_answer_bytes));
  // libcurl allocates the buffer at the handle's first transfer and keeps it
  // through curl_easy_reset(), which sets the size back to 16 KiB: so it is
  // set here, after every init and reset and before any transfer, always to
  // the same size, and libcurl never reads more than it allocated.
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, kReceiveBufferBytes);
}

void TransferEngine::launch_waiting(const std::string* freed_origin) {
  // finish() calls this and launch() can call finish(): one loop, no recursion.
  if (launching_ || shutting_down_) return;
  launching_ = true;
  const auto room = [&] { return max_in_flight_ == 0 || running_ < max_in_flight_; };
  // A request whose deadline has passed while it waited is not sent now: the
  // deadline timer, due this turn, ends it with the reason it never started.
  const auto now = Clock::now();
  const auto due = [&](const Transfer& transfer) { return transfer.deadline->first <= now; };
  // A slot of this origin came free: its oldest waiting request goes next,
  // at once if the client has room, else to the client's queue.
  if (freed_origin != nullptr && max_per_origin_ != 0) {
    const auto slots = origin_slots_.find(*freed_origin);
    while (slots != origin_slots_.end() && !slots->second.waiting.empty() &&
           slots->second.running < max_per_origin_) {
      const std::uint64_t id = slots->second.waiting.front();
      slots->second.waiting.pop_front();
      const auto found = active_.find(id);
      if (found == active_.end() || !found->second->queued) continue;  // cancelled or expired while queued
      Transfer& transfer = *found->second;
      if (due(transfer)) continue;
      transfer.origin_bound = false;
      if (!room()) {
        waiting_.push_back(id);
        break;
      }
      transfer.queued = false;
      queued_count_.fetch_sub(1, std::memory_order_relaxed);
      launch(transfer);
    }
    if (slots != origin_slots_.end() && slots->second.running == 0 && slots->second.waiting.empty()) {
      origin_slots_.erase(slots);  // an origin at rest costs nothing
    }
  }
  while (!waiting_.empty() && room()) {
    const std::uint64_t id = waiting_.front();
    waiting_.pop_front();
    const auto found = active_.find(id);
    if (found == active_.end() || !found->second->queued) continue;  // cancelled or expired while queued
    Transfer& transfer = *found->second;
    if (due(transfer)) continue;
    const std::string& origin = transfer.leg->origin();
    if (!origin_has_room(origin)) {
      transfer.origin_bound = true;
      origin_slots_[origin].waiting.push_back(id);
      continue;
    }
    transfer.queued = false;
    queued_count_.fetch_sub(1, std::memory_order_relaxed);
    launch(transfer);
  }
  launching_ = false;
}

void TransferEngine::on_socket(int fd, int events) {
  int running = 0;
  // A late event for an fd the loop was just told to forget is dropped.
  if (const auto found = curl_fd_of_.find(fd); found != curl_fd_of_.end()) {
    const auto watched = watched_.find(found->second);
    if (watched != watched_.end() && watched->second.parked) {
      // An idle connection spoke (the server closed it, most likely): the
      // loop stops watching it; libcurl sees it dead when it next looks.
      unwatch(found->second);
    } else {
      curl_multi_socket_action(multi_, found->second, events, &running);
    }
  }
  drain_curl_messages();
  expire_deadlines(Clock::now());
  fire_attempt_timers(Clock::now());
  fire_notices(Clock::now());
  rearm_timer();
}

void TransferEngine::on_timer() {
  const auto now = Clock::now();
  armed_.reset();
  if (curl_due_ && *curl_due_ <= now) {
    curl_due_.reset();
    int running = 0;
    curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_curl_messages();
  }
  expire_deadlines(Clock::now());
  fire_attempt_timers(Clock::now());
  fire_notices(Clock::now());
  rearm_timer();
}

void TransferEngine::drain_curl_messages() {
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    Leg* leg = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&leg));
    if (leg == nullptr) continue;
    Transfer& transfer = *leg->transfer;
    const HttpResult result = read_result(*leg, message->data.result);
    if (transfer.hedge != nullptr) {
      settle_hedged(transfer, *leg, result);
    } else if (!try_again(transfer, result)) {
      finish(transfer, result);
    }
  }
}

// What one attempt of `leg` came to, as libcurl ended it with `code`.
HttpResult TransferEngine::read_result(Leg& leg, CURLcode code) {
  CURL* easy = leg.easy;
  const StepOptions& options = leg.transfer->step.data().options;
  HttpResult result;
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  result.status = static_cast<int>(status);
  if (code == CURLE_OK) {
    result.transport = Transport::completed;
    char* content_type = nullptr;
    if (curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK &&
        content_type != nullptr) {
      result.content_type = content_type;
    }
    char* location = nullptr;
    if (curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location != nullptr) {
      result.location = location;
    }
    result.body = std::move(leg.answer);
  } else if (code == CURLE_OPERATION_TIMEDOUT) {
    // Before the deadline only by the step's connect_timeout or read_timeout.
    // Connected (DNS, TCP and TLS within connect_timeout), the request is
    // sent at once: with nothing sent, it was the connect that ran out.
    long request_bytes = 0;
    curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_bytes);
    result.transport = Transport::timed_out;
    result.error = Errc::timed_out;
    if (request_bytes == 0 && options.connect_timeout.count() > 0) {
      result.detail =
          fmt::format("not connected within the connect timeout of {} ms", options.connect_timeout.count());
    } else if (leg.attempt_limited) {
      result.detail = fmt::format("no answer within the read timeout of {} ms", options.read_timeout.count());
    } else {
      result.detail = fmt::format("no answer within {} ms", options.timeout.count());
    }
  } else if (leg.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    result.transport = Transport::failed;
    result.error = Errc::answer_too_large;
    result.detail = fmt::format("answer larger than {} bytes", options.max_answer_bytes);
  } else if (!leg.blocked.empty() && !leg.permitted) {
    // Every address was refused. (When one was permitted, its own failure
    // is the reason: "localhost" is ::1 and 127.0.0.1 to libcurl.)
    result.transport = Transport::failed;
    result.error = Errc::blocked_destination;
    result.detail = fmt::format("blocked destination ({})", leg.blocked);
  } else {
    result.transport = Transport::failed;
    auto [errc, detail] = describe_failure(easy, code, leg.error, leg.received());
    result.error = errc;
    result.detail = std::move(detail);
  }
  return result;
}

// A hedged request: `leg` (primary or fallback) ended with `result` while
// the other still runs. An answer to route by wins, and the other leg is
// cancelled; a failure leaves the other to go on alone.
void TransferEngine::settle_hedged(Transfer& transfer, Leg& leg, const HttpResult& result) {
  const bool answered = (result.transport == Transport::completed && result.status < 500) ||
                        result.error == Errc::answer_too_large;
  if (answered) {
    if (&leg == transfer.hedge) std::swap(transfer.leg, transfer.hedge);
    return finish(transfer, result);  // which cancels the other leg
  }
  if (&leg == transfer.leg) std::swap(transfer.leg, transfer.hedge);
  transfer.hedge = nullptr;
  end_attempt(transfer, leg, result);
  recycle(leg);
}

void TransferEngine::expire_deadlines(Clock::time_point now) {
  if (deadlines_.empty() || deadlines_.begin()->first > now) return;
  // Every due outcome goes out before any handle leaves libcurl: removing a
  // handle whose connection is open closes it, tens of microseconds each, and
  // a thousand deadlines due in the same millisecond would otherwise each
  // wait for the clean-up of those before (bench/deadline_lateness). Until
  // the end of this function the handles stay in libcurl, unused: nothing
  // here drives a transfer.
  defer_removals_ = true;
  const auto expire_due = [this](Clock::time_point at) {
    while (!deadlines_.empty() && deadlines_.begin()->first <= at) {
      const auto found = active_.find(deadlines_.begin()->second);
      HttpResult result;
      result.transport = Transport::timed_out;
      result.error = Errc::timed_out;
      Transfer& transfer = *found->second;
      result.detail = timeout_detail(transfer);
      finish(transfer, result);
    }
  };
  expire_due(now);
  // Then the clean-up. A deadline that falls due meanwhile (the next
  // millisecond's) is delivered between removals, not after all of them.
  for (std::size_t i = 0; i < deferred_removals_.size(); ++i) {
    if (i % kRemovalsBetweenClockReads == 0 && i > 0) expire_due(Clock::now());
    SpareHandle spare = std::move(deferred_removals_[i]);  // expire_due() may grow the vector
    curl_multi_remove_handle(multi_, spare.easy);
    if (spare_handles_.size() < kMaxSpareHandles) {
      spare_handles_.push_back(std::move(spare));
    } else {
      curl_easy_cleanup(spare.easy);
    }
  }
  defer_removals_ = false;
  deferred_removals_.clear();
}

void TransferEngine::fire_notices(Clock::time_point now) {
  while (!notices_.empty() && notices_.begin()->first <= now) {
    Transfer& transfer = *active_.at(notices_.begin()->second);
    notices_.erase(notices_.begin());
    transfer.notice.reset();
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - transfer.started);
    dispatch([hooks = hooks_config_, info = transfer.info, waited] { hooks->on_waiting(*info, waited); },
             transfer);
  }
}

std::string TransferEngine::timeout_detail(const Transfer& transfer) const {
  const auto timeout = transfer.step.data().options.timeout.count();
  const Leg& leg = *transfer.leg;
  if (transfer.queued && transfer.origin_bound) {
    return fmt::format("no answer within {} ms (never started: max_per_origin {} reached for {})", timeout,
                       max_per_origin_, transfer.step.data().origin);
  }
  if (transfer.queued) {
    return fmt::format("no answer within {} ms (never started: max_in_flight {} reached)", timeout,
                       max_in_flight_);
  }
  if (transfer.hedge != nullptr) {
    return fmt::format("no answer within {} ms from the primary, nor from the fallback sent after {} ms",
                       timeout, transfer.step.data().options.hedge_after.count());
  }
  if (leg.interim)
    return fmt::format("no answer within {} ms (only an interim 1xx response arrived)", timeout);
  if (!leg.running && transfer.last_result) {
    return fmt::format("no answer within {} ms ({} attempts; the last: {})", timeout,
                       transfer.attempt_log.size(), transfer.attempt_log.back().reason);
  }
  if (leg.head_bytes == 0 && !transfer.attempt_log.empty()) {
    return fmt::format("no answer within {} ms ({} attempts; before this one: {})", timeout,
                       transfer.attempt_log.size() + 1, transfer.attempt_log.back().reason);
  }
  if (leg.head_bytes == 0) return fmt::format("no answer within {} ms", timeout);
  curl_off_t promised = -1;
  curl_easy_getinfo(leg.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &promised);
  if (promised >= 0) {
    return fmt::format("no complete answer within {} ms (headers and {} of {} body bytes received)", timeout,
                       leg.answer.size(), promised);
  }
  return fmt::format("no complete answer within {} ms (headers and {} body bytes received)", timeout,
                     leg.answer.size());
}

void TransferEngine::rearm_timer() {
  // libcurl asks for "at once" (0 ms) after every curl_multi_add_handle, to
  // start the transfer: a timer for it would cost a loop turn, and on loops
  // that count in milliseconds (libuv) a whole millisecond per request. So it
  // runs here, at the end of the turn, outside every libcurl callback; a few
  // rounds at most, so a libcurl that keeps asking cannot hold the loop.
  for (int round = 0; round < 4 && curl_due_ && *curl_due_ <= Clock::now(); ++round) {
    curl_due_.reset();
    int running = 0;
    curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_curl_messages();
  }
  std::optional<Clock::time_point> next = curl_due_;
  if (!deadlines_.empty() && (!next || deadlines_.begin()->first < *next)) next = deadlines_.begin()->first;
  for (const auto* timers : {&notices_, &backoffs_, &shares_}) {
    if (!timers->empty() && (!next || timers->begin()->first < *next)) next = timers->begin()->first;
  }
  if (next != armed_) {
    armed_ = next;
    hooks_->arm_timer(next);
  }
}

void TransferEngine::finish(Transfer& transfer, const HttpResult& result) {
  // Take the transfer out of every structure before the callback runs, so
  // nothing the callback does (cancel, execute) can reach it again.
  auto node = active_.extract(transfer.id);
  std::unique_ptr<Transfer> owned = std::move(node.mapped());
  deadlines_.erase(owned->deadline);
  if (owned->notice) notices_.erase(*owned->notice);
  if (owned->backoff) backoffs_.erase(*owned->backoff);
  if (owned->share_end) shares_.erase(*owned->share_end);
  if (owned->queued) queued_count_.fetch_sub(1, std::memory_order_relaxed);
  const auto now = Clock::now();
  // A hedged request's other leg is no longer needed: it shares a deadline
  // or a cancellation, and loses to an answer.
  std::string freed_by_hedge;
  if (Leg* other = owned->hedge) {
    HttpResult ended = result;
    if (result.transport != Transport::timed_out && result.transport != Transport::cancelled) {
      ended = HttpResult{};
      ended.transport = Transport::cancelled;
      ended.error = Errc::cancelled;
      ended.detail = fmt::format("cancelled: the {} answered first",
                                 owned->leg->endpoint == Endpoint::fallback ? "fallback" : "primary");
    }
    stop_leg(*owned, *other, ended, now);
    freed_by_hedge = other->origin();
    owned->hedge = nullptr;
  }
  Leg& leg = *owned->leg;
  // Between attempts, what the last one measured.
  Wire wire = owned->last_result ? owned->last_wire : Wire{};
  const bool was_running = leg.running;
  // Routed once, for the attempt log and the outcome.
  Outcome routed = owned->step.data().router.route(result);
  if (leg.running) {
    wire = stop_leg(*owned, leg, result, now, &routed);
  } else {
    judge_origin(leg, result);  // admitted and never sent: no verdict
  }
  wire.attempts = static_cast<int>(owned->attempt_log.size());
  wire.timings.queued =
      std::chrono::duration_cast<std::chrono::microseconds>(owned->launched.value_or(now) - owned->started);
  if (owned->background) background_.fetch_sub(1, std::memory_order_relaxed);
  const std::string freed_origin = was_running ? leg.origin() : std::string();
  complete(*owned, result, &wire, &routed);
  release(std::move(owned));
  launch_waiting(freed_origin.empty() ? nullptr : &freed_origin);
  if (!freed_by_hedge.empty() && freed_by_hedge != freed_origin) launch_waiting(&freed_by_hedge);
}

// One attempt ended (or, for the primary's share, is abandoned) with
// `result`. Returns true when the request goes on: a retry at the same URL
// after a backoff, or the fallback now. False leaves the request as it was.
bool TransferEngine::try_again(Transfer& transfer, const HttpResult& result) {
  const StepData& step = transfer.step.data();
  Leg& leg = *transfer.leg;
  if (result.transport == Transport::cancelled || shutting_down_) return false;
  const bool answered = result.transport == Transport::completed;
  if (answered && result.status < 500) return false;
  if (result.error == Errc::answer_too_large || result.error == Errc::invalid_request) return false;
  long request_bytes = 0;
  if (leg.running) curl_easy_getinfo(leg.easy, CURLINFO_REQUEST_SIZE, &request_bytes);
  // Nothing of the request left us: sending it again cannot act twice.
  const bool nothing_sent = result.error == Errc::connect_failed || result.error == Errc::dns_failed ||
                            (result.transport == Transport::timed_out && request_bytes == 0);
  const bool transient = nothing_sent || answered || result.error == Errc::send_failed ||
                         result.error == Errc::receive_failed || result.error == Errc::timed_out ||
                         result.error == Errc::transport_failed;
  const auto now = Clock::now();
  const bool fallback_pending = leg.endpoint == Endpoint::primary && transfer.fallback_request;
  // The primary's attempts end with its share (or when the hedge goes); the
  // fallback's with the deadline.
  const Clock::time_point limit =
      fallback_pending ? transfer.started + step.primary_share() : transfer.deadline->first;

  // After sending, only what the step's retry policy names.
  const RetryAfterSend& policy = step.retry_after_send;
  const bool retry_sent = answered                                   ? policy.server_error
                          : result.transport == Transport::timed_out ? policy.timeout
                                                                     : transient && policy.failure;
  if (leg.retries_done < step.options.retries && (nothing_sent || retry_sent)) {
    const Clock::time_point due = now + backoff(leg.retries_done);
    if (due < limit) {
      if (leg.running) end_attempt(transfer, leg, result);
      ++leg.retries_done;
      transfer.backoff = backoffs_.emplace(due, transfer.id);
      return true;
    }
  }
  // Any failure of the primary goes to the fallback, unless the guard
  // refused the address (the request never left) or the fallback's circuit is open.
  if (!fallback_pending || result.error == Errc::blocked_destination) return false;
  auto admission = CircuitBreakers::Admission::send;
  if (breakers_.enabled()) {
    admission = breakers_.admit(step.fallback->origin, now);
    if (admission == CircuitBreakers::Admission::refuse) return false;
  }
  if (leg.running) end_attempt(transfer, leg, result);
  if (transfer.backoff) {
    backoffs_.erase(*transfer.backoff);
    transfer.backoff.reset();
  }
  switch_to_fallback(transfer);
  leg.admission = admission;
  leg.admitted = breakers_.enabled();
  schedule(transfer);
  return true;
}

void TransferEngine::switch_to_fallback(Transfer& transfer) {
  Leg& leg = *transfer.leg;
  leg.endpoint = Endpoint::fallback;
  leg.configured = false;  // its handle was set up for the primary
  leg.request = std::move(*transfer.fallback_request);
  transfer.fallback_request.reset();
  leg.retries_done = 0;
  if (transfer.share_end) {
    shares_.erase(*transfer.share_end);
    transfer.share_end.reset();
  }
}

// StepOptions::hedge_after: the primary has not answered, so the fallback
// goes too, on a leg of its own, and the first answer wins. Not while the
// client or the fallback's origin is at its limit (a hedge is extra load),
// nor while the fallback's circuit is open: the primary then goes on alone,
// and should it fail, the fallback is still tried.
void TransferEngine::start_hedge(Transfer& transfer, Clock::time_point now) {
  const StepData& step = transfer.step.data();
  if (!transfer.fallback_request) return;
  const std::string& origin = step.fallback->origin;
  if ((max_in_flight_ != 0 && running_ >= max_in_flight_) || !origin_has_room(origin)) {
    logger_->debug("call={} step={}: no hedge: max_in_flight or max_per_origin reached",
                   escape_for_log(transfer.call_sid), escape_for_log(step.label));
    return;
  }
  auto admission = CircuitBreakers::Admission::send;
  if (breakers_.enabled()) {
    admission = breakers_.admit(origin, now);
    if (admission == CircuitBreakers::Admission::refuse) return;
  }
  Leg& hedge = transfer.other_leg();
  hedge.endpoint = Endpoint::fallback;
  hedge.hedged = true;
  hedge.request = std::move(*transfer.fallback_request);
  transfer.fallback_request.reset();
  hedge.admission = admission;
  hedge.admitted = breakers_.enabled();
  if (std::optional<std::string> failure = launch_leg(transfer, hedge)) {
    if (hedge.admitted) breakers_.abandon(origin, admission);
    hedge.admitted = false;
    logger_->warn("call={} step={}: no hedge: {}", escape_for_log(transfer.call_sid),
                  escape_for_log(step.label), escape_for_log(*failure));
    return;
  }
  transfer.hedge = &hedge;
}

// Takes a running leg out of libcurl: records its attempt, tells its
// origin's breaker and frees its slot. Returns what its wire measured.
Wire TransferEngine::stop_leg(Transfer& transfer, Leg& leg, const HttpResult& result, Clock::time_point now,
                              const Outcome* routed) {
  Wire wire;
  read_wire(leg.easy, wire);
  if (result.transport == Transport::timed_out || result.transport == Transport::cancelled) {
    // Ended by our timer or the engine: libcurl's clock stopped at its last event.
    wire.timings.transfer = std::chrono::duration_cast<std::chrono::microseconds>(now - leg.attempt_started);
  }
  record_attempt(transfer, leg, result, now, routed);
  judge_origin(leg, result);
  if (defer_removals_) {
    // Removed, then kept, by expire_deadlines(), when this leg is gone.
    curl_easy_setopt(leg.easy, CURLOPT_PRIVATE, nullptr);
    deferred_removals_.push_back(spare_of(leg.easy, transfer, leg));
    leg.easy = nullptr;
  } else {
    curl_multi_remove_handle(multi_, leg.easy);
  }
  leg.running = false;
  --running_;
  if (max_per_origin_ != 0) --origin_slots_[leg.origin()].running;
  return wire;
}

// Ends the running attempt of `leg` and frees its slot; the request goes on.
void TransferEngine::end_attempt(Transfer& transfer, Leg& leg, const HttpResult& result) {
  transfer.last_wire = stop_leg(transfer, leg, result, Clock::now());
  transfer.last_result = result;
  leg.reset_attempt();
  const std::string freed = leg.origin();
  launch_waiting(&freed);
}

// `routed` is `result` routed already, if the caller has it.
void TransferEngine::record_attempt(Transfer& transfer, const Leg& leg, const HttpResult& result,
                                    Clock::time_point now, const Outcome* routed) {
  Attempt attempt;
  attempt.endpoint = leg.endpoint;
  attempt.hedged = leg.hedged;
  attempt.host = leg.host();
  attempt.started =
      std::chrono::duration_cast<std::chrono::microseconds>(leg.attempt_started - transfer.started);
  attempt.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(now - leg.attempt_started);
  attempt.http_status = result.status;
  if (routed != nullptr) {
    attempt.error = routed->error;
    attempt.reason = routed->reason;
  } else {
    Outcome own = transfer.step.data().router.route(result);
    attempt.error = own.error;
    attempt.reason = std::move(own.reason);
  }
  transfer.attempt_log.push_back(std::move(attempt));
}

std::chrono::milliseconds TransferEngine::backoff(int retry) {
  auto cap = kFirstBackoff;
  for (int i = 0; i < retry && cap < kMaxBackoff; ++i) cap *= 2;
  cap = std::min(cap, kMaxBackoff);
  const auto half = cap.count() / 2;
  return std::chrono::milliseconds(half +
                                   std::uniform_int_distribution<long long>(0, cap.count() - half)(jitter_));
}

void TransferEngine::fire_attempt_timers(Clock::time_point now) {
  // The primary's share ran out: its attempt (running or waiting to retry)
  // gives way to the fallback, or with hedge_after, is joined by it. Should
  // the fallback's circuit be open, the primary goes on to the deadline.
  while (!shares_.empty() && shares_.begin()->first <= now) {
    Transfer& transfer = *active_.at(shares_.begin()->second);
    shares_.erase(shares_.begin());
    transfer.share_end.reset();
    const Leg& leg = *transfer.leg;
    if (leg.running && transfer.step.data().options.hedge_after.count() > 0) {
      start_hedge(transfer, now);
    } else if (leg.running) {
      HttpResult result;
      result.transport = Transport::timed_out;
      result.error = Errc::timed_out;
      result.detail = fmt::format("no answer within the primary's {} ms share of the timeout",
                                  transfer.step.data().primary_share().count());
      try_again(transfer, result);
    } else if (transfer.backoff && transfer.last_result) {
      try_again(transfer, *transfer.last_result);
    }
    // Queued for a slot: it waits for one, for the primary, to the deadline.
  }
  while (!backoffs_.empty() && backoffs_.begin()->first <= now) {
    Transfer& transfer = *active_.at(backoffs_.begin()->second);
    backoffs_.erase(backoffs_.begin());
    transfer.backoff.reset();
    if (breakers_.enabled()) {
      Leg& leg = *transfer.leg;
      leg.admission = breakers_.admit(leg.origin(), now);
      if (leg.admission == CircuitBreakers::Admission::refuse) {
        const HttpResult last = *transfer.last_result;  // outlives the transfer
        finish(transfer, last);  // its circuit opened meanwhile: the last failure stands
        continue;
      }
      leg.admitted = true;
    }
    schedule(transfer);
  }
}

// Tells the origin's circuit breaker how the leg's attempt went. Only what
// the server did counts: an attempt cancelled, shut down, refused by the
// guard or timed out before it was sent says nothing about it.
void TransferEngine::judge_origin(Leg& leg, const HttpResult& result) {
  if (!breakers_.enabled() || !leg.admitted) return;
  leg.admitted = false;
  const std::string& origin = leg.origin();
  const bool no_verdict =
      !leg.running || result.transport == Transport::cancelled || result.error == Errc::blocked_destination;
  if (no_verdict) return breakers_.abandon(origin, leg.admission);
  const bool failed = result.transport != Transport::completed || result.status >= 500;
  const auto now = Clock::now();
  switch (breakers_.record(origin, leg.admission, failed, now)) {
    case CircuitBreakers::Change::none: break;
    case CircuitBreakers::Change::opened:
    case CircuitBreakers::Change::reopened:
      logger_->warn("circuit open for {}: {}; its requests route to on-error at once for {} ms",
                    escape_for_log(origin), breakers_.why_open(origin),
                    breakers_.retry_after(origin, now).count());
      break;
    case CircuitBreakers::Change::closed:
      logger_->warn("circuit closed for {}: its probe requests succeeded", escape_for_log(origin));
      break;
  }
}

MetricsSnapshot TransferEngine::metrics() const {
  MetricsSnapshot snapshot = metrics_.snapshot(in_flight_.load(std::memory_order_relaxed),
                                               queued_count_.load(std::memory_order_relaxed));
  snapshot.origins = breakers_.snapshot();
  snapshot.background = background_.load(std::memory_order_relaxed);
  std::sort(snapshot.origins.begin(), snapshot.origins.end(),
            [](const OriginMetrics& a, const OriginMetrics& b) { return a.origin < b.origin; });
  return snapshot;
}

void TransferEngine::release(std::unique_ptr<Transfer> transfer) {
  for (Leg& leg : transfer->legs) recycle(leg);
}

// Keeps a leg's easy handle (out of libcurl) for a later request.
void TransferEngine::recycle(Leg& leg) {
  if (leg.easy == nullptr) return;
  if (spare_handles_.size() < kMaxSpareHandles) {
    spare_handles_.push_back(spare_of(leg.easy, *leg.transfer, leg));
  } else {
    curl_easy_cleanup(leg.easy);
  }
  leg.easy = nullptr;
}

TransferEngine::SpareHandle TransferEngine::spare_of(CURL* easy, const Transfer& transfer,
                                                     const Leg& leg) const {
  SpareHandle spare;
  spare.easy = easy;
  if (leg.configured) {
    spare.step = transfer.step;
    spare.endpoint = leg.endpoint;
  }
  return spare;
}

// A spare handle configured as `leg` left it, for the next request of its
// step and endpoint; else any spare, reset, or none.
CURL* TransferEngine::take_spare(const Transfer& transfer, const Leg& leg, bool& configured) {
  configured = false;
  if (spare_handles_.empty()) return nullptr;
  const StepData* step = &transfer.step.data();
  // The most recently kept first: a handful of steps share the spares.
  const std::size_t look = std::min<std::size_t>(spare_handles_.size(), kSpareMatchWindow);
  auto chosen = spare_handles_.end() - 1;
  for (auto it = spare_handles_.end(); it != spare_handles_.end() - static_cast<std::ptrdiff_t>(look);) {
    --it;
    if (it->step && &it->step->data() == step && it->endpoint == leg.endpoint) {
      chosen = it;
      configured = true;
      break;
    }
  }
  CURL* easy = chosen->easy;
  if (chosen != spare_handles_.end() - 1) *chosen = std::move(spare_handles_.back());
  spare_handles_.pop_back();
  if (!configured) curl_easy_reset(easy);
  return easy;
}

// `routed`, when given, is `result` routed already; it is moved from.
void TransferEngine::complete(Transfer& transfer, HttpResult result, const Wire* wire, Outcome* routed) {
  const StepData& data = transfer.step.data();
  Outcome outcome = routed != nullptr ? std::move(*routed) : data.router.route(result);
  if (result.error == Errc::background_full) {
    // A fire-and-forget call goes on whatever becomes of its request.
    outcome.route = Route::default_next;
    outcome.target = data.options.routes.default_next;
    outcome.background = true;
  }
  if (wire != nullptr) {
    outcome.timings = wire->timings;
    outcome.attempts = wire->attempts;
    outcome.bytes_sent = wire->bytes_sent;
    outcome.bytes_received = wire->bytes_received;
    outcome.remote_address = wire->remote_address;
    outcome.connection_reused = wire->connection_reused;
    outcome.http_version = wire->http_version;
  }
  outcome.attempt_log = std::move(transfer.attempt_log);
  if (outcome.http_status != 0 && !outcome.attempt_log.empty())
    outcome.answered_by = outcome.attempt_log.back().endpoint;
  for (Attempt& attempt : outcome.attempt_log) {
    if (!data.secrets.empty()) attempt.reason = redact(std::move(attempt.reason), data.secrets);
    if (!transfer.call_secrets.empty())
      attempt.reason = redact(std::move(attempt.reason), transfer.call_secrets);
  }
  // A reason quotes libcurl and the server; neither may carry a secret out.
  if (!data.secrets.empty()) outcome.reason = redact(std::move(outcome.reason), data.secrets);
  if (!transfer.call_secrets.empty())
    outcome.reason = redact(std::move(outcome.reason), transfer.call_secrets);
  outcome.request_id = transfer.id;
  outcome.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - transfer.started);
  outcome.trace_id = transfer.trace_id;
  outcome.span_id = transfer.span_id;
  outcome.content_type = std::move(result.content_type);
  outcome.answer = std::move(result.body);
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  if (transfer.counters != nullptr) transfer.counters->completed(outcome, metrics_.slow_threshold());
  log_outcome(transfer, outcome);
  if (describe_requests_ && !transfer.info) describe(transfer, false);
  deliver(transfer, std::move(outcome));
}

// One line per request, as key=value pairs (logfmt): values that hold a
// space, '=' or '"', or are empty, are quoted; every value is escaped, so a
// caller's or a server's bytes cannot forge a field or a line.
void TransferEngine::log_outcome(const Transfer& transfer, const Outcome& outcome) {
  const bool failed = outcome.route == Route::on_error || outcome.route == Route::on_timeout;
  const bool slow = outcome.http_status != 0 && outcome.elapsed > metrics_.slow_threshold();
  const auto level = failed || slow ? spdlog::level::warn : request_log_level_;
  if (!logger_->should_log(level)) return;
  const StepData& data = transfer.step.data();
  fmt::memory_buffer line;
  auto out = std::back_inserter(line);
  const auto append = [&](std::string_view text) { line.append(text.data(), text.data() + text.size()); };
  const auto field = [&](std::string_view key, std::string_view value) {
    if (line.size() != 0) line.push_back(' ');
    append(key);
    line.push_back('=');
    // Most values need neither escaping nor quotes: no copy for them.
    const bool plain = !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
      const auto byte = static_cast<unsigned char>(c);
      return byte < 0x20 || byte == 0x7f || c == '"' || c == '\\' || c == ' ' || c == '=';
    });
    if (plain) return append(value);
    const std::string escaped = escape_for_log(value);
    const bool quote = escaped.empty() || escaped.find_first_of(" =\"") != std::string::npos;
    if (quote) line.push_back('"');
    append(escaped);
    if (quote) line.push_back('"');
  };
  const auto ms = [&](std::string_view key, std::chrono::microseconds value) {
    fmt::format_to(out, " {}={:.1f}", key, milliseconds(value));
  };
  field("call", transfer.call_sid);
  field("step", data.label);
  field("method", to_string(data.options.method));
  field("host", data.host);
  field("path", data.path);
  fmt::format_to(out, " status={}", outcome.http_status);
  field("route", to_string(outcome.route));
  field("target", log_target(outcome.target, data, &transfer.call_secrets));
  field("reason", outcome.reason);
  if (slow) fmt::format_to(out, " slow=true");
  if (transfer.background || outcome.background) fmt::format_to(out, " background=true");
  ms("elapsed_ms", outcome.elapsed);
  ms("queued_ms", outcome.timings.queued);
  ms("dns_ms", outcome.timings.dns);
  ms("connect_ms", outcome.timings.connect);
  ms("tls_ms", outcome.timings.tls);
  ms("first_byte_ms", outcome.timings.first_byte);
  fmt::format_to(out, " attempts={} sent={} received={}", outcome.attempts, outcome.bytes_sent,
                 outcome.bytes_received);
  if (std::any_of(outcome.attempt_log.begin(), outcome.attempt_log.end(),
                  [](const Attempt& attempt) { return attempt.hedged; })) {
    fmt::format_to(out, " hedged=true");
  }
  if (outcome.answered_by == Endpoint::fallback) fmt::format_to(out, " answered_by=fallback");
  if (!outcome.remote_address.empty()) {
    field("remote", outcome.remote_address);
    fmt::format_to(out, " reused={}", outcome.connection_reused);
  }
  if (const int version = outcome.http_version; version != 0) {  // "http=1.1", "http=2"
    fmt::format_to(out, " http={}", version / 10);
    if (version % 10 != 0) fmt::format_to(out, ".{}", version % 10);
  }
  if (!outcome.trace_id.empty()) field("trace_id", outcome.trace_id);
  logger_->log(level, "{}", std::string_view(line.data(), line.size()));
}

namespace {

// Runs an engine's function; what it throws is logged, never propagated.
template <typename Function>
void guarded(const char* what, spdlog::logger& logger, const std::string& call_sid, const std::string& label,
             Function&& function) noexcept {
  try {
    function();
  } catch (const std::exception& error) {
    logger.error("call={} step={}: {} threw: {}", escape_for_log(call_sid), escape_for_log(label), what,
                 escape_for_log(error.what()));
  } catch (...) {
    logger.error("call={} step={}: {} threw a non-standard exception", escape_for_log(call_sid),
                 escape_for_log(label), what);
  }
}

// The end of a request, where outcome callbacks run: RequestHooks::on_end,
// then the request's own callback.
void end_request(const RequestHooks& hooks, const RequestInfo* info, OutcomeCallback& on_outcome,
                 Outcome&& outcome, spdlog::logger& logger, const std::string& call_sid,
                 const std::string& label) noexcept {
  if (hooks.on_end && info != nullptr) {
    guarded("the on_end hook", logger, call_sid, label, [&] { hooks.on_end(*info, outcome); });
  }
  // A fire-and-forget request's callback had its outcome when it started.
  if (on_outcome)
    guarded("the outcome callback", logger, call_sid, label, [&] { on_outcome(std::move(outcome)); });
}

}  // namespace

// One task for the engine's thread, run at most once wherever it runs (the
// executor, or the driver thread if the executor threw): a request's end
// (RequestHooks::on_end, then its outcome callback) or one of its hooks.
struct Delivery {
  std::function<void()> hook;  // on_start or on_waiting; else the end below
  OutcomeCallback on_outcome;
  Outcome outcome;
  std::shared_ptr<const RequestHooks> hooks;
  std::shared_ptr<RequestInfo> info;
  std::shared_ptr<spdlog::logger> logger;
  std::string call_sid;
  std::string label;
  std::atomic<bool> done{false};

  void run() noexcept {
    if (done.exchange(true)) return;
    if (hook) return guarded("a request hook", *logger, call_sid, label, hook);
    end_request(*hooks, info.get(), on_outcome, std::move(outcome), *logger, call_sid, label);
  }
};

void TransferEngine::dispatch(std::function<void()> hook, const Transfer& transfer) {
  auto delivery = std::make_shared<Delivery>();
  delivery->hook = std::move(hook);
  delivery->logger = logger_;
  delivery->call_sid = transfer.call_sid;
  delivery->label = transfer.step.data().label;
  deliver(std::move(delivery));
}

void TransferEngine::deliver(Transfer& transfer, Outcome outcome, bool with_end_hook) {
  const std::shared_ptr<RequestInfo> info = with_end_hook ? transfer.info : nullptr;
  std::shared_ptr<Delivery> delivery;
  try {
    if (executor_) delivery = std::make_shared<Delivery>();
  } catch (...) {
    // Out of memory: the outcome is still delivered, here and now.
  }
  if (!delivery) {
    callback_depth_.fetch_add(1, std::memory_order_relaxed);
    end_request(*hooks_config_, info.get(), transfer.on_outcome, std::move(outcome), *logger_,
                transfer.call_sid, transfer.step.data().label);
    callback_depth_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  delivery->on_outcome = std::move(transfer.on_outcome);
  delivery->outcome = std::move(outcome);
  delivery->hooks = hooks_config_;
  delivery->info = info;
  delivery->logger = logger_;
  delivery->call_sid = transfer.call_sid;
  delivery->label = transfer.step.data().label;
  deliver(std::move(delivery));
}

void TransferEngine::deliver(std::shared_ptr<Delivery> delivery) {
  callback_depth_.fetch_add(1, std::memory_order_relaxed);
  struct Depth {
    std::atomic<int>& depth;
    ~Depth() { depth.fetch_sub(1, std::memory_order_relaxed); }
  } depth{callback_depth_};
  if (executor_) {
    try {
      executor_([delivery] { delivery->run(); });
      return;
    } catch (const std::exception& error) {
      logger_->error("call={} step={}: executor threw ({}); the callback runs on the driver thread",
                     escape_for_log(delivery->call_sid), escape_for_log(delivery->label),
                     escape_for_log(error.what()));
    } catch (...) {
      logger_->error("call={} step={}: executor threw; the callback runs on the driver thread",
                     escape_for_log(delivery->call_sid), escape_for_log(delivery->label));
    }
  }
  delivery->run();
}

void TransferEngine::shut_down() {
  shutting_down_ = true;  // nothing queued is started just to be cancelled
  for (;;) {
    std::vector<Command> pending;
    {
      std::lock_guard<std::mutex> lock(inbox_mutex_);
      if (inbox_.empty() && active_.empty() && draining_next_ == draining_.size()) {
        accepting_ = false;
        break;
      }
      pending.swap(inbox_);
    }
    for (std::size_t i = draining_next_; i < draining_.size(); ++i)
      pending.push_back(std::move(draining_[i]));
    draining_.clear();
    draining_next_ = 0;
    HttpResult result;
    result.transport = Transport::cancelled;
    result.error = Errc::shut_down;
    result.detail = "client shut down";
    for (Command& command : pending) {
      if (!command.submission) continue;
      auto transfer = make_transfer(*command.submission);
      complete(*transfer, result);
    }
    while (!active_.empty()) finish(*active_.begin()->second, result);
  }
  armed_.reset();
  curl_due_.reset();
}

int TransferEngine::on_curl_socket(CURL* easy, int fd, int what, void* self, void* /*socket_data*/) {
  auto& engine = *static_cast<TransferEngine*>(self);
  switch (what) {
    case CURL_POLL_IN:
      engine.connection_busy(easy, fd, true);
      engine.watch(fd, SocketInterest::read);
      break;
    case CURL_POLL_OUT:
      engine.connection_busy(easy, fd, false);
      engine.watch(fd, SocketInterest::write);
      break;
    case CURL_POLL_INOUT:
      engine.connection_busy(easy, fd, true);
      engine.watch(fd, SocketInterest::read_write);
      break;
    default:
      engine.connection_idle(fd);
      engine.park(fd);
      break;
  }
  return 0;
}

int TransferEngine::on_close_socket(void* self, curl_socket_t fd) {
  auto& engine = *static_cast<TransferEngine*>(self);
  engine.connection_gone(fd);
  engine.unwatch(fd);
  return ::close(fd);
}

// See OriginConnections. A socket libcurl reads from has connected (a
// connecting one is only written to); one known already is busy again.
void TransferEngine::connection_busy(CURL* easy, int fd, bool reading) {
  const auto found = connections_.find(fd);
  if (found != connections_.end()) {
    if (found->second.idle) {
      found->second.idle = false;
      --origin_connections_[found->second.origin].idle;
    }
    return;
  }
  if (!reading) return;
  Leg* leg = nullptr;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, reinterpret_cast<char**>(&leg));
  if (leg == nullptr) return;
  ++origin_connections_[leg->origin()].open;
  connections_.emplace(fd, KnownConnection{leg->origin(), false});
}

void TransferEngine::connection_idle(int fd) {
  const auto found = connections_.find(fd);
  if (found == connections_.end() || found->second.idle) return;
  found->second.idle = true;
  ++origin_connections_[found->second.origin].idle;
}

// Closed, or its number now names a new socket (closed without notice).
void TransferEngine::connection_gone(int fd) {
  const auto found = connections_.find(fd);
  if (found == connections_.end()) return;
  const auto origin = origin_connections_.find(found->second.origin);
  if (origin != origin_connections_.end()) {
    if (found->second.idle) --origin->second.idle;
    if (--origin->second.open == 0) origin_connections_.erase(origin);
  }
  connections_.erase(found);
}

bool TransferEngine::has_idle_connection(const std::string& origin) const {
  const auto found = origin_connections_.find(origin);
  return found != origin_connections_.end() && found->second.idle > 0;
}

// libcurl 7.88 to 8.1 close a socket whose connect has not completed (a
// request cancelled, timed out or shut down while connecting, an abandoned
// connection attempt) with a plain close(): no CURLOPT_CLOSESOCKETFUNCTION,
// and CURL_POLL_REMOVE only afterwards (curl pull request 11439). The loop
// must never watch an fd that closes under it, whose number may by then name
// another socket. So while a socket may still be connecting (libcurl waits
// only to write), the loop watches a duplicate that only we close, after
// telling it; once libcurl waits to read, the connect is done, libcurl says
// before it closes, and the loop watches libcurl's fd itself.
void TransferEngine::watch(int fd, SocketInterest interest) {
  struct stat status {};
  if (::fstat(fd, &status) != 0) {
    unwatch(fd);  // already closed: nothing left to watch
    return;
  }
  const auto device = static_cast<std::uint64_t>(status.st_dev);
  const auto inode = static_cast<std::uint64_t>(status.st_ino);
  auto found = watched_.find(fd);
  if (found != watched_.end() && (found->second.device != device || found->second.inode != inode)) {
    unwatch(fd);  // closed without notice; the number names a new socket
    found = watched_.end();
  }
  if (found != watched_.end() && found->second.parked) {
    found->second.parked = false;
    if (found->second.interest == interest) return;  // as the loop already watches it
  }
  const bool reads = interest == SocketInterest::read || interest == SocketInterest::read_write;
  bool changed = true;
  if (found == watched_.end()) {
    int loop_fd = fd;
    // epoll (ThreadDriver) forgets a closed fd by itself: no duplicate, and
    // none of the four system calls that make and retire one.
    if (!reads && (hooks_ == nullptr || !hooks_->tolerates_closed_fds())) {
      // If no descriptor is left for a duplicate, the loop watches fd itself.
      const int duplicate = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (duplicate >= 0) loop_fd = duplicate;
    }
    found = watched_.emplace(fd, WatchedSocket{loop_fd, interest, device, inode}).first;
    curl_fd_of_[loop_fd] = fd;
  } else if (reads && found->second.loop_fd != fd) {
    const int duplicate = found->second.loop_fd;
    if (hooks_ != nullptr) hooks_->watch_socket(duplicate, SocketInterest::none);
    ::close(duplicate);
    curl_fd_of_.erase(duplicate);
    found->second.loop_fd = fd;
    curl_fd_of_[fd] = fd;
  } else {
    changed = found->second.interest != interest;
  }
  found->second.interest = interest;
  if (changed && hooks_ != nullptr) hooks_->watch_socket(found->second.loop_fd, interest);
}

void TransferEngine::unwatch(int fd) {
  const auto found = watched_.find(fd);
  if (found == watched_.end()) return;
  const int loop_fd = found->second.loop_fd;
  watched_.erase(found);
  curl_fd_of_.erase(loop_fd);
  if (hooks_ != nullptr) hooks_->watch_socket(loop_fd, SocketInterest::none);
  if (loop_fd != fd) ::close(loop_fd);
}

// libcurl is done with the socket for now. On a loop that drops closed fds
// by itself (the ThreadDriver's epoll), a connected socket it was reading
// stays watched, parked: most go back to work with the next request to the
// same origin, and each unwatch and watch is an epoll_ctl, two or three per
// request. libcurl may close a parked socket without telling (7.88 does for
// some idle connections); epoll then forgets it, and watch() sees the number
// name a new socket by its identity.
void TransferEngine::park(int fd) {
  if (hooks_ == nullptr || !hooks_->tolerates_closed_fds()) return unwatch(fd);
  const auto found = watched_.find(fd);
  if (found == watched_.end()) return;
  // A duplicate still stands for a connecting socket, which libcurl may
  // close without notice: never parked.
  if (found->second.loop_fd != fd || found->second.interest != SocketInterest::read) return unwatch(fd);
  found->second.parked = true;
}

void TransferEngine::adopt_new_socket(int fd) {
  connection_gone(fd);  // the connection that had this number is closed
  const auto found = watched_.find(fd);
  if (found == watched_.end()) return;
  // The number is still watched: libcurl closed that socket without notice,
  // and believes the number still watched as before. Move the watch to the
  // new socket, so that belief holds.
  const SocketInterest interest = found->second.interest;
  const bool parked = found->second.parked;
  unwatch(fd);
  if (!parked) watch(fd, interest);  // libcurl did not watch a parked one
}

int TransferEngine::on_curl_timer(CURLM* /*multi*/, long timeout_ms, void* self) {
  auto& engine = *static_cast<TransferEngine*>(self);
  // -1 deletes the timer; 0 means "as soon as possible", which the loop
  // does on its next turn (never by calling back into libcurl from here).
  if (timeout_ms < 0) {
    engine.curl_due_.reset();
  } else {
    engine.curl_due_ = Clock::now() + std::chrono::milliseconds(timeout_ms);
  }
  return 0;
}

}  // namespace detail
}  // namespace v0
}  // namespace passthru
