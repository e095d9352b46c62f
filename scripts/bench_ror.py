#!/usr/bin/env python3
"""Latency of the brief's example ROR queries and duration of a full $export (used by scripts/bench-ror).

One keep-alive mutual-TLS connection; each query 200 times; prints p50 / p99 / max in ms. Standard library only.
"""
import argparse
import http.client
import json
import ssl
import statistics
import time
import urllib.parse

NOS = "https://mos.esante.gouv.fr/NOS/{0}/FHIR/{1}"


def nos(tre):
    return NOS.format(tre, tre.replace("_", "-"))


QUERIES = {
    "Location?_revinclude=HealthcareService:location&_count=50": None,
    "Location?_tag=11&_count=50": None,
    "Location?identifier=L1,L2": None,
    "Location?_lastUpdated=ge2022-11-06T15:00&_count=50": None,
    "Location?_has:HealthcareService:location:identifier=11/000011,11/000012": None,
    "HealthcareService?specialty={0}|356&location.capacity-type={1}|01&location.gender-capacity-available={2}|01"
    "&location.temporality-capacity={3}|01&location.capacity-status={4}|02&location.nb-capacity=gt0"
    "&_include=HealthcareService:location&_count=50".format(
        nos("TRE_R211-ActiviteOperationnelle"), nos("TRE_R329-NatureCapacite"), nos("TRE_R332-GenreCapacite"),
        nos("TRE_R331-TemporaliteCapacite"), nos("TRE_R330-TypeStatutCapacite")): None,
    "HealthcareService?_id=hs-00001-1&_include=HealthcareService:organization&_include:iterate=Organization:partof"
    "&_include=HealthcareService:location&_revinclude=PractitionerRole:service&_include=PractitionerRole:practitioner": None,
    "Location/loc-00001-1": None,
}

HEADERS = {
    "Ror-Profil-Utilisateur-Code": "CU22",
    "Ror-Profil-Utilisateur-System": "1.2.250.1.213.1.6.1.66",
    "Ror-Role-Metier-Code": "AUTOMATE",
    "Ror-Role-Metier-System": "1.2.250.1.213.1.1.4.6",
}


def main():
    parser = argparse.ArgumentParser()
    for name in ["cacert", "cert", "key", "out", "token-file"]:
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pid", type=int, help="server process: its RSS is printed after the queries")
    parser.add_argument("--export-only", action="store_true", help="only the full $export")
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.cacert)
    context.load_cert_chain(args.cert, args.key)
    connection = http.client.HTTPSConnection("127.0.0.1", args.port, context=context)

    headers = {}

    def refresh_token():
        # Tokens live 300 s, as the ROR's: take a fresh one before each measurement.
        connection.request("POST", "/auth/realms/ror/protocol/openid-connect/token",
                           body="grant_type=client_credentials&client_id=esante-sandbox-consumer",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        token = json.loads(connection.getresponse().read())["access_token"]
        open(args.token_file, "w").write(token)
        headers.clear()
        headers.update(HEADERS, Authorization="Bearer " + token)

    def get(path):
        quoted = urllib.parse.quote(path, safe="/?=&,:._-")
        connection.request("GET", "/ws-diffusion-fhir/" + quoted, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), response

    print("== example queries: %d runs each on one keep-alive connection (ms); first = the first call, before the"
          " search cache (identical searches reuse their ids until the next write, as HAPI reuses cached results)" % args.runs)
    for query in ([] if args.export_only else QUERIES):
        refresh_token()
        started = time.perf_counter()
        status, body, _ = get(query)
        first = (time.perf_counter() - started) * 1000
        total = json.loads(body).get("total", "-") if status == 200 else body[:200]
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            get(query)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p99 = times[int(len(times) * 0.99) - 1]
        print("  first %6.1f  p50 %6.1f  p99 %6.1f  max %6.1f  [%s, total %s]  %s" % (
            first, statistics.median(times), p99, times[-1], status, total, query[:110]))

    if args.pid and not args.export_only:
        def rss():
            return int([line.split()[1] for line in open("/proc/%d/status" % args.pid) if line.startswith("VmRSS")][0]) / 1024
        busy = rss()
        time.sleep(2.5)  # the sandbox gives malloc's freed pages back after a second without calls
        print("== RSS after the queries: %.0f MiB at once, %.0f MiB when idle" % (busy, rss()))

    refresh_token()
    status, body, _ = get("Location/loc-00001-1")
    open(args.out, "wb").write(body)

    print("== full $export (all types, associated data)")
    started = time.perf_counter()
    connection.request("GET", "/ws-diffusion-fhir/$export?includeAssociatedData=_myCompleteExtract", headers=headers)
    response = connection.getresponse()
    response.read()
    location = response.getheader("Content-Location") or ""
    poll = urllib.parse.urlsplit(location)
    while True:
        connection.request("GET", poll.path + "?" + poll.query, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status == 200:
            break
        time.sleep(0.05)
    manifest = json.loads(body)
    elapsed = time.perf_counter() - started
    counts = {}
    for output in manifest["output"]:
        counts[output["type"]] = counts.get(output["type"], 0) + output["count"]
    print("  manifest after %.2f s (target ≤ 10 s): %s in %d files" % (elapsed, counts, len(manifest["output"])))
    started = time.perf_counter()
    size = 0
    for output in manifest["output"]:
        url = urllib.parse.urlsplit(output["url"])
        connection.request("GET", url.path + "?" + url.query, headers=headers)
        size += len(connection.getresponse().read())
    print("  all files downloaded in %.2f s (%.0f MB)" % (time.perf_counter() - started, size / 1048576))


if __name__ == "__main__":
    main()
