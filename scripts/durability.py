#!/usr/bin/env python3
"""Rounds of scripts/durability-check: mixed writes from several clients — capacity PATCHes (feeder), whitelist
entries and onboarding requests (admin API) — then the server killed with -9 at a random moment; after each restart
every write the server acknowledged must be there (a PATCH with the bytes answered) and SQLite's integrity check ok.
With SEEDS (a seeds folder holding a prebuilt ROR database, `seed generate`), the data folder is a page overlay over
it (`serve --prebuilt overlay`), read back through `esante-sandbox sql` (VACUUM INTO a copy), and the prebuilt file
must come out of the rounds unchanged.
Usage: durability.py BINARY DATA_DIR ROUNDS [SEEDS]"""
import json, os, random, signal, sqlite3, subprocess, sys, threading, time

import requests

sys.path.insert(0, os.path.dirname(__file__))
import bench_feed  # noqa: E402

binary, folder, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
seeds = sys.argv[4] if len(sys.argv) > 4 else None
prebuilt = seeds and os.path.join(seeds, "ror", "dataset.sqlite")
prebuilt_digest = prebuilt and __import__("hashlib").sha256(open(prebuilt, "rb").read()).hexdigest()


def readable_copy():
    """The database as a file Python's sqlite3 opens, and SQLite's integrity check of it as stored."""
    if not seeds:
        db = sqlite3.connect(folder + "/sandbox.sqlite")
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.close()
        return folder + "/sandbox.sqlite", integrity
    copy = folder + "/copy.sqlite"
    if os.path.exists(copy):
        os.remove(copy)
    checked = subprocess.run([binary, "sql", "--data-dir", folder, "PRAGMA integrity_check", "VACUUM INTO '%s'" % copy],
                             capture_output=True, text=True)
    if checked.returncode != 0:
        sys.exit("esante-sandbox sql failed: %s" % checked.stderr)
    return copy, checked.stdout.split("\n")[1]


def start():
    ready = folder + "/ready.json"
    if os.path.exists(ready):
        os.remove(ready)
    process = subprocess.Popen([binary, "serve", "--data-dir", folder, "--port", "0", "--admin-port", "0", "--key-type", "p256",
                                "--ready-file", ready] + (["--seeds", seeds, "--prebuilt", "overlay"] if seeds else []), stdout=subprocess.DEVNULL, stderr=open(folder + "/err.log", "a"))
    for _ in range(600):
        if os.path.exists(ready) and os.path.getsize(ready) > 0:
            return process, json.load(open(ready))
        if process.poll() is not None:
            sys.exit("the server did not start: %s" % open(folder + "/err.log").read()[-600:])
        time.sleep(0.05)
    sys.exit("the server did not get ready")


def feeder(info, stop, acked, lock, place):
    pki = folder + "/pki"
    s = requests.Session()
    s.trust_env = False
    s.verify, s.cert = pki + "/ca-bundle.pem", (pki + "/clients/ror-feeder/cert.pem", pki + "/clients/ror-feeder/key.pem")
    try:
        token = s.post(info["tls"] + "/auth/realms/ror/protocol/openid-connect/token",
                       data={"grant_type": "client_credentials", "client_id": "esante-sandbox-feeder"}, timeout=5).json()["access_token"]
        n = 0
        while not stop.is_set():
            n += 1
            r = s.patch(info["tls"] + "/ws-synchro-dispo-lits-fhir/Location?identifier=" + place, timeout=5,
                        data=bench_feed.body(n % 50, bench_feed.NATURES[place]),
                        headers={"Content-Type": "application/fhir+json", "Authorization": "Bearer " + token})
            if r.status_code == 200:
                resource = r.json()
                with lock:
                    acked["patch"].append([resource["id"], int(resource["meta"]["versionId"]),
                                           __import__("hashlib").sha256(r.content).hexdigest()])
    except requests.RequestException:
        return


def administrator(info, stop, acked, lock, round_number):
    s = requests.Session()
    s.trust_env = False
    headers = {"Content-Type": "application/json", "Origin": info["admin"]}
    n = 0
    try:
        while not stop.is_set():
            n += 1
            dn = "CN=DURABILITE_%d_%d,O=EDITEUR SANDBOX,C=FR" % (round_number, n)
            r = s.post(info["admin"] + "/admin/whitelist", timeout=5, headers=headers,
                       data=json.dumps({"service": "insi", "subjectDN": dn, "label": "durability"}))
            if r.status_code == 201:
                with lock:
                    acked["whitelist"].append([r.json()["id"], dn])
            r = s.post(info["admin"] + "/admin/onboarding", timeout=5, headers=headers, data=json.dumps({
                "kind": "saas", "direction": "consume", "service": "ror-fhir", "contact": "round%d@editeur.test" % round_number,
                "subjectDN": "CN=ONBOARDING_%d_%d,O=EDITEUR SANDBOX,C=FR" % (round_number, n)}))
            if r.status_code == 201:
                with lock:
                    acked["onboarding"].append(r.json()["id"])
    except requests.RequestException:
        return


totals = {"patch": 0, "whitelist": 0, "onboarding": 0}
lost = 0
for round_number in range(1, rounds + 1):
    process, info = start()
    acked = {"patch": [], "whitelist": [], "onboarding": []}
    lock, stop = threading.Lock(), threading.Event()
    threads = [threading.Thread(target=feeder, args=(info, stop, acked, lock, place)) for place in list(bench_feed.NATURES)[:2]]
    threads.append(threading.Thread(target=administrator, args=(info, stop, acked, lock, round_number)))
    for thread in threads:
        thread.start()
    time.sleep(random.uniform(0.6, 1.6))
    process.send_signal(signal.SIGKILL)
    process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    with lock:
        snapshot = {key: list(value) for key, value in acked.items()}
    path, integrity = readable_copy()
    db = sqlite3.connect(path)
    whitelist = {row[0]: row[1] for row in db.execute("SELECT id, subject_dn FROM whitelist_entry")}
    onboarding = {row[0] for row in db.execute("SELECT id FROM onboarding_request")}
    db.close()
    missing = bench_feed.missing_versions(path, snapshot["patch"])
    missing_whitelist = [i for i, dn in snapshot["whitelist"] if whitelist.get(i) != dn]
    missing_onboarding = [i for i in snapshot["onboarding"] if i not in onboarding]
    round_lost = len(missing) + len(missing_whitelist) + len(missing_onboarding)
    lost += round_lost
    for key in totals:
        totals[key] += len(snapshot[key])
    print("round %2d: %3d PATCHes, %3d whitelist entries, %3d onboarding requests acknowledged; lost %d; integrity %s" % (
        round_number, len(snapshot["patch"]), len(snapshot["whitelist"]), len(snapshot["onboarding"]), round_lost, integrity))
    if round_lost or integrity != "ok":
        sys.exit("durability check FAILED in round %d: %s %s %s" % (round_number, missing[:5], missing_whitelist[:5], missing_onboarding[:5]))
process, info = start()
health = requests.get(info["admin"] + "/admin/health", timeout=5).status_code
process.terminate()
process.wait()
if prebuilt and __import__("hashlib").sha256(open(prebuilt, "rb").read()).hexdigest() != prebuilt_digest:
    sys.exit("durability check FAILED: the prebuilt database %s was written" % prebuilt)
print("durability check passed%s:" % (" (a page overlay over a prebuilt database, left unchanged)" if seeds else "") + " %d kill -9 rounds, %d PATCHes, %d whitelist entries, %d onboarding requests acknowledged, "
      "none lost, integrity ok, restart answers health %d" % (rounds, totals["patch"], totals["whitelist"], totals["onboarding"], health))
