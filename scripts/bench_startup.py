#!/usr/bin/env python3
"""Time from `esante-sandbox serve` process start to the first successful mutual-TLS request.

Polls with a TLS client every 2 ms from the moment the process is spawned; prints each run and the median.
With --fresh, each run starts on a new data folder (DATA/run-N): the client certificate is read as soon as the
sandbox has written it. With --pool-wait, a fresh run first waits until the key pool in $ESANTE_SANDBOX_CACHE is
full again (what a suite starting a sandbox every few seconds finds). Used by scripts/bench; standard library only.
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
        if callable(context):
            context = context()
            if callable(context):
                time.sleep(0.002)
                continue
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
    parser.add_argument("--fresh", action="store_true", help="a new data folder per run (paths relative to it)")
    parser.add_argument("--pool-wait", type=int, default=0, help="keys to wait for in the pool before each run")
    parser.add_argument("--extra", default="", help="more serve arguments, space-separated")
    args = parser.parse_args()

    def make_context(data):
        def path(name):
            value = getattr(args, name)
            return os.path.join(data, value) if args.fresh else value

        def attempt():
            try:
                context = ssl.create_default_context(cafile=path("cacert"))
                context.load_cert_chain(path("cert"), path("key"))
                return context
            except (OSError, ssl.SSLError):
                return attempt  # not written yet: try again on the next poll
        return attempt()

    pool = os.path.join(os.environ.get("ESANTE_SANDBOX_CACHE", ""), "key-pool", "rsa2048")
    times = []
    for run in range(args.runs):
        data = os.path.join(args.data, f"run-{run + 1}") if args.fresh else args.data
        # A run waits for the pool the previous ones drained (the first fills it if it was empty).
        for _ in range(3000 if run > 0 else 0):
            ready = len([n for n in os.listdir(pool) if n.endswith(".pem")]) if os.path.isdir(pool) else 0
            if not args.pool_wait or ready >= args.pool_wait:
                break
            time.sleep(0.01)
        started = time.monotonic()
        process = subprocess.Popen(
            [args.bin, "serve", "--data-dir", data, "--port", str(args.port),
             "--admin-port", str(args.admin_port)] + args.extra.split(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = first_success(args.port, make_context(data), started + 10)
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
