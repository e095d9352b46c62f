#!/usr/bin/env python3
"""Time from `esante-sandbox serve` process start to the first successful mutual-TLS request.

Polls with a TLS client every 2 ms from the moment the process is spawned; prints each run and the median.
Used by scripts/bench; standard library only.
"""
import argparse
import http.client
import os
import signal
import ssl
import statistics
import subprocess
import time


def first_success(port, context, deadline):
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=1)
            connection.request("GET", "/_sandbox/whoami")
            if connection.getresponse().status == 200:
                return True
        except (OSError, ssl.SSLError, http.client.HTTPException):
            pass
        time.sleep(0.002)
    return False


def main():
    parser = argparse.ArgumentParser()
    for name in ["bin", "data", "cacert", "cert", "key"]:
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--admin-port", type=int, required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    context = ssl.create_default_context(cafile=args.cacert)
    context.load_cert_chain(args.cert, args.key)
    times = []
    for run in range(args.runs):
        started = time.monotonic()
        process = subprocess.Popen(
            [args.bin, "serve", "--data-dir", args.data, "--port", str(args.port),
             "--admin-port", str(args.admin_port), "--seeds", "Seeds"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = first_success(args.port, context, started + 10)
        elapsed = time.monotonic() - started
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        if not ok:
            print(f"  run {run + 1}: no successful request within 10 s")
            continue
        times.append(elapsed)
        print(f"  run {run + 1}: {elapsed * 1000:.0f} ms")
    if times:
        print(f"  median: {statistics.median(times) * 1000:.0f} ms (target ≤ 300 ms)")


if __name__ == "__main__":
    main()
