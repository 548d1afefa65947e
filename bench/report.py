#!/usr/bin/env python3
"""bench/run's helper (python3 standard library only).

  report.py wrk --url URL --method get|post --concurrency C --duration S [--cpu N]
      Runs wrk (one thread) against the bench's nginx with the six call
      parameters, measures its user+sys CPU with wait4(), and prints a human
      line and a `RESULT {json}` line like the C++ clients.

  report.py table RESULTS.jsonl
      Reads every `RESULT` line of the throughput runs and prints one table of
      medians over the repetitions, with each figure as a ratio to the naive
      libcurl loop and to wrk measured in the same run (the floor, the leanest
      libcurl client, is a row like the others).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

# The call the C++ clients send (bench/throughput_common.hpp), encoded as the
# library encodes it: every byte outside RFC 3986's unreserved set escaped.
# wrk sends the same CallSid every time (varying it costs a Lua call per
# request, which would no longer measure wrk itself).
CALL = [
    ("CallSid", "call-1"),
    ("CallFrom", "+919876543210"),
    ("CallTo", "+914412345678"),
    ("Direction", "incoming"),
    ("CurrentTime", "2024-01-15T10:30:00+05:30"),
    ("DialWhomNumber", "+918012345678"),
]


def call_parameters():
    return "&".join(f"{name}={urllib.parse.quote(value, safe='-._~')}" for name, value in CALL)


def milliseconds(text):
    """wrk's '123.45us', '1.20ms' or '2.00s' in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[match.group(2)]
    return float(match.group(1)) * scale


def run_wrk(args):
    method = args.method.upper()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if method == "POST":
            body = call_parameters().replace('"', '\\"')
            script.write('wrk.method = "POST"\n')
            script.write(f'wrk.body = "{body}"\n')
            script.write('wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')
        lua = script.name
    url = args.url if method == "POST" else f"{args.url}?{call_parameters()}"
    command = ["wrk", "-t1", f"-c{args.concurrency}", f"-d{args.duration}s", "--latency", "-s", lua, url]
    if args.cpu is not None:
        command = ["taskset", "-c", str(args.cpu)] + command
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    os.unlink(lua)
    if process.returncode != 0:
        sys.stdout.write(output)
        sys.exit(f"wrk exited with {process.returncode}")

    requests = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", output).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M))
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    # wrk's own time (taskset exec'ing into wrk is the same process).
    cpu_us = (usage.ru_utime + usage.ru_stime) * 1e6
    result = {
        "bench": "throughput",
        "client": "wrk",
        "method": method,
        "concurrency": args.concurrency,
        "requests": requests,
        "seconds": round(time.monotonic() - started, 4),
        "rps": round(rps, 1),
        "p50_ms": round(milliseconds(percentiles["50"]), 4),
        "p99_ms": round(milliseconds(percentiles["99"]), 4),
        "cpu_us_per_req": round(cpu_us / requests, 3) if requests else 0,
        "errors": errors,
    }
    print(
        f"wrk {method} C={args.concurrency}: {requests} requests, {rps:.0f} req/s, "
        f"p50 {result['p50_ms']:.3f} ms, p99 {result['p99_ms']:.3f} ms, "
        f"{result['cpu_us_per_req']:.2f} CPU us/req, {errors} errors"
    )
    print("RESULT " + json.dumps(result, separators=(",", ":")), flush=True)


CLIENTS = ["wrk", "naive", "floor", "passthru-thread", "passthru-uv"]


def ratio(value, reference):
    return f"{value / reference:.2f}x" if reference else "-"


def verdict(row, naive, concurrency):
    """The issue's targets for the library's rows: CPU/request at most 0.8x
    naive at C=64 and 1.0x elsewhere, throughput at least 1.0x naive."""
    if not row["client"].startswith("passthru") or not naive:
        return ""
    misses = []
    cpu_limit = 0.8 if concurrency == 64 else 1.0
    if row["cpu_us_per_req"] > cpu_limit * naive["cpu_us_per_req"]:
        misses.append(f"cpu>{cpu_limit}x")
    if row["rps"] < naive["rps"]:
        misses.append("req/s<1x")
    return "ok" if not misses else ",".join(misses)


def table(path):
    runs = {}
    with open(path) as results:
        for line in results:
            if not line.startswith("RESULT "):
                continue
            result = json.loads(line[len("RESULT "):])
            if result.get("bench") != "throughput":
                continue
            key = (result["client"], result["method"], result["concurrency"])
            runs.setdefault(key, []).append(result)
    if not runs:
        sys.exit(f"no throughput RESULT lines in {path}")

    medians = {}
    for key, results in runs.items():
        row = {"client": key[0], "reps": len(results), "errors": sum(r["errors"] for r in results)}
        for field in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req"):
            row[field] = statistics.median(r[field] for r in results)
        medians[key] = row

    header = (
        f"{'client':<16} {'method':<6} {'C':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} "
        f"{'CPU/naive':>9} {'CPU/wrk':>8} {'rps/naive':>9} {'rps/wrk':>8} {'n':>2} {'err':>4}  targets"
    )
    print(header)
    print("-" * len(header))
    methods = sorted({key[1] for key in medians}, key=lambda m: (m != "GET", m))
    concurrencies = sorted({key[2] for key in medians})
    for method in methods:
        for concurrency in concurrencies:
            naive = medians.get(("naive", method, concurrency))
            wrk = medians.get(("wrk", method, concurrency))
            for client in CLIENTS + sorted({k[0] for k in medians} - set(CLIENTS)):
                row = medians.get((client, method, concurrency))
                if row is None:
                    continue
                print(
                    f"{client:<16} {method:<6} {concurrency:>5} {row['rps']:>9.0f} {row['p50_ms']:>8.3f} "
                    f"{row['p99_ms']:>8.3f} {row['cpu_us_per_req']:>10.2f} "
                    f"{ratio(row['cpu_us_per_req'], naive and naive['cpu_us_per_req']):>9} "
                    f"{ratio(row['cpu_us_per_req'], wrk and wrk['cpu_us_per_req']):>8} "
                    f"{ratio(row['rps'], naive and naive['rps']):>9} "
                    f"{ratio(row['rps'], wrk and wrk['rps']):>8} {row['reps']:>2} {row['errors']:>4}  "
                    f"{verdict(row, naive, concurrency)}"
                )
            print()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    wrk = commands.add_parser("wrk")
    wrk.add_argument("--url", required=True)
    wrk.add_argument("--method", choices=["get", "post"], default="get")
    wrk.add_argument("--concurrency", type=int, default=1)
    wrk.add_argument("--duration", type=int, default=5, help="whole seconds (wrk takes no fractions)")
    wrk.add_argument("--cpu", type=int, help="pin wrk to this CPU with taskset")
    summary = commands.add_parser("table")
    summary.add_argument("results")
    args = parser.parse_args()
    if args.command == "wrk":
        run_wrk(args)
    else:
        table(args.results)


if __name__ == "__main__":
    main()
