// passthru::Errc as a std::error_code enum with its own category.
#include <passthru/error.hpp>

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <system_error>

namespace {

using passthru::Errc;

TEST(ErrorCategory, IsNamedPassthru) { EXPECT_STREQ(passthru::error_category().name(), "passthru"); }

TEST(ErrorCategory, MakeErrorCodeUsesThePassthruCategory) {
  const std::error_code ec = passthru::make_error_code(Errc::http_status);
  EXPECT_EQ(ec.value(), static_cast<int>(Errc::http_status));
  EXPECT_EQ(&ec.category(), &passthru::error_category());
}

TEST(ErrorCategory, ErrcConvertsImplicitlyAndComparesEqual) {
  const std::error_code ec = Errc::timed_out;
  EXPECT_EQ(ec, Errc::timed_out);
  EXPECT_NE(ec, Errc::cancelled);
  EXPECT_TRUE(ec);
}

TEST(ErrorCategory, DefaultErrorCodeIsNoPassthruError) {
  const std::error_code ec;
  EXPECT_FALSE(ec);
  EXPECT_NE(ec, Errc::timed_out);
  EXPECT_NE(ec, Errc::transport_failed);
}

TEST(ErrorCategory, DoesNotEqualTheSameValueInTheGenericCategory) {
  const std::error_code generic(static_cast<int>(Errc::timed_out), std::generic_category());
  EXPECT_NE(generic, Errc::timed_out);
}

TEST(ErrorCategory, EveryCodeHasADistinctMessage) {
  std::set<std::string> messages;
  for (int value = static_cast<int>(Errc::timed_out); value <= static_cast<int>(Errc::transport_failed);
       ++value) {
    const std::string message = passthru::make_error_code(static_cast<Errc>(value)).message();
    EXPECT_FALSE(message.empty()) << value;
    EXPECT_TRUE(messages.insert(message).second) << "repeated message: " << message;
  }
}

}  // namespace
