// detail::redact: keeping secrets out of logs, reasons and error messages, and
// escaping values from callers and servers so they cannot forge log lines.
#include "redact.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace {

using passthru::detail::contains_name;
using passthru::detail::escape_for_log;
using passthru::detail::redact;
using passthru::detail::redact_url;
using passthru::detail::url_secrets;
using Names = std::vector<std::string>;

bool has(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// --- redact_url ---

TEST(RedactUrl, MasksUserAndPassword) {
  EXPECT_EQ(redact_url("https://alice:S3cr3t@crm.example.com/p?x=1", {}),
            "https://***@crm.example.com/p?x=1");
}

TEST(RedactUrl, MasksAUserWithoutPassword) {
  EXPECT_EQ(redact_url("https://token123@crm.example.com/", {}), "https://***@crm.example.com/");
}

TEST(RedactUrl, MasksUserInfoContainingAnAtSign) {
  // The last '@' of the authority ends the user-info.
  EXPECT_EQ(redact_url("https://alice:p@ss@crm.example.com/", {}), "https://***@crm.example.com/");
}

TEST(RedactUrl, KeepsAUrlWithoutSecrets) {
  const std::string url = "https://crm.example.com:8443/a/b?x=1&y=two#frag";
  EXPECT_EQ(redact_url(url, {}), url);
  EXPECT_EQ(redact_url(url, {"token"}), url);
}

TEST(RedactUrl, AnAtSignInThePathOrQueryIsNotUserInfo) {
  const std::string url = "https://crm.example.com/users/bob@example.com?email=a@b.c";
  EXPECT_EQ(redact_url(url, {}), url);
}

TEST(RedactUrl, MasksTheValuesOfSecretQueryParameters) {
  EXPECT_EQ(redact_url("https://h/p?token=abc123&x=1&key=zzz", {"token", "key"}),
            "https://h/p?token=***&x=1&key=***");
}

TEST(RedactUrl, KeepsNonSecretValues) {
  EXPECT_EQ(redact_url("https://h/p?tokens=abc&my_token=def&token_=ghi&x=token", {"token"}),
            "https://h/p?tokens=abc&my_token=def&token_=ghi&x=token");
}

TEST(RedactUrl, MatchesNamesIgnoringCase) {
  EXPECT_EQ(redact_url("https://h/?TOKEN=a1&Token=b2&tOkEn=c3", {"token"}),
            "https://h/?TOKEN=***&Token=***&tOkEn=***");
  EXPECT_EQ(redact_url("https://h/?token=a1", {"TOKEN"}), "https://h/?token=***");
}

TEST(RedactUrl, MatchesPercentEncodedNames) {
  EXPECT_EQ(redact_url("https://h/?%74oken=a1&to%6Ben=b2&%54%4F%4B%45%4E=c3", {"token"}),
            "https://h/?%74oken=***&to%6Ben=***&%54%4F%4B%45%4E=***");
  EXPECT_EQ(redact_url("https://h/?api%5Fkey=a1", {"api_key"}), "https://h/?api%5Fkey=***");
}

TEST(RedactUrl, MasksEveryRepetitionOfASecretParameter) {
  EXPECT_EQ(redact_url("https://h/?token=a&x=1&token=b", {"token"}), "https://h/?token=***&x=1&token=***");
}

TEST(RedactUrl, KeepsAnEmptySecretValueAndAParameterWithoutValue) {
  EXPECT_EQ(redact_url("https://h/?token=&token&x=1", {"token"}), "https://h/?token=&token&x=1");
}

TEST(RedactUrl, TheValueEndsAtTheFragment) {
  EXPECT_EQ(redact_url("https://h/p?token=abc#section", {"token"}), "https://h/p?token=***#section");
}

TEST(RedactUrl, AQueryInsideTheFragmentIsNotAQuery) {
  EXPECT_EQ(redact_url("https://h/p#x?token=abc", {"token"}), "https://h/p#x?token=abc");
}

TEST(RedactUrl, MasksUserInfoAndParametersTogether) {
  EXPECT_EQ(redact_url("http://u:pw@127.0.0.1:8080/p?a=1&token=t0k&b=2#f", {"token"}),
            "http://***@127.0.0.1:8080/p?a=1&token=***&b=2#f");
}

TEST(RedactUrl, HandlesMalformedUrls) {
  EXPECT_EQ(redact_url("", {"token"}), "");
  EXPECT_EQ(redact_url("not a url", {"token"}), "not a url");
  EXPECT_EQ(redact_url("://", {"token"}), "://");
  EXPECT_EQ(redact_url("?", {"token"}), "?");
  EXPECT_EQ(redact_url("?token=abc", {"token"}), "?token=***");
  EXPECT_EQ(redact_url("https://", {"token"}), "https://");
  EXPECT_EQ(redact_url("https://@", {"token"}), "https://***@");
  EXPECT_EQ(redact_url("https://u:p@", {}), "https://***@");
  EXPECT_EQ(redact_url("alice:pw@host/x", {}), "***@host/x");  // no scheme
  EXPECT_EQ(redact_url("https://h/?&&=&token=x&", {"token"}), "https://h/?&&=&token=***&");
  EXPECT_EQ(redact_url("https://h/?token=a=b=c", {"token"}), "https://h/?token=***");
  EXPECT_EQ(redact_url("https://h/?token=%zz%", {"token"}), "https://h/?token=***");
  EXPECT_EQ(redact_url("https://u:p@h:99999999/?token=%", {"token"}), "https://***@h:99999999/?token=***");
  EXPECT_EQ(redact_url("https:///?token=x", {"token"}), "https:///?token=***");
  EXPECT_EQ(redact_url(std::string_view("https://u:p\0w@h/", 16), {}), "https://***@h/");
}

// --- url_secrets ---

TEST(UrlSecrets, NoneForAPlainUrl) {
  EXPECT_TRUE(url_secrets("https://crm.example.com/p?x=1", {"token"}).empty());
}

TEST(UrlSecrets, TheUserInfoAndThePasswordAsWrittenAndDecoded) {
  const auto secrets = url_secrets("https://alice:p%40ss%2Fw0rd@h/", {});
  EXPECT_TRUE(has(secrets, "alice:p%40ss%2Fw0rd"));
  EXPECT_TRUE(has(secrets, "p%40ss%2Fw0rd"));
  EXPECT_TRUE(has(secrets, "p@ss/w0rd"));
}

TEST(UrlSecrets, AUserWithoutPasswordIsSecretWhole) {
  const auto secrets = url_secrets("https://tok3nOnly@h/", {});
  EXPECT_TRUE(has(secrets, "tok3nOnly"));
}

TEST(UrlSecrets, SecretParameterValuesAsWrittenAndDecoded) {
  const auto secrets = url_secrets("https://h/?x=public&TOKEN=ab%2Fcd%3D&Key=k3y-value", {"token", "key"});
  EXPECT_TRUE(has(secrets, "ab%2Fcd%3D"));
  EXPECT_TRUE(has(secrets, "ab/cd="));
  EXPECT_TRUE(has(secrets, "k3y-value"));
  EXPECT_FALSE(has(secrets, "public"));
}

TEST(UrlSecrets, PercentEncodedParameterNames) {
  const auto secrets = url_secrets("https://h/?%74oken=v4lue", {"token"});
  EXPECT_TRUE(has(secrets, "v4lue"));
}

TEST(UrlSecrets, NotTheFragment) {
  const auto secrets = url_secrets("https://h/#token=frag", {"token"});
  EXPECT_FALSE(has(secrets, "frag"));
}

// --- redact ---

TEST(Redact, MasksEveryOccurrence) {
  EXPECT_EQ(redact("a S3cr3t b S3cr3t c S3cr3tS3cr3t", {"S3cr3t"}), "a *** b *** c ******");
}

TEST(Redact, MasksThePercentEncodedForm) {
  EXPECT_EQ(redact("raw=p@ss/w0rd enc=p%40ss%2Fw0rd", {"p@ss/w0rd"}), "raw=*** enc=***");
  EXPECT_EQ(redact("x=S3cr%20t y=S3cr t", {"S3cr t"}), "x=*** y=***");
}

TEST(Redact, MasksEverySecretOfTheList) {
  EXPECT_EQ(redact("user=alice-secret token=t0k3n-value", {"alice-secret", "t0k3n-value"}),
            "user=*** token=***");
}

TEST(Redact, IgnoresSecretsShorterThanFourBytes) {
  EXPECT_EQ(redact("abc ab a", {"abc", "ab", "a", ""}), "abc ab a");
  EXPECT_EQ(redact("abcd", {"abcd"}), "***");
}

TEST(Redact, AnEmptySecretListChangesNothing) {
  EXPECT_EQ(redact("nothing to hide", {}), "nothing to hide");
  EXPECT_EQ(redact("", {"S3cr3t"}), "");
}

TEST(Redact, OverlappingOccurrencesLeaveNoCompleteSecret) {
  const std::string out = redact("aaaaaaaaa", {"aaaa"});
  EXPECT_EQ(out.find("aaaa"), std::string::npos) << out;
  const std::string abab = redact("xabababy", {"abab"});
  EXPECT_EQ(abab.find("abab"), std::string::npos) << abab;
}

TEST(Redact, ASecretContainingTheMaskIsStillMasked) {
  const std::string out = redact("k=a***b***a***b", {"***b***"});
  EXPECT_EQ(out.find("***b***"), std::string::npos) << out;
}

TEST(Redact, ASecretThatIsThePrefixOfAnother) {
  const std::string out = redact("one=S3cr3t-long two=S3cr3t", {"S3cr3t-long", "S3cr3t"});
  EXPECT_EQ(out.find("S3cr3t"), std::string::npos) << out;
  EXPECT_EQ(out, "one=*** two=***");
}

TEST(Redact, BinaryAndHighBytes) {
  const std::string secret("\xFF\x00\x01\x80zz", 6);
  const std::string text = std::string("[") + secret + "] [%FF%00%01%80zz]";
  EXPECT_EQ(redact(text, {secret}), "[***] [***]");
}

// --- escape_for_log ---

TEST(EscapeForLog, KeepsPrintableText) {
  EXPECT_EQ(escape_for_log("call=abc123 step=crm-lookup /path?x=1&y=~"),
            "call=abc123 step=crm-lookup /path?x=1&y=~");
  EXPECT_EQ(escape_for_log(""), "");
}

TEST(EscapeForLog, EscapesLineBreaksAndTabs) {
  EXPECT_EQ(escape_for_log("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(escape_for_log("CA1\r\nFAKE line"), "CA1\\r\\nFAKE line");
}

TEST(EscapeForLog, EscapesNulEscAndOtherControlBytes) {
  EXPECT_EQ(escape_for_log(std::string_view("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(escape_for_log("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(escape_for_log("\x01\x07\x08\x0b\x0c\x1f\x7f"), "\\x01\\x07\\x08\\x0b\\x0c\\x1f\\x7f");
}

TEST(EscapeForLog, EscapesQuoteAndBackslash) {
  EXPECT_EQ(escape_for_log("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(escape_for_log("C:\\dir"), "C:\\\\dir");
  // An escaped backslash before n cannot be read back as a line break.
  EXPECT_EQ(escape_for_log("\\n"), "\\\\n");
}

TEST(EscapeForLog, KeepsBytesFromHex80UpAsTheyAre) {
  EXPECT_EQ(escape_for_log("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(escape_for_log("\x80\xFF\xFE bad utf-8 \xC3"), "\x80\xFF\xFE bad utf-8 \xC3");
}

TEST(EscapeForLog, TheResultHasNoControlByte) {
  std::string every;
  for (int b = 0; b < 256; ++b) every.push_back(static_cast<char>(b));
  const std::string out = escape_for_log(every);
  for (const char c : out) {
    const auto byte = static_cast<unsigned char>(c);
    EXPECT_FALSE(byte < 0x20 || byte == 0x7F) << "byte " << static_cast<int>(byte);
  }
}

// --- contains_name ---

TEST(ContainsName, IgnoresAsciiCaseOnly) {
  EXPECT_TRUE(contains_name({"X-Api-Key"}, "x-api-key"));
  EXPECT_TRUE(contains_name({"token", "pin"}, "PIN"));
  EXPECT_FALSE(contains_name({"token"}, "tokens"));
  EXPECT_FALSE(contains_name({"token"}, ""));
  EXPECT_FALSE(contains_name({}, "token"));
}

}  // namespace
