#!/usr/bin/env python3
"""Searches under a live feed (scripts/bench-ror-writes): the brief's example searches from several consumers, first
alone, then while a feeder PATCHes capacities at a steady rate; p50/p99 per query for each phase. With
--soak-minutes, the same load for that long, sampling the server's RSS and the journal's size. Figures printed,
never asserted. Standard library only.
Usage: bench_ror_writes.py --port P --admin URL --pki DIR [--consumers 4] [--rate 50] [--seconds 30] [--pid PID]
       [--soak-minutes 10]"""
import argparse
import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import bench_feed  # noqa: E402
import bench_ror  # noqa: E402

SEARCHES = [query for query in bench_ror.QUERIES if "?" in query]


def connection(args, client):
    context = ssl.create_default_context(cafile=args.pki + "/ca-bundle.pem")
    context.load_cert_chain(args.pki + "/clients/%s/cert.pem" % client, args.pki + "/clients/%s/key.pem" % client)
    return http.client.HTTPSConnection("127.0.0.1", args.port, context=context, timeout=60)


def token(conn, client_id):
    conn.request("POST", "/auth/realms/ror/protocol/openid-connect/token",
                 body="grant_type=client_credentials&client_id=" + client_id,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    return json.loads(conn.getresponse().read())["access_token"]


def consumer(args, stop, times, errors, offset):
    conn = connection(args, "ror-consumer")
    headers = dict(bench_ror.HEADERS, Authorization="Bearer " + token(conn, "esante-sandbox-consumer"))
    renewed, index = time.time(), offset
    while not stop.is_set():
        if time.time() - renewed > 240:  # tokens live 300 s
            headers["Authorization"] = "Bearer " + token(conn, "esante-sandbox-consumer")
            renewed = time.time()
        query = SEARCHES[index % len(SEARCHES)]
        index += 1
        started = time.perf_counter()
        conn.request("GET", "/ws-diffusion-fhir/" + urllib.parse.quote(query, safe="/?=&,:._-|"), headers=headers)
        response = conn.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            errors.append((query, response.status))
        times.setdefault(query, []).append(elapsed)


def feeder(args, stop, patches):
    """PATCHes at args.rate per second, paced (not as fast as it can): a busy region's steady feed."""
    conn = connection(args, "ror-feeder")
    bearer, renewed = "Bearer " + token(conn, "esante-sandbox-feeder"), time.time()
    places = list(bench_feed.NATURES)
    n, started = 0, time.perf_counter()
    while not stop.is_set():
        if time.time() - renewed > 240:  # tokens live 300 s
            bearer, renewed = "Bearer " + token(conn, "esante-sandbox-feeder"), time.time()
        place = places[n % len(places)]
        sent = time.perf_counter()
        conn.request("PATCH", "/ws-synchro-dispo-lits-fhir/Location?identifier=" + place,
                     body=bench_feed.body(n % 50, bench_feed.NATURES[place]),
                     headers={"Content-Type": "application/fhir+json", "Authorization": bearer})
        response = conn.getresponse()
        response.read()
        patches.append(((time.perf_counter() - sent) * 1000, response.status))
        n += 1
        delay = started + n / args.rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * fraction))]


def phase(args, writes, seconds, sample=None):
    stop, times, errors, patches = threading.Event(), {}, [], []
    threads = [threading.Thread(target=consumer, args=(args, stop, times, errors, i)) for i in range(args.consumers)]
    if writes:
        threads.append(threading.Thread(target=feeder, args=(args, stop, patches)))
    for thread in threads:
        thread.start()
    ended = time.time() + seconds
    while time.time() < ended:
        time.sleep(min(30, max(0.1, ended - time.time())))
        if sample:
            sample(patches)
    stop.set()
    for thread in threads:
        thread.join()
    return times, errors, patches


def report(title, times, errors, patches, seconds):
    print("== %s" % title)
    for query in SEARCHES:
        values = times.get(query, [])
        if values:
            print("  p50 %7.1f  p99 %7.1f  max %7.1f ms  (%4d runs)  %s" % (
                percentile(values, 0.5), percentile(values, 0.99), max(values), len(values), query[:100]))
    if patches:
        ok = sum(1 for _, status in patches if status == 200)
        print("  feed: %d PATCHes in %d s (%.0f/s), %d answered 200, p99 %.1f ms" % (
            len(patches), seconds, len(patches) / seconds, ok, percentile([t for t, _ in patches], 0.99)))
    if errors:
        print("  %d searches not answered 200, e.g. %s" % (len(errors), errors[:3]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--admin", required=True)
    parser.add_argument("--pki", required=True)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--soak-minutes", type=float, default=0)
    parser.add_argument("--data-dir", help="the server's data folder: its database's size is sampled too")
    args = parser.parse_args()

    for writes in (False, True):
        times, errors, patches = phase(args, writes, args.seconds)
        title = ("searches while the feed PATCHes %.0f/s" % args.rate) if writes else "searches alone"
        report("%s: %d consumers, %d s" % (title, args.consumers, args.seconds), times, errors, patches, args.seconds)

    if args.soak_minutes > 0:
        print("== %.0f minutes of the same load (feed %.0f/s): RSS and journal every 30 s" % (args.soak_minutes, args.rate))
        started = time.time()

        def sample(patches):
            rss = "-"
            if args.pid:
                rss = "%.0f MiB" % (int([line.split()[1] for line in open("/proc/%d/status" % args.pid)
                                         if line.startswith("VmRSS")][0]) / 1024)
            metrics = urllib.request.urlopen(args.admin + "/metrics").read().decode()
            rows = next((line.split()[-1] for line in metrics.splitlines() if line.startswith("esante_sandbox_journal_rows")), "?")
            disk = "-"
            if args.data_dir:
                # Space taken (a page overlay's file is sparse): the database and its write-ahead log.
                disk = "%.0f MB" % (sum(os.stat(os.path.join(args.data_dir, name)).st_blocks * 512
                                        for name in ("sandbox.sqlite", "sandbox.sqlite-wal")
                                        if os.path.exists(os.path.join(args.data_dir, name))) / 1e6)
            print("  t=%4.0f s  RSS %s  journal rows %s  database on disk %s  PATCHes %d" % (
                time.time() - started, rss, rows, disk, len(patches)), flush=True)

        seconds = int(args.soak_minutes * 60)
        times, errors, patches = phase(args, True, seconds, sample)
        report("over the %.0f minutes" % args.soak_minutes, times, errors, patches, seconds)


if __name__ == "__main__":
    main()
