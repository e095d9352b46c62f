#!/usr/bin/env python3
"""scripts/disk-full-check: the sandbox on a small tmpfs, the disk filled while it runs. Every write kind — a ROR
capacity PATCH (FHIR), a DMP submission (XDS ITI-41) and DMP closing (HL7v3 SOAP), a Mon espace santé measure (FHIR),
whitelist and onboarding entries (admin API) and an onboarding request from the console's form — must be refused in
its service's form (507 OperationOutcome `no-store`, XDS `XDSRepositoryOutOfResources`, 503 SOAP Receiver fault,
507 JSON, 507 page), with a Retry-After; reads go on; SQLite's integrity check stays ok; once the filler is removed
every kind is accepted again and every write acknowledged before, during and after is there.
Usage: disk_full.py BINARY MOUNT"""
import json, os, signal, sqlite3, subprocess, sys, time, uuid

import requests

sys.path.insert(0, os.path.dirname(__file__))
import bench_feed  # noqa: E402
import dmp_client  # noqa: E402

binary, mount = sys.argv[1], sys.argv[2]
folder, filler = mount + "/data", mount + "/filler"
failures = []


def check(condition, text):
    if not condition:
        failures.append(text)
        print("  FAIL " + text)


ready = mount + "/ready.json"
server = subprocess.Popen([binary, "serve", "--data-dir", folder, "--port", "0", "--admin-port", "0", "--key-type", "p256",
                           "--ready-file", ready, "--key-pool-depth", "0"], stdout=subprocess.DEVNULL, stderr=open(mount + "/../disk-full-server.log", "w"))
for _ in range(300):
    if os.path.exists(ready) and os.path.getsize(ready) > 0:
        break
    time.sleep(0.05)
info = json.load(open(ready))
tls, admin, pki = info["tls"], info["admin"], folder + "/pki"
json_headers = {"Content-Type": "application/json", "Origin": admin}


def session(client):
    s = requests.Session()
    s.trust_env = False
    s.verify, s.cert = pki + "/ca-bundle.pem", (pki + "/clients/%s/cert.pem" % client, pki + "/clients/%s/key.pem" % client)
    return s


feeder = session("ror-feeder")
token = feeder.post(tls + "/auth/realms/ror/protocol/openid-connect/token",
                    data={"grant_type": "client_credentials", "client_id": "esante-sandbox-feeder"}).json()["access_token"]
place = list(bench_feed.NATURES)[0]
dmp_client.connect(tls, pki + "/ca-bundle.pem", pki + "/clients/insi-lps/cert.pem", pki + "/clients/insi-lps/key.pem")
mes = session("mes-service")
patient = requests.get(admin + "/admin/mes/patients").json()[0]
pairing = requests.post(admin + "/admin/mes/pairings", headers=json_headers,
                        data=json.dumps({"clientId": "esante-sandbox-balance", "ins": patient["ins"]})).json()
mes_token, idpe = pairing["tokens"]["access_token"], pairing["pairing"]["idPe"]
acknowledged = {"patch": [], "whitelist": [], "onboarding": [], "dmp": [], "mes": [], "hl7v3": []}
counter = [0]
CLOSED_INS = "236066322083656"  # a seed DMP, closed at start
dmp_state = ["closed"]


def write(kind):
    """One write of a kind: (acknowledged, response)."""
    counter[0] += 1
    n = counter[0]
    if kind == "patch":
        r = feeder.patch(tls + "/ws-synchro-dispo-lits-fhir/Location?identifier=" + place, data=bench_feed.body(n % 50, bench_feed.NATURES[place]),
                         headers={"Content-Type": "application/fhir+json", "Authorization": "Bearer " + token})
        if r.status_code == 200:
            acknowledged["patch"].append([r.json()["id"], int(r.json()["meta"]["versionId"]), __import__("hashlib").sha256(r.content).hexdigest()])
        return r.status_code == 200, r
    if kind == "whitelist":
        dn = "CN=DISQUE_PLEIN_%d,O=EDITEUR SANDBOX,C=FR" % n
        r = requests.post(admin + "/admin/whitelist", headers=json_headers, data=json.dumps({"service": "insi", "subjectDN": dn, "label": "disk full"}))
        if r.status_code == 201:
            acknowledged["whitelist"].append(dn)
        return r.status_code == 201, r
    if kind == "onboarding":
        dn = "CN=ONBOARDING_PLEIN_%d,O=EDITEUR SANDBOX,C=FR" % n
        r = requests.post(admin + "/admin/onboarding", headers=json_headers, data=json.dumps({
            "kind": "saas", "direction": "consume", "service": "ror-fhir", "contact": "disk@editeur.test", "subjectDN": dn}))
        if r.status_code == 201:
            acknowledged["onboarding"].append(dn)
        return r.status_code == 201, r
    if kind == "console":
        dn = "CN=CONSOLE_PLEIN_%d,O=EDITEUR SANDBOX,C=FR" % n
        r = requests.post(admin + "/console/onboarding", allow_redirects=False, headers={"Origin": admin},
                          data={"kind": "saas", "direction": "consume", "service": "ror-fhir", "contact": "console@editeur.test", "subjectDN": dn})
        if r.status_code == 303:
            acknowledged["onboarding"].append(dn)
        return r.status_code == 303, r
    if kind == "dmp":
        document = ("<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>Disque plein %d</title></ClinicalDocument>" % n).encode() + os.urandom(2048)
        unique = "1.2.250.1.999.8.%d" % uuid.uuid4().int
        r = dmp_client.soap("/si-dmp-server/v2/services/repository", "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
                            dmp_client.submission(document, unique), [("doc1@client", document)])
        ok = r.status_code == 200 and 'ResponseStatusType:Success"' in r.text
        if ok:
            acknowledged["dmp"].append(unique)
        return ok, r
    if kind == "mes":
        body = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "POST", "url": "Observation"}, "resource": {
            "resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"identifier": {"system": "urn:oid:1.2.250.1.999.42.1", "value": idpe}},
            "effectiveDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600 - n)),
            "valueQuantity": {"value": 60 + n % 40, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}}]})
        r = mes.post(tls + "/mes/fhir", data=body, headers={"Authorization": "Bearer " + mes_token, "Content-Type": "application/fhir+json"})
        if r.status_code == 200:
            acknowledged["mes"].append(r.json()["entry"][0]["response"]["location"])
        return r.status_code == 200, r
    if kind == "hl7v3":  # TD1.2, closing and reopening the third seed DMP in turn
        wanted = "active" if dmp_state[0] == "closed" else "completed"
        body = ('<PRPA_IN201314UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="1.3.6.1.4.1.99999.1" extension="disk-%d"/>'
                '<creationTime value="20261207100000"/><processingCode code="D"/><processingModeCode code="T"/><acceptAckCode code="AL"/>'
                '<receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE"><id root="1.2.250.1.213.4.1.1.1"/></device></receiver>'
                '<sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE"><id root="1.3.6.1.4.1.99999"/></device></sender>'
                '<controlActProcess classCode="CACT" moodCode="EVN"><reasonCode code="FERMETURE" displayName="Demande du patient"/>'
                '<subject typeCode="SUBJ"><registrationEvent classCode="REG" moodCode="EVN"><subject1 typeCode="SBJ"><patient classCode="PAT">'
                '<id root="%s" extension="%s"/><statusCode code="%s"/></patient></subject1></registrationEvent></subject>'
                '</controlActProcess></PRPA_IN201314UV02>') % (n, dmp_client.OID, CLOSED_INS, wanted)
        r = dmp_client.soap("/si-dmp-server/v2/services/patients", "urn:hl7-org:v3:PRPA_IN201314UV02", body,
                            patient="%s^^^&%s&ISO" % (CLOSED_INS, dmp_client.OID))
        ok = r.status_code == 200 and "PRPA_IN201315UV02" in r.text
        if ok:
            dmp_state[0] = "open" if wanted == "active" else "closed"
            acknowledged["hl7v3"].append(dmp_state[0])
        return ok, r
    raise ValueError(kind)


def refused_in_form(kind, r):
    """Whether a refusal is the full-disk answer in the service's own form."""
    retry = r.headers.get("Retry-After") == "30"
    if kind in ("patch", "mes"):
        return r.status_code == 507 and retry and r.json().get("issue", [{}])[0].get("code") == "no-store"
    if kind in ("whitelist", "onboarding"):
        return r.status_code == 507 and retry and "disk is full" in r.json().get("error", "")
    if kind == "console":
        return r.status_code == 507 and retry and "text/html" in r.headers.get("Content-Type", "") and "disk is full" in r.text
    if kind == "hl7v3":
        return r.status_code == 503 and retry and "sandbox:InsufficientStorage" in r.text and "env:Receiver" in r.text
    if kind == "dmp":
        return r.status_code == 200 and 'errorCode="XDSRepositoryOutOfResources"' in r.text and "ResponseStatusType:Failure" in r.text
    return False


KINDS = ["patch", "whitelist", "onboarding", "console", "dmp", "hl7v3", "mes"]
print("before: every kind accepted")
for kind in KINDS:
    ok, r = write(kind)
    check(ok, "%s accepted before the disk is full: %d %s" % (kind, r.status_code, r.text[:200]))

print("the disk filled (%s)" % filler)
descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
for size in (1 << 20, 4096, 512):  # to the last free block
    try:
        while True:
            os.write(descriptor, b"\0" * size)
    except OSError:
        pass
os.close(descriptor)
for kind in KINDS:
    answers = {}
    refusal = None
    for attempt in range(400):  # a write may still fit in pages SQLite already holds: until the first refusal
        ok, r = write(kind)
        answers[r.status_code] = answers.get(r.status_code, 0) + 1
        if not ok:
            refusal = r
            check(refused_in_form(kind, r), "%s refused in its form when the disk is full: %d %s %s" % (
                kind, r.status_code, dict(r.headers), r.text[:300]))
            break
    check(refusal is not None, "%s: 400 writes accepted on a full disk" % kind)
    print("  %-10s answers while full: %s" % (kind, answers))
check(session("ror-consumer").get(tls + "/ws-diffusion-fhir/metadata").status_code == 200, "reads answer while the disk is full")
check(requests.get(admin + "/admin/health").status_code == 200, "health answers while the disk is full")
check(requests.get(admin + "/console").status_code == 200, "the console answers while the disk is full")
database = sqlite3.connect("file:%s/sandbox.sqlite?mode=ro" % folder, uri=True)
integrity = database.execute("PRAGMA integrity_check").fetchone()[0]
database.close()
check(integrity == "ok", "integrity while full: %s" % integrity)

os.remove(filler)
print("space returned")
time.sleep(0.3)
for kind in KINDS:
    ok, r = write(kind)
    check(ok, "%s accepted once space returned: %d %s" % (kind, r.status_code, r.text[:200]))

missing = bench_feed.missing_versions(folder + "/sandbox.sqlite", acknowledged["patch"])
check(not missing, "acknowledged PATCHes kept: %s" % missing[:3])
entries = {e.get("subjectDN") for e in requests.get(admin + "/admin/whitelist").json()}
check(all(dn in entries for dn in acknowledged["whitelist"]), "acknowledged whitelist entries kept")
requests_kept = {r.get("subjectDN") for r in requests.get(admin + "/admin/onboarding").json()}
check(all(dn in requests_kept for dn in acknowledged["onboarding"]), "acknowledged onboarding requests kept")
found = dmp_client.soap("/si-dmp-server/v2/services/registry", "urn:ihe:iti:2007:RegistryStoredQuery", dmp_client.find_documents()).text
check(all(unique in found for unique in acknowledged["dmp"]), "acknowledged DMP documents found")
existence = dmp_client.soap("/si-dmp-server/v2/services/patients", "urn:hl7-org:v3:PRPA_IN201307UV02", (
    '<PRPA_IN201307UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="1.2.3" extension="disk"/><controlActProcess classCode="CACT" moodCode="EVN">'
    '<reasonCode code="TEST_EXST" codeSystem="1.2.250.1.213.1.1.4.11"/><queryByParameter><queryId root="1.2.3" extension="q"/><parameterList>'
    '<patientIdentifier><value root="%s" extension="%s"/></patientIdentifier></parameterList></queryByParameter></controlActProcess></PRPA_IN201307UV02>')
    % (dmp_client.OID, CLOSED_INS), patient="%s^^^&%s&ISO" % (CLOSED_INS, dmp_client.OID)).text
check(('statusCode code="%s"' % ("active" if dmp_state[0] == "open" else "completed")) in existence,
      "the DMP's last acknowledged status (%s) kept: %s" % (dmp_state[0], existence[-400:]))
for location in acknowledged["mes"]:
    check(mes.get(tls + "/mes/fhir/" + location.split("/_history")[0], headers={"Authorization": "Bearer " + mes_token}).status_code == 200,
          "acknowledged measure %s readable" % location)
server.send_signal(signal.SIGTERM)
server.wait(timeout=20)
database = sqlite3.connect(folder + "/sandbox.sqlite")
integrity = database.execute("PRAGMA integrity_check").fetchone()[0]
database.close()
check(integrity == "ok", "integrity after the server stopped: %s" % integrity)
log = open(mount + "/../disk-full-server.log").read()
check("journal: the disk is full" in log and "journal: space is back" in log, "the journal said the disk filled and emptied")
total = sum(len(v) for v in acknowledged.values())
if failures:
    sys.exit("disk-full check FAILED (%d): %s" % (len(failures), failures[:5]))
print("disk-full check passed: %d writes acknowledged (%s), each kind refused in its form while full, reads answered, "
      "integrity ok, every kind accepted again and every acknowledged write kept" % (
          total, ", ".join("%s %d" % (k, len(v)) for k, v in acknowledged.items())))
