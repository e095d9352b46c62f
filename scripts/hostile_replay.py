#!/usr/bin/env python3
"""Replays Tests/Corpus/hostile-requests.jsonl against a running sandbox: every request must be refused (4xx; a SOAP
service may answer its Fault with 500, as the real one does) in its protocol's form, the server must stay up, and the
stored data must be as before (a digest of the service tables read from the data folder's SQLite file).
Usage: hostile_replay.py DATA_DIR (the ready file is DATA_DIR/ready.json)"""
import hashlib, json, sqlite3, sys, time

import requests

folder = sys.argv[1]
ready = json.load(open(folder + "/ready.json"))
tls, admin = ready["tls"], ready["admin"]
pki = folder + "/pki"
ca = pki + "/ca-bundle.pem"
ROR_HEADERS = {"Ror-Profil-Utilisateur-Code": "CU22", "Ror-Profil-Utilisateur-System": "1.2.250.1.213.1.6.1.66",
               "Ror-Role-Metier-Code": "AUTOMATE", "Ror-Role-Metier-System": "1.2.250.1.213.1.1.4.6"}
TABLES = ["fhir_resource", "whitelist_entry", "dmp_record", "dmp_document", "dmp_authorization", "insi_identity", "insi_card",
          "insi_lps", "mes_service", "mes_pairing", "onboarding_request", "onboarding_event", "recette_run", "ror_revoked_token",
          "sandbox_clock"]


def digest():
    db = sqlite3.connect("file:%s/sandbox.sqlite?mode=ro" % folder, uri=True)
    h = hashlib.sha256()
    for table in TABLES:
        for row in db.execute("SELECT * FROM %s ORDER BY 1, 2" % table):
            h.update(repr(row).encode())
    db.close()
    # Fault rules live in memory: read through the admin API.
    h.update(requests.get(admin + "/admin/faults", timeout=10).content)
    return h.hexdigest()


def session(client):
    s = requests.Session()
    s.trust_env = False
    s.verify = ca
    s.cert = (pki + "/clients/%s/cert.pem" % client, pki + "/clients/%s/key.pem" % client)
    return s


sessions = {name: session(name) for name in ["ror-consumer", "ror-feeder", "csd-consumer", "insi-lps", "mes-service"]}
sessions["ror-consumer-raw"] = sessions["ror-consumer"]
tokens = {}
for client, client_id in [("ror-consumer", "esante-sandbox-consumer"), ("ror-feeder", "esante-sandbox-feeder")]:
    answer = sessions[client].post(tls + "/auth/realms/ror/protocol/openid-connect/token",
                                   data={"grant_type": "client_credentials", "client_id": client_id})
    tokens[client] = answer.json()["access_token"]
plain = requests.Session()
plain.trust_env = False


def form_of(response):
    text = response.text
    kind = response.headers.get("Content-Type", "")
    if "json" in kind:
        try:
            body = response.json()
        except ValueError:
            return "not JSON"
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            return "operation-outcome"
        if isinstance(body, dict) and "error" in body:
            return "oauth" if "error_description" in body or response.url.find("/admin/") < 0 else "admin-json"
        return "other JSON"
    if "soap+xml" in kind and "Fault" in text:
        return "soap-fault"
    if "text/html" in kind and "<html" in text and "esante-sandbox" in text:
        return "console-page"
    return "other (%s)" % kind


before = digest()
cases = [json.loads(line) for line in open("Tests/Corpus/hostile-requests.jsonl")]
problems = []
started = time.time()
for case in cases:
    headers = dict(case["headers"])
    client = case["client"]
    if client in ("ror-consumer", "ror-feeder"):
        headers["Authorization"] = "Bearer " + tokens[client]
        if client == "ror-consumer":
            headers.update(ROR_HEADERS)
    on_admin = client in ("admin", "console")
    base = admin if on_admin else tls
    http = plain if on_admin else sessions[client]
    if on_admin:
        headers.setdefault("Origin", admin)
    body = case["body"].encode("utf-8", "surrogatepass") if case["body"] is not None else None
    try:
        response = http.request(case["method"], base + case["path"], headers=headers, data=body, timeout=30)
    except requests.RequestException as error:
        problems.append("#%d %s %s: no answer (%s)" % (case["id"], case["method"], case["path"][:80], error))
        continue
    soap = case["form"] == "soap-fault"
    status_ok = 400 <= response.status_code < 500 or (soap and response.status_code == 500)
    form = form_of(response)
    # OAuth errors and the admin API's share the {"error": …} shape.
    form_ok = form == case["form"] or ({form, case["form"]} <= {"oauth", "admin-json"})
    if not status_ok or not form_ok:
        problems.append("#%d %s %s: %d %s, expected 4xx %s — %s" % (case["id"], case["method"], case["path"][:80],
                                                                   response.status_code, form, case["form"], response.text[:160]))
elapsed = time.time() - started
health = plain.get(admin + "/admin/health", timeout=10)
after = digest()
print("hostile corpus: %d requests in %.1f s, %d not refused as expected; server %s; data %s" % (
    len(cases), elapsed, len(problems), "up" if health.status_code == 200 else "DOWN (%d)" % health.status_code,
    "unchanged" if before == after else "CHANGED"))
for problem in problems[:60]:
    print("  " + problem)
if problems or health.status_code != 200 or before != after:
    sys.exit(1)
print("hostile check passed")
