#!/usr/bin/env python3
"""Load and timings of scripts/bench-dmp (figures printed, never asserted): DMPs created by TD1.1 and documents pushed
by ITI-41 (4 client processes) until N are stored, then on one keep-alive connection ITI-41 of a 1 MB document over
MTOM, ITI-18 FindDocuments of one patient, ITI-43 of the 1 MB document over MTOM: p50/p99."""
import argparse, multiprocessing, os, sys, time, uuid

sys.path.insert(0, os.path.dirname(__file__))
import dmp_client as dmp  # noqa: E402

OID = "1.2.250.1.213.1.4.10"


def ins(n):
    return "1%04d75%06d%02d" % (8001, n, n % 97)


def patient(n):
    return "%s^^^&%s&ISO" % (ins(n), OID)


def creation(n):
    return ('<PRPA_IN201311UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="1.2.3" extension="b-%d"/><controlActProcess classCode="CACT" moodCode="EVN">'
            '<subject><registrationRequest><subject1><patient><id root="%s" extension="%s"/><statusCode code="active"/></patient></subject1>'
            '</registrationRequest></subject></controlActProcess></PRPA_IN201311UV02>') % (n, OID, ins(n))


def document(n, size=2048):
    head = ('<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>'
            '<id root="%s" extension="%s"/></patientRole></recordTarget><text>' % (OID, ins(n))).encode()
    return head + b"x" * max(0, size - len(head) - 30) + b"</text></ClinicalDocument>"


def loader(job):
    args, patients, per_patient = job
    dmp.connect(args.tls, args.cacert, args.cert, args.key)
    for n in patients:
        for _ in range(per_patient):
            answer = dmp.soap("/si-dmp-server/v2/services/repository", "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
                              dmp.submission(document(n), "1.2.250.1.999.8.%d" % uuid.uuid4().int, patient(n), inline=True), patient=patient(n))
            if b"ResponseStatusType:Success" not in answer.content:
                raise SystemExit("ITI-41 refused: %s" % answer.text[-400:])
    return len(patients) * per_patient


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * fraction))]


def timed(runs, call):
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        timings.append((time.perf_counter() - began) * 1000)
    return "p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (percentile(timings, 0.5), percentile(timings, 0.99), max(timings))


def main():
    parser = argparse.ArgumentParser()
    for name in ("--tls", "--cacert", "--cert", "--key"):
        parser.add_argument(name, required=True)
    parser.add_argument("--documents", type=int, default=10000)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    dmp.connect(args.tls, args.cacert, args.cert, args.key)
    for n in range(args.patients):
        answer = dmp.soap("/si-dmp-server/v2/services/patients", "urn:hl7-org:v3:PRPA_IN201311UV02", creation(n), patient=patient(n))
        if b"PRPA_IN201312UV02" not in answer.content:
            raise SystemExit("TD1.1 refused: %s" % answer.text[-300:])
    per_patient = args.documents // args.patients
    jobs = [(args, list(range(k, args.patients, 4)), per_patient) for k in range(4)]
    started = time.time()
    with multiprocessing.Pool(4) as pool:
        stored = sum(pool.map(loader, jobs))
    elapsed = time.time() - started
    print("  stored %d documents (2 KB CDA) for %d patients through ITI-41 in %.1f s (%.0f/s, 4 client processes)" % (stored, args.patients, elapsed, stored / elapsed))

    big = document(0, size=1 << 20)
    uniques = []

    def push_big(pause):
        """ITI-41 of the 1 MB document over MTOM, the request built before the clock starts; `pause` seconds after each."""
        timings = []
        for _ in range(args.runs):
            unique = "1.2.250.1.999.9.%d" % uuid.uuid4().int
            text = dmp.envelope("urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b", dmp.submission(big, unique, patient(0)), patient(0))
            payload, content_type = dmp.mtom(text, [("doc1@client", big)])
            began = time.perf_counter()
            answer = dmp.session.post(dmp.tls + "/si-dmp-server/v2/services/repository", data=payload, headers={"Content-Type": content_type})
            timings.append((time.perf_counter() - began) * 1000)
            if b"ResponseStatusType:Success" not in answer.content:
                raise SystemExit("ITI-41 of 1 MB refused: %s" % answer.text[-300:])
            uniques.append(unique)
            time.sleep(pause)
        return "p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (percentile(timings, 0.5), percentile(timings, 0.99), max(timings))
    print("  ITI-41, one 1 MB document over MTOM every 100 ms, %d runs: %s (target <= 50 ms)" % (args.runs, push_big(0.1)))
    print("  ITI-41, one 1 MB document over MTOM back to back, %d runs: %s (disk-bound: ~5 MB written per push)" % (args.runs, push_big(0)))

    def find():
        answer = dmp.soap("/si-dmp-server/v2/services/registry", "urn:ihe:iti:2007:RegistryStoredQuery", dmp.find_documents(patient(1)), patient=patient(1))
        if answer.content.count(b"ExtrinsicObject ") < per_patient:
            raise SystemExit("ITI-18 found too few: %s" % answer.text[:300])
    print("  ITI-18 FindDocuments of a patient with %d documents (LeafClass), %d runs: %s (target p99 <= 20 ms)" % (per_patient, args.runs * 2, timed(args.runs * 2, find)))

    retrieve = ('<xdsb:RetrieveDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007"><xdsb:DocumentRequest>'
                '<xdsb:RepositoryUniqueId>1.2.250.1.213.4.1.1.1.2</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>%s</xdsb:DocumentUniqueId>'
                '</xdsb:DocumentRequest></xdsb:RetrieveDocumentSetRequest>') % uniques[0]

    def fetch():
        answer = dmp.soap("/si-dmp-server/v2/services/repository", "urn:ihe:iti:2007:RetrieveDocumentSet", retrieve, [], patient=patient(0))
        if len(answer.content) < len(big):
            raise SystemExit("ITI-43 answered too little")
    print("  ITI-43, the 1 MB document over MTOM, %d runs: %s" % (args.runs, timed(args.runs, fetch)))


if __name__ == "__main__":
    main()
