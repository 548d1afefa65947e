#!/usr/bin/env python3
"""Verifies a passthru-signed request with Python's standard library alone.

Copy verify() into your server. Run this file to check it against two
requests that the library signed (a GET and a POST):

    python3 examples/verify_signature.py
"""
import base64
import hashlib
import hmac
import time


def verify(method, url, body, headers, keys, seen_ids, tolerance=300, now=None):
    """True when the request was signed by the platform with one of `keys`.

    method:   "GET" or "POST"
    url:      your public origin + the raw request target, e.g.
              "https://crm.example.com" + "/passthru?CallSid=CA1..."
    body:     the raw body bytes (b"" for GET)
    headers:  a mapping with the Passthru-* headers
    keys:     list of bytes keys (two while rotating)
    seen_ids: a set remembering ids for 10 minutes (drops replays)
    """
    msg_id = headers.get("Passthru-Id", "")
    ts = headers.get("Passthru-Timestamp", "")
    sig = headers.get("Passthru-Signature", "")
    if not (msg_id and ts.isdigit() and sig):
        return False
    if abs((time.time() if now is None else now) - int(ts)) > tolerance:
        return False
    canonical = "\n".join(["v1", msg_id, ts, method, url,
                           hashlib.sha256(body).hexdigest()]).encode()
    expected = ["v1," + base64.b64encode(
        hmac.new(k, canonical, hashlib.sha256).digest()).decode() for k in keys]
    ok = any(hmac.compare_digest(e, s) for e in expected
             for s in sig.split(" ") if s.startswith("v1,"))
    if not ok or msg_id in seen_ids:
        return False
    seen_ids.add(msg_id)
    return True


def _self_test():
    # Signed by passthru::sign_canonical (tests/unit/signature_test.cpp holds
    # the same vectors).
    key = b"an-example-signing-key-of-32-bytes!!"
    ts = "1764068400"
    get = dict(method="GET",
               url="https://crm.example.com/passthru?CallSid=CA123&CallFrom=%2B15551230000&digits=42",
               body=b"",
               headers={"Passthru-Id": "0123456789abcdef0123456789abcdef", "Passthru-Timestamp": ts,
                        "Passthru-Signature": "v1,pGVFgUjJFB4Q0nalTQknJsgRm+DC+iNIL/rx86gYbVI="})
    post = dict(method="POST", url="https://crm.example.com/passthru", body=b"CallSid=CA123&digits=42",
                headers={"Passthru-Id": "fedcba9876543210fedcba9876543210", "Passthru-Timestamp": ts,
                         "Passthru-Signature": "v1,QQVzaJbXCFdRz0p1mznSEGkU8Sctxm8MiNEreqYFaaI="})
    now = int(ts) + 10
    failures = 0

    def check(name, got, want):
        nonlocal failures
        print(f"{'ok  ' if got == want else 'FAIL'} {name}")
        failures += got != want

    for request in (get, post):
        seen = set()
        m = request["method"]
        check(f"{m} signed by the library verifies", verify(**request, keys=[key], seen_ids=seen, now=now), True)
        check(f"{m} replay is refused", verify(**request, keys=[key], seen_ids=seen, now=now), False)
        check(f"{m} with a tampered body is refused",
              verify(**{**request, "body": request["body"] + b"&x=1"}, keys=[key], seen_ids=set(), now=now), False)
        check(f"{m} with a tampered URL is refused",
              verify(**{**request, "url": request["url"] + "&x=1"}, keys=[key], seen_ids=set(), now=now), False)
        check(f"{m} under another key is refused",
              verify(**request, keys=[b"x" * 32], seen_ids=set(), now=now), False)
        check(f"{m} with the old and the new key verifies",
              verify(**request, keys=[b"x" * 32, key], seen_ids=set(), now=now), True)
        check(f"{m} ten minutes later is refused",
              verify(**request, keys=[key], seen_ids=set(), now=now + 600), False)
    print(f"{14 - failures} passed, {failures} failed")
    return failures == 0


if __name__ == "__main__":
    raise SystemExit(0 if _self_test() else 1)
