"""Drives the esante-sandbox web console in headless Chromium (see scripts/console-browser-check)."""
import base64
import json
import os
import sys
import tempfile
import time

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support.ui import Select, WebDriverWait

ready = json.load(open(sys.argv[1]))
out = sys.argv[2]
admin, tls, ca = ready["admin"], ready["tls"], ready["caCertificateFile"]
DN = "CN=NAVIGATEUR-DEMO-%d,OU=0002 759000001,O=EDITEUR NAVIGATEUR,C=FR" % int(time.time())
step = 0


def say(text):
    global step
    step += 1
    print("%d. %s" % (step, text), flush=True)


def fail(text):
    print("FAILED at step %d: %s" % (step, text), file=sys.stderr)
    driver.save_screenshot(os.path.join(out, "failure.png"))
    sys.exit(1)


def shot(name):
    driver.save_screenshot(os.path.join(out, name + ".png"))


def wait_for(condition, what, timeout=10):
    try:
        return WebDriverWait(driver, timeout).until(lambda d: condition())
    except Exception:
        fail("timed out waiting for " + what)


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800", "--disable-dev-shm-usage"):
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    driver.set_window_size(1280, 800)
    say("dashboard")
    driver.get(admin + "/console")
    if "Tableau de bord" not in driver.page_source:
        fail("no dashboard")
    shot("01-dashboard")

    say("certificate workshop: mint a certificate for " + DN)
    driver.get(admin + "/console/certificates")
    driver.find_element(By.NAME, "subjectDN").send_keys(DN)
    Select(driver.find_element(By.NAME, "keyType")).select_by_value("p256")
    driver.find_element(By.CSS_SELECTOR, "#certificate-form button").click()
    wait_for(lambda: driver.find_elements(By.ID, "certificate-pem"), "the minted certificate")
    links = {a.get_attribute("download"): a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a[download]")}
    pems = {name: base64.b64decode(href.split(",", 1)[1]).decode() for name, href in links.items()}
    shot("02-certificate")

    folder = tempfile.mkdtemp()
    for name in ("cert.pem", "key.pem"):
        open(os.path.join(folder, name), "w").write(pems[name])
    session = requests.Session()
    session.trust_env = False
    session.verify = ca
    session.cert = (os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem"))
    refused = session.get(tls + "/ws-diffusion-fhir/metadata")
    if refused.status_code != 403:
        # reject mode tls answers 403 for a chain-verified but unlisted caller
        fail("expected 403 before onboarding, got %d" % refused.status_code)

    say("onboarding form: an invalid DN is shown inline")
    driver.get(admin + "/console/onboarding")
    Select(driver.find_element(By.NAME, "direction")).select_by_value("consume")
    driver.find_element(By.NAME, "contact").send_keys("navigateur@example.test")
    driver.find_element(By.NAME, "subjectDN").send_keys("CN=broken,,")
    driver.find_element(By.CSS_SELECTOR, "#submit-form button").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "[aria-invalid=true]"), "the inline error")
    shot("03-onboarding-error")

    say("onboarding form: submit the request")
    field = driver.find_element(By.NAME, "subjectDN")
    field.clear()
    field.send_keys(DN)
    driver.find_element(By.CSS_SELECTOR, "#submit-form button").click()
    wait_for(lambda: DN in driver.page_source and "submitted" in driver.page_source, "the submitted request")
    shot("04-submitted")

    say("committee: validate with access profile 1")
    row = driver.find_element(By.XPATH, "//tr[.//code[text()='%s']]" % DN)
    Select(row.find_element(By.NAME, "accessProfile")).select_by_value("1")
    row.find_element(By.XPATH, ".//button[text()='Valider']").click()
    wait_for(lambda: driver.find_elements(By.XPATH, "//tr[.//code[text()='%s']]//button[text()='Tests terminés']" % DN), "validated")

    say("publisher: tests done → whitelisted (delay 0)")
    driver.find_element(By.XPATH, "//tr[.//code[text()='%s']]//button[text()='Tests terminés']" % DN).click()
    wait_for(lambda: driver.find_elements(By.XPATH, "//tr[.//code[text()='%s']]//span[text()='whitelisted']" % DN), "whitelisted")
    shot("05-whitelisted")

    say("live journal: the accepted call appears without reload")
    driver.get(admin + "/console/journal")
    time.sleep(0.5)
    accepted = session.get(tls + "/ws-diffusion-fhir/metadata")
    if accepted.status_code != 200:
        fail("expected 200 once whitelisted, got %d: %s" % (accepted.status_code, accepted.text[:200]))
    # The row of this GET (not the onboarding rows already listed): inserted by the page's polling.
    wait_for(lambda: driver.find_elements(
        By.XPATH, "//tbody[@id='journal-rows']/tr[contains(@class,'new')][.//a[contains(., 'metadata')]][.//span[text()='accepté']][.//code[text()='%s']]" % DN),
        "the journal row", timeout=15)
    shot("06-journal-live")

    say("capacity board")
    driver.get(admin + "/console/capacity")
    shot("07-capacity")

    say("Mon espace santé: pair a patient by clicking, push a weight, see it on the chart")
    files = ready["clientCertificates"]["mes-service"]
    service_cert = files["bundle"].replace("file://", "", 1)
    callback = admin + "/console/mes/callback"
    registered = requests.post(admin + "/admin/mes/services", json={
        "name": "Appli du navigateur", "subjectDN": "CN=APPLI_BALANCE_SANDBOX,OU=0002 449999999,O=EDITEUR SANDBOX MESURES,ST=Loire-Atlantique (44),C=FR",
        "redirectURIs": [callback], "pairingOID": "1.2.250.1.999.77.%d" % int(time.time()), "clientId": "navigateur", "clientSecret": "s3cret"})
    if registered.status_code != 201:
        fail("service registration: %d %s" % (registered.status_code, registered.text[:200]))
    driver.get(admin + "/console/mes")
    if "275126322074974@patient.mssante.fr" not in driver.page_source:
        fail("no MSSanté address on the Mon espace santé page")
    shot("09-mes")
    driver.find_element(By.XPATH, "//tr[.//code[text()='navigateur']]//a[contains(@class,'pair')]").click()
    wait_for(lambda: "Appli du navigateur" in driver.page_source, "the pairing page")
    driver.find_element(By.CSS_SELECTOR, "input[name='ins'][value='110086322083060']").click()
    shot("10-mes-consent")
    driver.find_element(By.ID, "allow").click()
    wait_for(lambda: driver.find_elements(By.ID, "code"), "the code back at the service's redirect URI")
    code = driver.find_element(By.ID, "code").text
    shot("11-mes-callback")
    mtls = requests.Session()
    mtls.trust_env = False
    mtls.cert = service_cert
    mtls.verify = ca
    tokens = mtls.post(tls + "/mes/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": callback,
                                                       "client_id": "navigateur", "client_secret": "s3cret"})
    if tokens.status_code != 200:
        fail("code exchange: %d %s" % (tokens.status_code, tokens.text[:200]))
    access = tokens.json()["access_token"]
    payload = tokens.json()["id_token"].split(".")[1]
    idpe = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["idpe"]
    oid = registered.json()["pairingOID"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "POST", "url": "Observation"}, "resource": {
        "resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"identifier": {"system": "urn:oid:" + oid, "value": idpe}}, "effectiveDateTime": "2026-12-01T08:00:00+01:00",
        "valueQuantity": {"value": 63.7, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}}]}
    pushed = mtls.post(tls + "/mes/fhir", json=bundle, headers={"Authorization": "Bearer " + access, "Content-Type": "application/fhir+json"})
    if pushed.status_code != 200:
        fail("measure push: %d %s" % (pushed.status_code, pushed.text[:300]))
    driver.get(admin + "/console/mes/patients/110086322083060")
    points = driver.find_elements(By.CSS_SELECTOR, "svg#chart-29463-7 circle.point")
    if len(points) != 1 or "63.7" not in driver.page_source:
        fail("the pushed weight is not on the chart (%d points)" % len(points))
    shot("12-mes-chart")
    driver.get(admin + "/console/mes/patients/275126322074974")
    if len(driver.find_elements(By.CSS_SELECTOR, "svg#chart-29463-7 circle.point")) < 10:
        fail("the seeded weights are not plotted")
    shot("13-mes-seeded-chart")

    say("DMP: a CDA pushed by ITI-41 (MTOM) appears in the patient's documents, its header and XML shown")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import dmp_client
    lps = ready["clientCertificates"]["insi-lps"]
    dmp_client.connect(tls, ca, lps["certificate"].replace("file://", "", 1), lps["key"].replace("file://", "", 1))
    document = ('<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>Compte rendu du navigateur</title>'
                '<effectiveTime value="20261207100000"/><recordTarget><patientRole><id root="%s" extension="%s"/></patientRole>'
                '</recordTarget></ClinicalDocument>' % (dmp_client.OID, dmp_client.INS)).encode()
    unique = "1.2.250.1.999.8.%d" % int(time.time())
    answer = dmp_client.soap("/si-dmp-server/v2/services/repository", "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
                             dmp_client.submission(document, unique), [("doc1@client", document)])
    if answer.status_code != 200 or "ResponseStatusType:Success" not in answer.text:
        fail("ITI-41: %d %s" % (answer.status_code, answer.text[-500:]))
    driver.get(admin + "/console/dmp")
    if len(driver.find_elements(By.CSS_SELECTOR, "tbody#dmp-records tr")) < 3:
        fail("the seeded DMPs are not listed")
    shot("14-dmp")
    driver.find_element(By.XPATH, "//tbody[@id='dmp-records']//a[code[text()='%s']]" % dmp_client.INS).click()
    wait_for(lambda: driver.find_elements(By.XPATH, "//tbody[@id='dmp-documents']//code[text()='%s']" % unique), "the pushed document's row")
    shot("15-dmp-documents")
    driver.find_element(By.XPATH, "//tbody[@id='dmp-documents']//a[code[text()='%s']]" % unique).click()
    wait_for(lambda: driver.find_elements(By.ID, "dmp-document"), "the document page")
    if "Compte rendu du navigateur" not in driver.find_element(By.ID, "cda-header").text:
        fail("the CDA title is not among the header fields")
    if "<title>Compte rendu du navigateur</title>" not in driver.find_element(By.ID, "dmp-document").text:
        fail("the document's XML is not shown")
    shot("16-dmp-document")

    say("recette: a DMP run started from the form, the client's calls judged live, the HTML report")
    driver.get(admin + "/console/recette")
    Select(driver.find_element(By.NAME, "pack")).select_by_value("dmp")
    driver.find_element(By.NAME, "client").send_keys("pas un DN")
    driver.find_element(By.CSS_SELECTOR, "#recette-start button").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#recette-start em.error"), "the refusal next to the client field")
    client = driver.find_element(By.NAME, "client")
    client.clear()
    client.send_keys("CN=INSI-AUTO,OU=1690099990,O=CENTRE DE SANTE SANDBOX,ST=Rhône (69),C=FR")
    driver.find_element(By.NAME, "productName").send_keys("Logiciel du navigateur")
    driver.find_element(By.CSS_SELECTOR, "#recette-start button").click()
    wait_for(lambda: "/console/recette/" in driver.current_url, "the run page")
    run_url = driver.current_url
    dmp_client.existence_test()
    dmp_client.push_find_retrieve()
    time.sleep(3.5)  # the run page reloads itself every 3 s
    driver.get(run_url)
    wait_for(lambda: "passed" in driver.find_element(By.TAG_NAME, "main").text, "the run passed")
    if not driver.find_elements(By.CSS_SELECTOR, "svg#recette-summary rect"):
        fail("the run page has no summary plot")
    shot("17-recette-run")
    driver.find_element(By.ID, "recette-report-html").click()
    wait_for(lambda: driver.find_elements(By.ID, "recette-notice"), "the HTML report")
    if "Logiciel du navigateur" not in driver.find_element(By.TAG_NAME, "body").text:
        fail("the report does not name the product")
    if "pas une homologation" not in driver.find_element(By.ID, "recette-notice").text:
        fail("the report does not say it is a rehearsal")
    shot("18-recette-report")

    say("narrow window (420×800): no horizontal page overflow")
    driver.set_window_size(420, 800)
    for page in ("/console", "/console/onboarding", "/console/journal", "/console/mes", "/console/mes/patients/275126322074974",
                 "/console/dmp", "/console/dmp/275126322074974", "/console/recette"):
        driver.get(admin + page)
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 1:
            fail("%s overflows a narrow window by %d px" % (page, overflow))
    shot("08-narrow-journal")
    print("console check passed; screenshots in %s" % out)
finally:
    driver.quit()
