// ResponseRouter: every row of docs/ROUTING.md, without a network.
#include <passthru/error.hpp>
#include <passthru/outcome.hpp>
#include <passthru/response_router.hpp>
#include <passthru/step_config.hpp>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace {

using passthru::Errc;
using passthru::HttpResult;
using passthru::Outcome;
using passthru::ResponseRouter;
using passthru::Route;
using passthru::Routes;
using passthru::Transport;

Routes default_only() {
  Routes routes;
  routes.default_next = "default-applet";
  return routes;
}

Routes full_routes() {
  Routes routes;
  routes.default_next = "default-applet";
  routes.on_error = "error-applet";
  routes.on_timeout = "timeout-applet";
  return routes;
}

Routes with_known_applets(std::vector<std::string> known) {
  Routes routes = full_routes();
  routes.known_applets = std::move(known);
  return routes;
}

Routes with_flow_hosts(std::vector<std::string> hosts) {
  Routes routes = full_routes();
  routes.external_flow_hosts = std::move(hosts);
  return routes;
}

HttpResult answer(int status, std::string content_type, std::string body) {
  HttpResult result;
  result.transport = Transport::completed;
  result.status = status;
  result.content_type = std::move(content_type);
  result.body = std::move(body);
  return result;
}

HttpResult plain(std::string body) { return answer(200, "text/plain", std::move(body)); }

HttpResult json(std::string body) { return answer(200, "application/json", std::move(body)); }

HttpResult transport_failure(Errc code, std::string detail) {
  HttpResult result;
  result.transport = Transport::failed;
  result.error = passthru::make_error_code(code);
  result.detail = std::move(detail);
  return result;
}

HttpResult timed_out() {
  HttpResult result;
  result.transport = Transport::timed_out;
  result.error = passthru::make_error_code(Errc::timed_out);
  result.detail = "no answer within 15000 ms";
  return result;
}

HttpResult cancelled_by(Errc code) {
  HttpResult result;
  result.transport = Transport::cancelled;
  result.error = passthru::make_error_code(code);
  return result;
}

Outcome route(const Routes& routes, const HttpResult& result) { return ResponseRouter(routes).route(result); }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void expect_next_applet(const Outcome& out, const std::string& applet) {
  EXPECT_EQ(out.route, Route::next_applet) << out.reason;
  EXPECT_EQ(out.target, applet);
  EXPECT_FALSE(out.error) << out.error.message();
  EXPECT_TRUE(out.ok());
}

void expect_external_flow(const Outcome& out, const std::string& url) {
  EXPECT_EQ(out.route, Route::external_flow) << out.reason;
  EXPECT_EQ(out.target, url);
  EXPECT_FALSE(out.error) << out.error.message();
  EXPECT_TRUE(out.ok());
}

void expect_plain_default(const Outcome& out) {
  EXPECT_EQ(out.route, Route::default_next) << out.reason;
  EXPECT_EQ(out.target, "default-applet");
  EXPECT_FALSE(out.error) << out.error.message();
  EXPECT_TRUE(out.ok());
}

void expect_default_because(const Outcome& out, Errc why) {
  EXPECT_EQ(out.route, Route::default_next) << out.reason;
  EXPECT_EQ(out.target, "default-applet");
  EXPECT_EQ(out.error, why) << out.error.message() << " / " << out.reason;
  EXPECT_FALSE(out.ok());
  EXPECT_FALSE(out.reason.empty());
}

void expect_unexpected(const Outcome& out) { expect_default_because(out, Errc::unexpected_answer); }

void expect_http_error(const Outcome& out, int status) {
  EXPECT_EQ(out.route, Route::on_error) << out.reason;
  EXPECT_EQ(out.target, "error-applet");
  EXPECT_EQ(out.error, Errc::http_status) << out.error.message();
  EXPECT_EQ(out.http_status, status);
  EXPECT_TRUE(contains(out.reason, std::to_string(status))) << out.reason;
  EXPECT_FALSE(out.ok());
}

// --- Plain-text answers naming an applet ---

TEST(ResponseRouter, PlainTextNamesTheApplet) {
  expect_next_applet(route(full_routes(), plain("vip-connect")), "vip-connect");
}

TEST(ResponseRouter, ApplicationPlainIsPlainTextAsTheGuideShows) {
  expect_next_applet(route(full_routes(), answer(200, "application/plain", "vip-connect")), "vip-connect");
}

TEST(ResponseRouter, TextHtmlIsReadAsPlainTextLikeExpressSend) {
  expect_next_applet(route(full_routes(), answer(200, "text/html; charset=utf-8", "vip-connect")),
                     "vip-connect");
}

TEST(ResponseRouter, MissingContentTypeIsReadAsPlainText) {
  expect_next_applet(route(full_routes(), answer(200, "", "vip-connect")), "vip-connect");
}

TEST(ResponseRouter, ContentTypeParametersAreIgnored) {
  expect_next_applet(route(full_routes(), answer(200, "text/plain; charset=utf-8", "vip-connect")),
                     "vip-connect");
}

TEST(ResponseRouter, ContentTypeIsCaseInsensitive) {
  expect_next_applet(route(full_routes(), answer(200, "Text/Plain; Charset=UTF-8", "vip-connect")),
                     "vip-connect");
}

TEST(ResponseRouter, OctetStreamIsAnUnexpectedAnswer) {
  expect_unexpected(route(full_routes(), answer(200, "application/octet-stream", "vip-connect")));
}

TEST(ResponseRouter, HttpStatusIsReportedForAnUnderstoodAnswer) {
  const Outcome out = route(full_routes(), plain("vip-connect"));
  EXPECT_EQ(out.http_status, 200);
  EXPECT_EQ(out.request_id, 0u);
  EXPECT_EQ(out.elapsed.count(), 0);
  EXPECT_TRUE(out.variables.empty());
}

// --- Trimming ---

TEST(ResponseRouter, TrailingNewlineStillNamesTheApplet) {
  expect_next_applet(route(full_routes(), plain("vip-connect\r\n")), "vip-connect");
}

TEST(ResponseRouter, SurroundingSpacesAndTabsAreTrimmed) {
  expect_next_applet(route(full_routes(), plain(" \t vip-connect \t\n")), "vip-connect");
}

TEST(ResponseRouter, LeadingByteOrderMarkIsTrimmed) {
  expect_next_applet(route(full_routes(), plain("\xEF\xBB\xBFvip-connect\n")), "vip-connect");
}

TEST(ResponseRouter, NameWithInnerSpaceIsNotAName) {
  expect_unexpected(route(full_routes(), plain("vip connect")));
}

TEST(ResponseRouter, SeveralLinesAreNotAName) {
  expect_unexpected(route(full_routes(), plain("vip-connect\nstandard-queue")));
}

// --- Empty answers ---

TEST(ResponseRouter, EmptyBodyGoesToDefaultNext) { expect_plain_default(route(full_routes(), plain(""))); }

TEST(ResponseRouter, WhitespaceOnlyBodyGoesToDefaultNext) {
  expect_plain_default(route(full_routes(), plain(" \r\n\t \n")));
}

TEST(ResponseRouter, NoContentGoesToDefaultNext) {
  const Outcome out = route(full_routes(), answer(204, "", ""));
  expect_plain_default(out);
  EXPECT_EQ(out.http_status, 204);
}

TEST(ResponseRouter, EmptyJsonBodyGoesToDefaultNext) {
  expect_plain_default(route(full_routes(), answer(200, "application/json", "")));
}

TEST(ResponseRouter, CreatedWithAnAppletNameNamesTheApplet) {
  expect_next_applet(route(full_routes(), answer(201, "text/plain", "vip-connect")), "vip-connect");
}

// --- Known applets ---

TEST(ResponseRouter, KnownAppletIsAccepted) {
  expect_next_applet(route(with_known_applets({"vip-connect", "standard-queue"}), plain("standard-queue")),
                     "standard-queue");
}

TEST(ResponseRouter, AppletMissingFromKnownListIsAnUnexpectedAnswer) {
  expect_unexpected(route(with_known_applets({"vip-connect", "standard-queue"}), plain("new-customer")));
}

TEST(ResponseRouter, KnownAppletsAreMatchedExactly) {
  expect_unexpected(route(with_known_applets({"vip-connect"}), plain("VIP-connect")));
}

TEST(ResponseRouter, EmptyKnownListAcceptsAnyWellFormedName) {
  expect_next_applet(route(full_routes(), plain("applet_42:Connect/VIP")), "applet_42:Connect/VIP");
}

TEST(ResponseRouter, EmptyKnownListAcceptsANameOf256Characters) {
  const std::string name(256, 'a');
  expect_next_applet(route(full_routes(), plain(name)), name);
}

TEST(ResponseRouter, EmptyKnownListRefusesANameOf257Characters) {
  expect_unexpected(route(full_routes(), plain(std::string(257, 'a'))));
}

TEST(ResponseRouter, EmptyKnownListRefusesControlCharacters) {
  expect_unexpected(route(full_routes(), plain(std::string("vip\x01") + "connect")));
}

TEST(ResponseRouter, EmptyKnownListRefusesNonAsciiNames) {
  expect_unexpected(route(full_routes(), plain("caf\xC3\xA9")));
}

TEST(ResponseRouter, KnownAppletWinsOverTheUrlRule) {
  Routes routes = with_known_applets({"https://flows.example.com/start/vip"});
  routes.external_flow_hosts = {"other.example.org"};
  expect_next_applet(route(routes, plain("https://flows.example.com/start/vip")),
                     "https://flows.example.com/start/vip");
}

// --- Flow URLs ---

TEST(ResponseRouter, HttpsUrlIsAnExternalFlow) {
  expect_external_flow(route(full_routes(), plain("https://my.exotel.com/exoml/start/vip-flow\n")),
                       "https://my.exotel.com/exoml/start/vip-flow");
}

TEST(ResponseRouter, HttpUrlIsAnExternalFlow) {
  expect_external_flow(route(full_routes(), plain("http://flows.example.com/start")),
                       "http://flows.example.com/start");
}

TEST(ResponseRouter, UrlIsAFlowEvenWhenKnownAppletsAreListed) {
  expect_external_flow(route(with_known_applets({"vip-connect"}), plain("https://flows.example.com/a")),
                       "https://flows.example.com/a");
}

TEST(ResponseRouter, AllowListAcceptsTheExactHost) {
  expect_external_flow(route(with_flow_hosts({"flows.example.com"}), plain("https://flows.example.com/a")),
                       "https://flows.example.com/a");
}

TEST(ResponseRouter, AllowListIgnoresThePort) {
  expect_external_flow(
      route(with_flow_hosts({"flows.example.com"}), plain("https://flows.example.com:8443/a")),
      "https://flows.example.com:8443/a");
}

TEST(ResponseRouter, AllowListRefusesAnotherHost) {
  expect_default_because(route(with_flow_hosts({"flows.example.com"}), plain("https://evil.example.net/a")),
                         Errc::external_flow_denied);
}

TEST(ResponseRouter, AllowListRefusesASiblingSubdomainOfAnExactHost) {
  expect_default_because(route(with_flow_hosts({"flows.example.com"}), plain("https://other.example.com/a")),
                         Errc::external_flow_denied);
}

TEST(ResponseRouter, AllowListJudgesTheHostNotTheUserinfo) {
  expect_default_because(
      route(with_flow_hosts({"flows.example.com"}), plain("https://flows.example.com@evil.example.net/a")),
      Errc::external_flow_denied);
}

TEST(ResponseRouter, WildcardAcceptsASubdomain) {
  expect_external_flow(route(with_flow_hosts({"*.example.com"}), plain("https://flows.example.com/a")),
                       "https://flows.example.com/a");
}

TEST(ResponseRouter, WildcardAcceptsADeeperSubdomain) {
  expect_external_flow(route(with_flow_hosts({"*.example.com"}), plain("https://a.b.example.com/a")),
                       "https://a.b.example.com/a");
}

TEST(ResponseRouter, WildcardDoesNotAcceptTheApex) {
  expect_default_because(route(with_flow_hosts({"*.example.com"}), plain("https://example.com/a")),
                         Errc::external_flow_denied);
}

TEST(ResponseRouter, WildcardDoesNotAcceptAHostThatMerelyEndsTheSame) {
  expect_default_because(route(with_flow_hosts({"*.example.com"}), plain("https://badexample.com/a")),
                         Errc::external_flow_denied);
}

TEST(ResponseRouter, FtpUrlIsNotAFlow) {
  expect_unexpected(route(with_known_applets({"vip-connect"}), plain("ftp://flows.example.com/start")));
}

TEST(ResponseRouter, FileUrlIsNotAFlow) {
  expect_unexpected(route(with_known_applets({"vip-connect"}), plain("file:///etc/passwd")));
}

TEST(ResponseRouter, FtpUrlIsNotAFlowNorANameWhenAnyNameIsAccepted) {
  expect_unexpected(route(full_routes(), plain("ftp://flows.example.com/start")));
}

TEST(ResponseRouter, FileUrlIsNotAFlowNorANameWhenAnyNameIsAccepted) {
  expect_unexpected(route(full_routes(), plain("file:///etc/passwd")));
}

// --- HTML and other unexpected bodies ---

TEST(ResponseRouter, HtmlPageIsAnUnexpectedAnswer) {
  expect_unexpected(route(full_routes(), answer(200, "text/html; charset=utf-8",
                                                "<!DOCTYPE html>\n<html><body>Hello</body></html>\n")));
}

TEST(ResponseRouter, HtmlPageIsAnUnexpectedAnswerWithKnownApplets) {
  expect_unexpected(
      route(with_known_applets({"vip-connect"}), answer(200, "text/html", "<html>vip-connect</html>")));
}

// --- HTTP status ---

TEST(ResponseRouter, RedirectIsNotFollowedAndRoutesToOnError) {
  HttpResult result = answer(302, "text/plain", "vip-connect");
  result.location = "https://elsewhere.example.com/passthru";
  expect_http_error(route(full_routes(), result), 302);
}

TEST(ResponseRouter, ClientErrorRoutesToOnError) {
  expect_http_error(route(full_routes(), answer(404, "text/plain", "vip-connect")), 404);
}

TEST(ResponseRouter, ServerErrorRoutesToOnError) {
  expect_http_error(route(full_routes(), answer(503, "text/html", "<h1>Service Unavailable</h1>")), 503);
}

TEST(ResponseRouter, InformationalFinalStatusRoutesToOnError) {
  expect_http_error(route(full_routes(), answer(101, "", "")), 101);
}

TEST(ResponseRouter, HttpErrorFallsBackToDefaultNextWithoutOnError) {
  const Outcome out = route(default_only(), answer(500, "text/plain", "oops"));
  EXPECT_EQ(out.route, Route::on_error);
  EXPECT_EQ(out.target, "default-applet");
  EXPECT_EQ(out.error, Errc::http_status);
}

// --- Transport failures, judged before the status ---

TEST(ResponseRouter, ConnectionRefusedRoutesToOnErrorWithTheTransportCode) {
  const Outcome out = route(full_routes(), transport_failure(Errc::connect_failed, "connection refused"));
  EXPECT_EQ(out.route, Route::on_error);
  EXPECT_EQ(out.target, "error-applet");
  EXPECT_EQ(out.error, Errc::connect_failed);
  EXPECT_TRUE(contains(out.reason, "connection refused")) << out.reason;
  EXPECT_FALSE(out.ok());
}

TEST(ResponseRouter, FailedTransportWinsOverAStatus200) {
  HttpResult result = transport_failure(Errc::receive_failed, "connection reset");
  result.status = 200;
  result.content_type = "text/plain";
  result.body = "vip-connect";
  const Outcome out = route(full_routes(), result);
  EXPECT_EQ(out.route, Route::on_error);
  EXPECT_EQ(out.target, "error-applet");
  EXPECT_EQ(out.error, Errc::receive_failed);
}

TEST(ResponseRouter, OversizeAnswerRoutesToOnError) {
  HttpResult result = transport_failure(Errc::answer_too_large, "answer over 65536 bytes");
  result.status = 200;
  const Outcome out = route(full_routes(), result);
  EXPECT_EQ(out.route, Route::on_error);
  EXPECT_EQ(out.target, "error-applet");
  EXPECT_EQ(out.error, Errc::answer_too_large);
}

TEST(ResponseRouter, DnsFailureFallsBackToDefaultNextWithoutOnError) {
  const Outcome out = route(default_only(), transport_failure(Errc::dns_failed, "could not resolve host"));
  EXPECT_EQ(out.route, Route::on_error);
  EXPECT_EQ(out.target, "default-applet");
  EXPECT_EQ(out.error, Errc::dns_failed);
}

TEST(ResponseRouter, FailedTransportWithoutACodeIsStillAnError) {
  HttpResult result;
  result.transport = Transport::failed;
  result.detail = "something broke";
  const Outcome out = route(full_routes(), result);
  EXPECT_EQ(out.route, Route::on_error);
  EXPECT_EQ(out.target, "error-applet");
  EXPECT_FALSE(out.ok());
}

// --- Timeouts and the fallback chain ---

TEST(ResponseRouter, TimeoutRoutesToOnTimeout) {
  const Outcome out = route(full_routes(), timed_out());
  EXPECT_EQ(out.route, Route::on_timeout);
  EXPECT_EQ(out.target, "timeout-applet");
  EXPECT_EQ(out.error, Errc::timed_out);
  EXPECT_FALSE(out.ok());
  EXPECT_FALSE(out.reason.empty());
}

TEST(ResponseRouter, TimeoutWinsOverAStatus200) {
  HttpResult result = timed_out();
  result.status = 200;
  result.content_type = "text/plain";
  result.body = "vip-connect";
  const Outcome out = route(full_routes(), result);
  EXPECT_EQ(out.route, Route::on_timeout);
  EXPECT_EQ(out.target, "timeout-applet");
  EXPECT_EQ(out.error, Errc::timed_out);
}

TEST(ResponseRouter, TimeoutFallsBackToOnError) {
  Routes routes = full_routes();
  routes.on_timeout.clear();
  const Outcome out = route(routes, timed_out());
  EXPECT_EQ(out.route, Route::on_timeout);
  EXPECT_EQ(out.target, "error-applet");
  EXPECT_EQ(out.error, Errc::timed_out);
}

TEST(ResponseRouter, TimeoutFallsBackToDefaultNextWithoutOnErrorEither) {
  const Outcome out = route(default_only(), timed_out());
  EXPECT_EQ(out.route, Route::on_timeout);
  EXPECT_EQ(out.target, "default-applet");
  EXPECT_EQ(out.error, Errc::timed_out);
}

TEST(ResponseRouter, TimeoutSkipsOnErrorWhenOnTimeoutIsSet) {
  Routes routes = default_only();
  routes.on_timeout = "timeout-applet";
  const Outcome out = route(routes, timed_out());
  EXPECT_EQ(out.target, "timeout-applet");
}

// --- Cancellation ---

TEST(ResponseRouter, CancelledRequestHasNoTarget) {
  HttpResult result = cancelled_by(Errc::cancelled);
  result.status = 200;
  result.body = "vip-connect";
  const Outcome out = route(full_routes(), result);
  EXPECT_EQ(out.route, Route::cancelled);
  EXPECT_TRUE(out.target.empty()) << out.target;
  EXPECT_EQ(out.error, Errc::cancelled);
  EXPECT_FALSE(out.ok());
}

TEST(ResponseRouter, ShutDownIsReportedAsCancelledWithShutDownCode) {
  const Outcome out = route(full_routes(), cancelled_by(Errc::shut_down));
  EXPECT_EQ(out.route, Route::cancelled);
  EXPECT_TRUE(out.target.empty()) << out.target;
  EXPECT_EQ(out.error, Errc::shut_down);
}

// --- JSON answers ---

TEST(ResponseRouter, JsonNextNamesTheApplet) {
  expect_next_applet(route(full_routes(), json(R"({"next":"x"})")), "x");
}

TEST(ResponseRouter, JsonNextUrlIsAnExternalFlow) {
  expect_external_flow(route(full_routes(), json(R"({"next": "https://flows.example.com/start/vip"})")),
                       "https://flows.example.com/start/vip");
}

TEST(ResponseRouter, JsonNextUrlObeysTheAllowList) {
  expect_default_because(
      route(with_flow_hosts({"*.example.com"}), json(R"({"next":"https://evil.example.net/"})")),
      Errc::external_flow_denied);
}

TEST(ResponseRouter, JsonNextObeysTheKnownApplets) {
  expect_unexpected(route(with_known_applets({"vip-connect"}), json(R"({"next":"new-customer"})")));
}

TEST(ResponseRouter, JsonVariablesWithoutNextGoToDefaultNext) {
  const Outcome out = route(full_routes(), json(R"({"variables": {"order": "shipped", "eta": "2 days"}})"));
  expect_plain_default(out);
  const std::map<std::string, std::string> expected{{"order", "shipped"}, {"eta", "2 days"}};
  EXPECT_EQ(out.variables, expected);
}

TEST(ResponseRouter, JsonNextAndVariablesAreBothKept) {
  const Outcome out =
      route(full_routes(), json(R"({"next":"vip-connect","variables":{"tier":"gold","agent":"42"}})"));
  expect_next_applet(out, "vip-connect");
  const std::map<std::string, std::string> expected{{"tier", "gold"}, {"agent", "42"}};
  EXPECT_EQ(out.variables, expected);
}

TEST(ResponseRouter, JsonEmptyNextGoesToDefaultNext) {
  expect_plain_default(route(full_routes(), json(R"({"next":""})")));
}

TEST(ResponseRouter, JsonObjectWithoutKnownKeysGoesToDefaultNext) {
  expect_plain_default(route(full_routes(), json(R"({"status":"ok"})")));
}

TEST(ResponseRouter, JsonOtherKeysAreIgnored) {
  expect_next_applet(route(full_routes(), json(R"({"next":"vip-connect","debug":{"a":[1,2]},"n":3})")),
                     "vip-connect");
}

TEST(ResponseRouter, JsonNonStringVariableMakesTheAnswerUnexpected) {
  const Outcome out =
      route(full_routes(), json(R"({"next":"vip-connect","variables":{"tier":"gold","n":42}})"));
  expect_unexpected(out);
  EXPECT_TRUE(out.variables.empty());
}

TEST(ResponseRouter, JsonVariablesThatAreNotAnObjectAreUnexpected) {
  expect_unexpected(route(full_routes(), json(R"({"variables":["gold"]})")));
}

TEST(ResponseRouter, JsonNonStringNextIsUnexpected) {
  expect_unexpected(route(full_routes(), json(R"({"next":5})")));
}

TEST(ResponseRouter, InvalidJsonIsUnexpected) {
  expect_unexpected(route(full_routes(), json(R"({"next": "vip-connect")")));
}

TEST(ResponseRouter, JsonArrayIsUnexpected) {
  expect_unexpected(route(full_routes(), json(R"(["vip-connect"])")));
}

TEST(ResponseRouter, JsonStringIsUnexpected) {
  expect_unexpected(route(full_routes(), json(R"("vip-connect")")));
}

TEST(ResponseRouter, JsonIsNotReadAsAName) {
  // An applet name in a JSON body must come through "next", never as the raw text.
  expect_unexpected(route(full_routes(), json("vip-connect")));
}

TEST(ResponseRouter, JsonWithCharsetIsJson) {
  expect_next_applet(route(full_routes(), answer(200, "application/json; charset=utf-8", R"({"next":"x"})")),
                     "x");
}

TEST(ResponseRouter, ProblemJsonIsJson) {
  expect_next_applet(route(full_routes(), answer(200, "application/problem+json", R"({"next":"x"})")), "x");
}

TEST(ResponseRouter, PlainTextThatLooksLikeJsonIsNotParsed) {
  expect_unexpected(route(full_routes(), plain(R"({"next": "x"})")));
}

// --- Accessors and to_string ---

TEST(ResponseRouter, KeepsItsRoutes) {
  const ResponseRouter router(with_known_applets({"vip-connect"}));
  EXPECT_EQ(router.routes().default_next, "default-applet");
  EXPECT_EQ(router.routes().on_error, "error-applet");
  EXPECT_EQ(router.routes().on_timeout, "timeout-applet");
  EXPECT_EQ(router.routes().known_applets, std::vector<std::string>{"vip-connect"});
}

TEST(Route, ToStringNamesEachRoute) {
  EXPECT_STREQ(passthru::to_string(Route::next_applet), "next_applet");
  EXPECT_STREQ(passthru::to_string(Route::external_flow), "external_flow");
  EXPECT_STREQ(passthru::to_string(Route::default_next), "default");
  EXPECT_STREQ(passthru::to_string(Route::on_error), "on_error");
  EXPECT_STREQ(passthru::to_string(Route::on_timeout), "on_timeout");
  EXPECT_STREQ(passthru::to_string(Route::cancelled), "cancelled");
}

TEST(Outcome, IsOkOnlyWithoutAnError) {
  Outcome out;
  EXPECT_TRUE(out.ok());
  out.error = Errc::unexpected_answer;
  EXPECT_FALSE(out.ok());
}

}  // namespace
