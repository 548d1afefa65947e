#!/usr/bin/env python3
"""Runs the built passthru-probe against a customer server on 127.0.0.1:0.

Each test runs the real binary (PASSTHRU_PROBE) as a customer would and
checks its exit status, its output, and what the server received. CTest
registers every test_* method as a test of its own (tests/probe/CMakeLists.txt):

    PASSTHRU_PROBE=build/tools/probe/passthru-probe python3 probe_test.py ProbeTest.test_help_mentions_every_flag
"""

import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest
import urllib.parse

PROBE = os.environ.get("PASSTHRU_PROBE", "passthru-probe")

# Every flag --help must document.
FLAGS = [
    "--method", "-X", "--timeout", "--header", "-H",
    "--call-sid", "--from", "--to", "--direction", "--current-time", "--dial-whom", "--digits",
    "--param", "--traceparent",
    "--name", "--default", "--on-error", "--on-timeout", "--applet", "--flow-host", "--quote-digits",
    "--max-answer-bytes", "--allow-plain-http", "--max-redirects",
    "--cacert", "--cert", "--key", "--insecure", "--pin", "--signing-key-file",
    "--json", "--quiet", "-q", "--verbose", "-v",
    "--count", "--concurrency", "--slow-ms", "--help",
]

SLOW_ANSWER_SECONDS = 3.2  # over the guide's 3 s


class CustomerServer(http.server.ThreadingHTTPServer):
    """Answers by path and records every request it reads."""

    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops SYNs under --concurrency: 1 s retransmits

    def __init__(self):
        super().__init__(("127.0.0.1", 0), CustomerHandler)
        self.lock = threading.Lock()
        self.requests = []
        self.mixed_count = 0
        self.stopping = threading.Event()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server_address[1], path)

    def recorded(self):
        with self.lock:
            return list(self.requests)


class CustomerHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes: without this, Nagle's
    # algorithm holds the body for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="text/plain"):
        data = body.encode()
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        parsed = urllib.parse.urlsplit(self.path)
        with server.lock:
            server.requests.append({
                "method": self.command,
                "path": parsed.path,
                "query": parsed.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            })
        path = parsed.path
        if path in ("/fast", "/record"):
            self.answer(200, "vip-connect\n")
        elif path == "/slow":
            server.stopping.wait(SLOW_ANSWER_SECONDS)
            self.answer(200, "vip-connect")
        elif path == "/fail":
            self.answer(503, "down for maintenance")
        elif path == "/empty":
            self.answer(200, "")
        elif path == "/flow":
            self.answer(200, "https://flows.example.com/start/vip-flow")
        elif path == "/json":
            self.answer(200, '{"next": "vip-connect", "variables": {"tier": "gold", "lang": "hi"}}',
                        "application/json")
        elif path == "/long":
            self.answer(200, "".join("line %d of a long answer\n" % i for i in range(200)), "text/html")
        elif path == "/mixed":
            with server.lock:
                server.mixed_count += 1
                fail = server.mixed_count % 4 == 0
            if fail:
                self.answer(503, "busy")
            else:
                self.answer(200, "vip-connect")
        elif path == "/silent":
            server.stopping.wait(30)  # until the test is over; the probe gives up first
            self.close_connection = True
        else:
            self.answer(404, "no such path")

    do_GET = handle_any
    do_POST = handle_any


class ProbeTest(unittest.TestCase):
    def setUp(self):
        self.server = self.start_server()

    def start_server(self, tls_context=None):
        server = CustomerServer()
        if tls_context is not None:
            server.socket = tls_context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

        def stop():
            server.stopping.set()
            server.shutdown()
            server.server_close()

        self.addCleanup(stop)
        return server

    def probe(self, *args, timeout=60):
        return subprocess.run([PROBE, *args], capture_output=True, text=True, errors="replace", timeout=timeout)

    def assertExit(self, result, status):
        self.assertEqual(result.returncode, status,
                         "exit %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                         % (result.returncode, status, result.stdout, result.stderr))

    def requests_to(self, path):
        return [r for r in self.server.recorded() if r["path"] == path]

    # One request, as a person reads it.

    def test_fast_answer_naming_an_applet_routes_next_applet_and_exits_0(self):
        result = self.probe(self.server.url("/fast"), "--applet", "vip-connect", "--from", "+919876543210")
        self.assertExit(result, 0)
        out = result.stdout
        self.assertRegex(out, r"Request +GET http://127\.0\.0\.1:\d+/fast\?CallSid=probe-[0-9a-f]{12}&"
                              r"CallFrom=%2B919876543210&")
        self.assertIn("User-Agent: passthru/", out)
        self.assertRegex(out, r"Answer +HTTP 200, text/plain, 12 B\n +vip-connect\n")
        self.assertRegex(out, r"Route +next_applet -> vip-connect\n")
        self.assertRegex(out, r"Reason +.*vip-connect")
        self.assertRegex(out, r"Trace id +[0-9a-f]{32}\n")
        self.assertRegex(out, r"Timing +total [\d.]+ ms: queued [\d.]+ ms, DNS [\d.]+ ms, connect [\d.]+ ms, "
                              r"TLS [\d.]+ ms, first byte [\d.]+ ms\n")
        self.assertRegex(out, r"Connection +127\.0\.0\.1:\d+, new; sent \d+ B, received \d+ B\n")
        self.assertNotIn("WARNING", out)
        sent = self.requests_to("/fast")
        self.assertEqual(len(sent), 1)
        query = urllib.parse.parse_qs(sent[0]["query"])
        self.assertEqual(query["CallFrom"], ["+919876543210"])
        self.assertEqual(query["Direction"], ["incoming"])

    def test_slow_answer_over_3_s_shows_the_slow_warning(self):
        result = self.probe(self.server.url("/slow"), "--timeout", "10000")
        self.assertExit(result, 0)
        self.assertRegex(result.stdout, r"Route +next_applet -> vip-connect\n")
        self.assertRegex(result.stdout, r"WARNING +slow answer: \d+\.\d ms is over --slow-ms 3000 ms")

    def test_http_503_routes_on_error_and_exits_5(self):
        result = self.probe(self.server.url("/fail"), "--on-error", "apology-greeting")
        self.assertExit(result, 5)
        self.assertRegex(result.stdout, r"Answer +HTTP 503, text/plain, 20 B\n +down for maintenance\n")
        self.assertRegex(result.stdout, r"Route +on_error -> apology-greeting\n")
        self.assertRegex(result.stdout, r"Reason +HTTP 503")
        self.assertRegex(result.stdout, r"Error +http_status ")

    def test_connection_refused_routes_on_error_and_exits_5(self):
        with socket.socket() as bound_not_listening:
            bound_not_listening.bind(("127.0.0.1", 0))
            port = bound_not_listening.getsockname()[1]
            result = self.probe("http://127.0.0.1:%d/passthru" % port, "--on-error", "apology-greeting")
        self.assertExit(result, 5)
        self.assertRegex(result.stdout, r"Answer +none\n")
        self.assertRegex(result.stdout, r"Route +on_error -> apology-greeting\n")
        self.assertRegex(result.stdout, r"Reason +connection refused")
        self.assertRegex(result.stdout, r"Error +connect_failed ")

    def test_silent_endpoint_with_a_short_timeout_routes_on_timeout_and_exits_6(self):
        result = self.probe(self.server.url("/silent"), "--timeout", "300", "--on-timeout", "general-queue")
        self.assertExit(result, 6)
        self.assertRegex(result.stdout, r"Route +on_timeout -> general-queue\n")
        self.assertRegex(result.stdout, r"Reason +no answer within 300 ms")
        self.assertNotIn("WARNING", result.stdout)  # a timeout is its own route, not a slow answer

    def test_empty_answer_routes_default_and_exits_4(self):
        result = self.probe(self.server.url("/empty"), "--default", "main-menu")
        self.assertExit(result, 4)
        self.assertRegex(result.stdout, r"\(empty body\)\n")
        self.assertRegex(result.stdout, r"Route +default -> main-menu\n")

    def test_flow_url_routes_external_flow_and_exits_3(self):
        result = self.probe(self.server.url("/flow"), "--flow-host", "flows.example.com")
        self.assertExit(result, 3)
        self.assertRegex(result.stdout, r"Route +external_flow -> https://flows\.example\.com/start/vip-flow\n")

    def test_json_answer_shows_its_route_and_variables(self):
        result = self.probe(self.server.url("/json"))
        self.assertExit(result, 0)
        self.assertRegex(result.stdout, r"Route +next_applet -> vip-connect\n")
        self.assertRegex(result.stdout, r"Variables +lang = hi\n +tier = gold\n")

    def test_long_answer_is_cut_unless_verbose(self):
        result = self.probe(self.server.url("/long"))
        self.assertExit(result, 4)  # an HTML page names no applet
        self.assertIn("line 19 of a long answer", result.stdout)
        self.assertNotIn("line 20 of a long answer", result.stdout)
        self.assertRegex(result.stdout, r"\.\.\. \d+ more bytes not shown")
        verbose = self.probe(self.server.url("/long"), "-v")
        self.assertIn("line 199 of a long answer", verbose.stdout)

    def test_post_sends_the_call_params_as_a_form_body(self):
        result = self.probe(self.server.url("/record"), "-X", "post", "--call-sid", "CA-post-1",
                            "--from", "+919876543210", "--to", "+914412345678", "--direction", "outgoing",
                            "--current-time", "2024-01-15T10:30:00+05:30", "--dial-whom", "+919812345678",
                            "--digits", "1234", "--quote-digits", "--param", "lang=hi", "--param", "tier=gold vip",
                            "-H", "X-Probe: yes")
        self.assertExit(result, 0)
        sent = self.requests_to("/record")
        self.assertEqual(len(sent), 1)
        request = sent[0]
        self.assertEqual(request["method"], "POST")
        self.assertEqual(request["query"], "")
        self.assertEqual(request["headers"]["content-type"], "application/x-www-form-urlencoded")
        self.assertEqual(request["headers"]["x-probe"], "yes")
        self.assertEqual(urllib.parse.parse_qsl(request["body"]), [
            ("CallSid", "CA-post-1"), ("CallFrom", "+919876543210"), ("CallTo", "+914412345678"),
            ("Direction", "outgoing"), ("CurrentTime", "2024-01-15T10:30:00+05:30"),
            ("DialWhomNumber", "+919812345678"), ("digits", '"1234"'), ("lang", "hi"), ("tier", "gold vip"),
        ])
        # The report shows the body as sent.
        self.assertIn(request["body"], result.stdout)
        self.assertRegex(result.stdout, r"Request +POST http://127\.0\.0\.1:\d+/record\n")

    def test_signing_key_file_signs_every_request_and_the_key_is_never_shown(self):
        key = "k3y-" + "0123456789abcdef" * 3
        with tempfile.NamedTemporaryFile("w", suffix=".key") as key_file:
            key_file.write(key + "\n")
            key_file.flush()
            result = self.probe(self.server.url("/record"), "--signing-key-file", key_file.name, "--json")
        self.assertExit(result, 0)
        sent = self.requests_to("/record")
        self.assertEqual(len(sent), 1)
        self.assertRegex(sent[0]["headers"]["passthru-signature"], r"^v1,[A-Za-z0-9+/=]+$")
        self.assertNotIn(key, result.stdout + result.stderr)
        self.assertNotIn(sent[0]["headers"]["passthru-signature"], result.stdout)

    def test_json_output_parses_with_the_expected_fields(self):
        result = self.probe(self.server.url("/fast"), "--json", "--applet", "vip-connect", "--param", "lang=hi")
        self.assertExit(result, 0)
        report = json.loads(result.stdout)
        self.assertEqual(report["request"]["method"], "GET")
        self.assertIn("lang=hi", report["request"]["url"])
        self.assertTrue(any(h.startswith("User-Agent: ") for h in report["request"]["headers"]))
        self.assertEqual(report["answer"], {"status": 200, "content_type": "text/plain",
                                            "body": "vip-connect\n", "bytes": 12})
        self.assertEqual(report["route"], "next_applet")
        self.assertEqual(report["target"], "vip-connect")
        self.assertTrue(report["reason"])
        self.assertIsNone(report["error"])
        self.assertRegex(report["trace_id"], r"^[0-9a-f]{32}$")
        for phase in ("queued_ms", "dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "transfer_ms", "total_ms"):
            self.assertIsInstance(report["timings"][phase], (int, float), phase)
        self.assertGreater(report["timings"]["total_ms"], 0)
        self.assertRegex(report["remote_address"], r"^127\.0\.0\.1:\d+$")
        self.assertIs(report["slow"], False)
        self.assertEqual(report["exit_status"], 0)

    def test_json_output_of_a_failure_names_the_error(self):
        result = self.probe(self.server.url("/fail"), "--json")
        self.assertExit(result, 5)
        report = json.loads(result.stdout)
        self.assertEqual(report["route"], "on_error")
        self.assertEqual(report["target"], "default-next")  # no --on-error: the default
        self.assertEqual(report["error"]["name"], "http_status")
        self.assertEqual(report["answer"]["status"], 503)
        self.assertEqual(report["exit_status"], 5)

    def test_quiet_prints_only_the_route(self):
        result = self.probe(self.server.url("/fast"), "-q")
        self.assertExit(result, 0)
        self.assertEqual(result.stdout, "next_applet -> vip-connect\n")

    def test_verbose_prints_the_library_log_lines_on_stderr(self):
        result = self.probe(self.server.url("/fast"), "-v")
        self.assertExit(result, 0)
        self.assertRegex(result.stderr, r"passthru \[(debug|info)\] ")

    def test_tls_is_verified_unless_insecure(self):
        with tempfile.TemporaryDirectory() as directory:
            cert = os.path.join(directory, "cert.pem")
            key = os.path.join(directory, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            url = "https://127.0.0.1:%d/fast" % self.start_server(context).server_address[1]

            unknown_ca = self.probe(url)
            self.assertExit(unknown_ca, 5)
            self.assertRegex(unknown_ca.stdout, r"Error +tls_failed ")

            trusted = self.probe(url, "--cacert", cert, "--json")
            self.assertExit(trusted, 0)
            self.assertGreater(json.loads(trusted.stdout)["timings"]["tls_ms"], 0)
            self.assertEqual(trusted.stderr, "")

            insecure = self.probe(url, "--insecure")
            self.assertExit(insecure, 0)
            self.assertIn("WARNING: --insecure", insecure.stderr)

    # Load test.

    def test_load_test_prints_a_histogram_and_the_tally_of_20_outcomes(self):
        result = self.probe(self.server.url("/fast"), "--count", "20", "--concurrency", "5",
                            "--applet", "vip-connect")
        self.assertExit(result, 0)
        out = result.stdout
        self.assertRegex(out, r"Requests +20 in [\d.]+ s \([\d.]+/s\), 5 in flight at a time\n")
        self.assertRegex(out, r"Latency +min [\d.]+ ms, p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms, "
                              r"max [\d.]+ ms, mean [\d.]+ ms\n")
        self.assertIn("Latency histogram", out)
        bars = re.findall(r"^ +(?:<=|>) \d+ ms \|#*[ ]*\| +(\d+) ", out, re.MULTILINE)
        self.assertEqual(sum(int(count) for count in bars), 20, out)
        self.assertRegex(out, r"\n +-+\+-+\+ 3000 ms \(--slow-ms\): the guide's limit\n")
        self.assertRegex(out, r"next_applet +20 +100\.0% +vip-connect 20\n")
        # Each request its own CallSid; a progress line on stderr (not a TTY: plain lines).
        sids = {urllib.parse.parse_qs(r["query"])["CallSid"][0] for r in self.requests_to("/fast")}
        self.assertEqual(len(sids), 20)
        self.assertRegex(result.stderr, r"20/20 done, 0 in flight, [\d.]+ s, [\d.]+/s; next_applet 20\n")

    def test_load_test_json_tallies_routes_and_exits_with_the_worst(self):
        result = self.probe(self.server.url("/mixed"), "--count", "8", "--concurrency", "4", "--json", "-q")
        self.assertExit(result, 5)  # every 4th answer is a 503
        self.assertEqual(result.stderr, "")  # -q: no progress line
        report = json.loads(result.stdout)
        self.assertEqual(report["count"], 8)
        self.assertEqual(report["routes"]["next_applet"]["count"], 6)
        self.assertEqual(report["routes"]["on_error"]["count"], 2)
        self.assertEqual(sum(bucket["count"] for bucket in report["histogram"]), 8)
        self.assertIn(3000, [bucket["le_ms"] for bucket in report["histogram"]])
        self.assertEqual(report["errors"], [{"error": "http_status", "reason": "HTTP 503", "count": 2}])
        for key in ("min", "p50", "p90", "p99", "max", "mean"):
            self.assertIsInstance(report["latency_ms"][key], (int, float))
        self.assertEqual(report["exit_status"], 5)

    # Usage.

    def test_help_mentions_every_flag_and_the_exit_statuses(self):
        result = self.probe("--help")
        self.assertExit(result, 0)
        for flag in FLAGS:
            self.assertRegex(result.stdout, r"(^|[ ,])%s([ ,=]|$)" % re.escape(flag), flag)
        for line in ("0  next_applet", "3  external_flow", "4  default", "5  on_error", "6  on_timeout"):
            self.assertIn(line, result.stdout)

    def test_bad_flag_exits_2(self):
        result = self.probe(self.server.url("/fast"), "--no-such-flag")
        self.assertExit(result, 2)
        self.assertIn("--no-such-flag", result.stderr)
        self.assertEqual(self.server.recorded(), [])

    def test_bad_method_exits_2(self):
        result = self.probe(self.server.url("/fast"), "-X", "PUT")
        self.assertExit(result, 2)
        self.assertIn("--method", result.stderr)

    def test_invalid_header_exits_2_naming_the_field(self):
        result = self.probe(self.server.url("/fast"), "-H", "X-Good: 1", "-H", "Bad Header: x")
        self.assertExit(result, 2)
        self.assertIn("headers[1].name", result.stderr)
        self.assertIn("-H/--header #2: Bad Header", result.stderr)
        self.assertEqual(self.server.recorded(), [])

    def test_header_without_a_colon_exits_2(self):
        result = self.probe(self.server.url("/fast"), "-H", "X-Probe")
        self.assertExit(result, 2)
        self.assertIn("expected 'Name: value'", result.stderr)

    def test_plain_http_to_another_host_exits_2_naming_the_url(self):
        result = self.probe("http://crm.example.com/passthru")
        self.assertExit(result, 2)
        self.assertIn("url: plain http://", result.stderr)
        self.assertIn("--allow-plain-http permits it", result.stderr)

    def test_count_of_0_exits_2(self):
        result = self.probe(self.server.url("/fast"), "--count", "0")
        self.assertExit(result, 2)
        self.assertIn("--count", result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
