#!/usr/bin/env python3
"""Load and timings of scripts/bench-mes: measures pushed through the API until N are stored, then push and search
latencies (p50/p99) on one keep-alive mutual-TLS connection. Figures printed, never asserted."""
import argparse, http.client, json, multiprocessing, ssl, time, urllib.request

OID = "1.2.250.1.999.42.1"
SERIES = [("29463-7", "kg", 50, 110), ("41950-7", "1/(24.h)", 0, 20000), ("8867-4", "/min", 45, 140), ("2345-7", "mg/dL", 60, 250)]


def connect(args):
    context = ssl.create_default_context(cafile=args.cacert)
    context.load_cert_chain(args.cert)
    return http.client.HTTPSConnection("127.0.0.1", args.port, context=context, timeout=10)


def bundle(idpe, index):
    code, unit, low, high = SERIES[index % len(SERIES)]
    minutes = index  # one measure a minute, going back from now
    effective = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600 - 60 * minutes))
    value = low + (index * 37) % (high - low)
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "POST", "url": "Observation"}, "resource": {
        "resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"identifier": {"system": "urn:oid:" + OID, "value": idpe}}, "effectiveDateTime": effective,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}}]})


def push(connection, token, body):
    connection.request("POST", "/mes/fhir", body=body, headers={"Authorization": "Bearer " + token, "Content-Type": "application/fhir+json"})
    response = connection.getresponse()
    payload = response.read()
    if response.status != 200:
        raise SystemExit("push refused: %d %s" % (response.status, payload[:300]))


def loader(job):
    args, token, idpe, start, count = job
    connection = connect(args)
    for index in range(start, start + count):
        push(connection, token, bundle(idpe, index))
    return count


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * fraction))]


def main():
    parser = argparse.ArgumentParser()
    for name in ("--admin", "--cacert", "--cert"):
        parser.add_argument(name, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--measures", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()

    patients = json.load(urllib.request.urlopen(args.admin + "/admin/mes/patients"))
    pairings = []
    for patient in patients:
        request = urllib.request.Request(args.admin + "/admin/mes/pairings", method="POST", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"clientId": "esante-sandbox-balance", "ins": patient["ins"]}).encode())
        answer = json.load(urllib.request.urlopen(request))
        pairings.append((answer["tokens"]["access_token"], answer["pairing"]["idPe"]))
    # Tokens from the admin API bind to the first certificate that uses them: the same demo certificate everywhere.
    per_patient = args.measures // len(pairings)
    jobs = []
    for token, idpe in pairings:
        for part in range(2):
            jobs.append((args, token, idpe, part * (per_patient // 2), per_patient // 2))
    started = time.time()
    with multiprocessing.Pool(4) as pool:
        stored = sum(pool.map(loader, jobs))
    elapsed = time.time() - started
    print("  loaded %d measures for %d patients through the API in %.1f s (%.0f pushes/s, 4 client processes)" % (stored, len(pairings), elapsed, stored / elapsed))

    token, idpe = pairings[0]
    connection = connect(args)
    timings = []
    for index in range(args.runs):
        body = bundle(idpe, per_patient + index)
        began = time.perf_counter()
        push(connection, token, body)
        timings.append((time.perf_counter() - began) * 1000)
    print("  push (validation, durable commit, journal), %d on one connection: p50 %.2f ms, p99 %.2f ms, max %.2f ms (target p99 <= 20 ms)" % (
        args.runs, percentile(timings, 0.5), percentile(timings, 0.99), max(timings)))

    subject = "subject.identifier=urn:oid:%s%%7C%s" % (OID, idpe)
    month_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 30 * 86400))
    queries = [
        ("last value", "/mes/fhir/Observation?%s&code=29463-7&_sort=-date&_count=1" % subject),
        ("first page of one code", "/mes/fhir/Observation?%s&code=8867-4&_count=100" % subject),
        ("one code over a month", "/mes/fhir/Observation?%s&code=2345-7&date=ge%s&_count=100" % (subject, month_ago)),
        ("all codes, page 10", "/mes/fhir/Observation?%s&_count=100&_offset=1000" % subject),
    ]
    for label, path in queries:
        timings, total = [], None
        for run in range(args.runs // 5):
            # A bound a second later each run: every query is new to the server (its search-result cache never answers).
            unique = "&date=le" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400 + run))
            began = time.perf_counter()
            connection.request("GET", path + unique, headers={"Authorization": "Bearer " + token})
            response = connection.getresponse()
            payload = response.read()
            timings.append((time.perf_counter() - began) * 1000)
            if response.status != 200:
                raise SystemExit("search refused: %d %s" % (response.status, payload[:300]))
            total = json.loads(payload)["total"]
        print("  search, %-24s (total %6d): p50 %.2f ms, p99 %.2f ms (target p99 <= 20 ms)" % (label, total, percentile(timings, 0.5), percentile(timings, 0.99)))


if __name__ == "__main__":
    main()
