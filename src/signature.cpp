#include "signing.hpp"

#include <passthru/signature.hpp>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>
#include <stdexcept>

namespace passthru {
inline namespace v0 {

namespace detail {

namespace {

// OpenSSL 3 looks the algorithm up, and allocates a context, on every
// EVP_Digest(..., EVP_sha256(), ...): more than the hash of a short key
// costs. Fetched once; one context per thread, reused.
const EVP_MD* sha256_md() {
  static const EVP_MD* const md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

struct DigestContext {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  DigestContext() = default;
  DigestContext(const DigestContext&) = delete;
  DigestContext& operator=(const DigestContext&) = delete;
  ~DigestContext() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

std::string sha256_hex(std::string_view data) {
  thread_local DigestContext context;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (context.ctx == nullptr || EVP_DigestInit_ex2(context.ctx, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(context.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.ctx, digest.data(), &length) != 1) {
    throw std::runtime_error("passthru: SHA-256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

namespace {

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(),
           &length) == nullptr) {
    throw std::runtime_error("passthru: HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(mac.data()), length);
}

}  // namespace

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

namespace {

bool is_hex_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("passthru: RAND_bytes failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out;
}

std::vector<std::string> signature_headers(const std::vector<std::string>& keys, std::string_view method,
                                           std::string_view url, std::string_view body,
                                           std::chrono::system_clock::time_point now) {
  const std::string id = random_hex(16);
  const std::string timestamp =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  const std::string canonical = canonical_form(method, url, id, timestamp, body);
  std::string signatures;
  for (const std::string& key : keys) {
    if (!signatures.empty()) signatures.push_back(' ');
    signatures += sign_canonical(key, canonical);
  }
  return {fmt::format("{}: {}", kSignatureIdHeader, id),
          fmt::format("{}: {}", kSignatureTimestampHeader, timestamp),
          fmt::format("{}: {}", kSignatureHeader, signatures)};
}

}  // namespace detail

const char* to_string(SignatureStatus status) noexcept {
  switch (status) {
    case SignatureStatus::valid: return "valid";
    case SignatureStatus::missing: return "missing";
    case SignatureStatus::malformed: return "malformed";
    case SignatureStatus::outside_window: return "outside window";
    case SignatureStatus::mismatch: return "mismatch";
  }
  return "unknown";
}

std::string canonical_form(std::string_view method, std::string_view url, std::string_view id,
                           std::string_view timestamp, std::string_view body) {
  return fmt::format("v1\n{}\n{}\n{}\n{}\n{}", id, timestamp, method, url, detail::sha256_hex(body));
}

std::string sign_canonical(std::string_view key, std::string_view canonical) {
  return "v1," + detail::base64(detail::hmac_sha256(key, canonical));
}

SignatureStatus verify_signature(const SignedRequest& request, const VerifyOptions& options) {
  if (request.id.empty() || request.timestamp.empty() || request.signature.empty()) {
    return SignatureStatus::missing;
  }
  if (!detail::is_hex_id(request.id)) return SignatureStatus::malformed;
  long long seconds = 0;
  const char* first = request.timestamp.data();
  const char* last = first + request.timestamp.size();
  if (const auto [end, error] = std::from_chars(first, last, seconds);
      error != std::errc() || end != last || seconds < 0) {
    return SignatureStatus::malformed;
  }
  const auto now =
      options.now == std::chrono::system_clock::time_point{} ? std::chrono::system_clock::now() : options.now;
  const long long now_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const long long distance = seconds > now_seconds ? seconds - now_seconds : now_seconds - seconds;
  if (distance > options.tolerance.count()) return SignatureStatus::outside_window;

  const std::string canonical =
      canonical_form(request.method, request.url, request.id, request.timestamp, request.body);
  std::vector<std::string> expected;
  expected.reserve(options.keys.size());
  for (const std::string& key : options.keys) expected.push_back(sign_canonical(key, canonical));

  bool any = false;
  bool matched = false;
  std::string_view rest = request.signature;
  while (!rest.empty()) {
    const auto space = rest.find(' ');
    const std::string_view entry = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    if (entry.empty()) continue;
    if (entry.rfind("v1,", 0) != 0) continue;  // a later scheme version: not ours to judge
    any = true;
    for (const std::string& candidate : expected) {
      // Every candidate is compared in full, in constant time.
      if (candidate.size() == entry.size() &&
          CRYPTO_memcmp(candidate.data(), entry.data(), entry.size()) == 0) {
        matched = true;
      }
    }
  }
  if (!any) return SignatureStatus::malformed;
  return matched ? SignatureStatus::valid : SignatureStatus::mismatch;
}

ReplayGuard::ReplayGuard(std::chrono::seconds window) : window_(window) {}

bool ReplayGuard::first_use(std::string_view id, std::chrono::system_clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (now >= next_sweep_) {
    for (auto it = seen_.begin(); it != seen_.end();) {
      it = it->second <= now ? seen_.erase(it) : std::next(it);
    }
    next_sweep_ = now + std::max<std::chrono::seconds>(window_ / 10, std::chrono::seconds(1));
  }
  const auto [it, inserted] = seen_.try_emplace(std::string(id), now + window_);
  if (inserted) return true;
  if (it->second <= now) {  // remembered, but its window has passed
    it->second = now + window_;
    return true;
  }
  return false;
}

std::size_t ReplayGuard::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seen_.size();
}

}  // namespace v0
}  // namespace passthru
