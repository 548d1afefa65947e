#!/usr/bin/env python3
"""Scrapes examples/metrics_server's /metrics under load, as Prometheus would.

Usage: scrape_metrics_test.py PATH/TO/metrics_server

Starts the example on a free port, polls /metrics until enough requests have
completed, then reads one scrape with the real Prometheus text parser
(prometheus_client, Debian python3-prometheus-client) and checks the families
documented in <passthru/metrics.hpp>, their types, the per-step identities and
the histograms. Ends the example with SIGTERM and expects exit status 0.
Everything is bounded by one overall deadline: the test never hangs.
"""

import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit("scrape_metrics_test: needs prometheus_client "
             "(Debian: apt-get install python3-prometheus-client)")

OVERALL_SECONDS = 90
MIN_COMPLETED = 300  # requests completed, across both steps, before the checks
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STEPS = ("call-log", "crm-lookup")
# The families of <passthru/metrics.hpp>'s to_prometheus() comment.
FAMILIES = {
    "passthru_requests_total": "counter",
    "passthru_outcomes_total": "counter",
    "passthru_answers_total": "counter",
    "passthru_slow_answers_total": "counter",
    "passthru_in_flight": "gauge",
    "passthru_bytes_sent_total": "counter",
    "passthru_bytes_received_total": "counter",
    "passthru_request_duration_seconds": "histogram",
    "passthru_client_in_flight": "gauge",
    "passthru_client_queued": "gauge",
    "passthru_slow_answer_threshold_seconds": "gauge",
}
ROUTES = ("next_applet", "external_flow", "default", "on_error", "on_timeout", "cancelled")

deadline = time.monotonic() + OVERALL_SECONDS


def remaining():
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"over the overall {OVERALL_SECONDS} s")
    return left


def read_first_line(process):
    """The example's first stdout line, waiting no longer than the deadline."""
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            if not selector.select(timeout=remaining()):
                continue
            chunk = os.read(process.stdout.fileno(), 256)
            if not chunk:
                raise AssertionError(f"metrics_server closed stdout before a first line (got {line!r})")
            line += chunk
    return line.split(b"\n", 1)[0].decode()


def scrape(url):
    with urllib.request.urlopen(url, timeout=min(10.0, remaining())) as response:
        return response.headers.get("Content-Type"), response.read().decode("utf-8")


class Scrape:
    """One scrape, parsed: families by name and samples by (name, labels)."""

    def __init__(self, text):
        self.families = {}
        self.samples = []
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family
            self.samples.extend(family.samples)

    def family(self, name):
        # The parser names a counter's family without its "_total" suffix.
        found = self.families.get(name)
        if found is None and name.endswith("_total"):
            found = self.families.get(name[: -len("_total")])
        return found

    def values(self, sample_name, **labels):
        return [
            s.value
            for s in self.samples
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, sample_name, **labels):
        found = self.values(sample_name, **labels)
        if len(found) != 1:
            raise AssertionError(f"{len(found)} samples of {sample_name}{labels}, expected 1")
        return found[0]


def identity_mismatches(scraped):
    """Steps where requests_total != sum(outcomes_total) + in_flight."""
    mismatches = []
    for step in STEPS:
        requests = scraped.value("passthru_requests_total", step=step)
        outcomes = sum(scraped.values("passthru_outcomes_total", step=step))
        in_flight = scraped.value("passthru_in_flight", step=step)
        if requests != outcomes + in_flight:
            mismatches.append(f"{step}: requests {requests} != outcomes {outcomes} + in_flight {in_flight}")
    return mismatches


def check_families(scraped):
    for name, kind in FAMILIES.items():
        family = scraped.family(name)
        assert family is not None, f"family {name} missing; have {sorted(scraped.families)}"
        assert family.type == kind, f"{name} is a {family.type}, expected a {kind}"
        if name.startswith("passthru_client_") or name == "passthru_slow_answer_threshold_seconds":
            continue
        steps = {s.labels.get("step") for s in family.samples}
        assert steps == set(STEPS), f"{name} has steps {steps}, expected {set(STEPS)}"
    assert scraped.value("passthru_slow_answer_threshold_seconds") == 0.25  # the example's 250 ms


def check_routes(scraped):
    for step in STEPS:
        routes = {s.labels["route"] for s in scraped.samples
                  if s.name == "passthru_outcomes_total" and s.labels["step"] == step}
        assert routes == set(ROUTES), f"{step} has routes {routes}"
    for route in ("next_applet", "on_error"):
        total = sum(scraped.values("passthru_outcomes_total", route=route))
        assert total > 0, f"no outcome routed {route}"


def check_histograms(scraped):
    for step in STEPS:
        buckets = sorted(
            ((float(s.labels["le"]), s.value) for s in scraped.samples
             if s.name == "passthru_request_duration_seconds_bucket" and s.labels["step"] == step),
        )
        assert len(buckets) >= 2 and math.isinf(buckets[-1][0]), f"{step}: buckets {buckets}"
        counts = [count for _, count in buckets]
        assert all(a <= b for a, b in zip(counts, counts[1:])), f"{step}: buckets not cumulative: {buckets}"
        count = scraped.value("passthru_request_duration_seconds_count", step=step)
        total = scraped.value("passthru_request_duration_seconds_sum", step=step)
        assert counts[-1] == count, f"{step}: +Inf bucket {counts[-1]} != _count {count}"
        assert count > 0 and total > 0, f"{step}: _count {count}, _sum {total}"
        # Cancelled outcomes are not observed, so never more than completed.
        assert count <= scraped.value("passthru_requests_total", step=step)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: scrape_metrics_test.py PATH/TO/metrics_server")
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [sys.argv[1], "--port", "0", "--duration-seconds", "30", "--calls-per-second", "200"],
            stdout=subprocess.PIPE, stderr=stderr, bufsize=0)
        try:
            run(process)
        except BaseException:
            process.kill()
            process.wait()
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").splitlines()[-30:]
            print("metrics_server's last stderr lines:\n  " + "\n  ".join(tail), file=sys.stderr)
            raise


def run(process):
    first = read_first_line(process)
    prefix, sep, rest = first.partition("http://127.0.0.1:")
    assert prefix == "metrics on " and sep and rest.endswith("/metrics"), f"first line: {first!r}"
    url = "http://127.0.0.1:" + rest

    # Polls until enough requests have completed, both routes included.
    while True:
        assert process.poll() is None, f"metrics_server exited early with {process.returncode}"
        content_type, text = scrape(url)
        scraped = Scrape(text)
        completed = sum(scraped.values("passthru_requests_total")) - sum(scraped.values("passthru_in_flight"))
        routed = [sum(scraped.values("passthru_outcomes_total", route=route))
                  for route in ("next_applet", "on_error")]
        if completed >= MIN_COMPLETED and all(routed):
            break
        time.sleep(min(0.1, remaining()))

    assert content_type == CONTENT_TYPE, f"Content-Type {content_type!r}"
    check_families(scraped)
    check_routes(scraped)
    check_histograms(scraped)
    # Each counter is read on its own (MetricsSnapshot), so a request can land
    # between two reads; such a scrape is taken again. A real miscount shows
    # in every scrape.
    mismatches = identity_mismatches(scraped)
    for _ in range(4):
        if not mismatches:
            break
        print("retrying a scrape that caught a request mid-flight: " + "; ".join(mismatches), file=sys.stderr)
        mismatches = identity_mismatches(Scrape(scrape(url)[1]))
    assert not mismatches, "; ".join(mismatches)

    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(timeout=remaining())
    except subprocess.TimeoutExpired:
        raise AssertionError("metrics_server did not exit after SIGTERM")
    assert status == 0, f"metrics_server exited with {status} after SIGTERM"
    requests = {step: int(scraped.value("passthru_requests_total", step=step)) for step in STEPS}
    print(f"ok: {requests} requests; outcomes by route: "
          + ", ".join(f"{r}={int(sum(scraped.values('passthru_outcomes_total', route=r)))}" for r in ROUTES))


if __name__ == "__main__":
    main()
