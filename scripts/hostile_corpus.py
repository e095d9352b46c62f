#!/usr/bin/env python3
"""Writes Tests/Corpus/hostile-requests.jsonl: requests a careless or hostile client sends, one JSON object a line —
{"id", "service", "client", "method", "path", "headers", "body", "form"} — where `client` names the demo certificate
(and, for ror-consumer/ror-feeder, a token to add), and `form` the error form the answer must have: operation-outcome,
oauth, soap-fault, admin-json, console-page (an HTML page of the console). Every one must be refused (4xx; a SOAP service may answer its Fault with 500 as the
real one does) in that form, and leave the data as it was. Regenerate after adding cases: python3 scripts/hostile_corpus.py"""
import json, os, urllib.parse

cases = []


def add(service, client, method, path, form, headers=None, body=None):
    cases.append({"id": len(cases) + 1, "service": service, "client": client, "method": method, "path": path,
                  "headers": headers or {}, "body": body, "form": form})


types = ["Location", "HealthcareService", "Organization", "Practitioner", "PractitionerRole"]
base = "/ws-diffusion-fhir/"
# Unknown parameters and modifiers, path-like and script-like names.
for name in ["foo", "nom", "Name", "name:unknownmod", "_unknown", "..%2F..%2Fetc%2Fpasswd", "%3Cscript%3E", "name%00",
             "identifier:above", "_id:contains", "_lastUpdated:exact", "x" * 300, "%C3%A9tat", "name.", ".name",
             "organization.foo", "location.unknown-param", "_has:Foo:bar:baz", "_has:Location", "_count:not",
             "_sort:desc", "_include:maybe", "partof:Practitioner.name", "name::exact", "%E2%80%AEeman"]:
    for t in types:
        add("ror-fhir", "ror-consumer", "GET", base + t + "?" + name + "=x", "operation-outcome")
for value in ["abc", "-1", "1001", "1e3", "%00", "999999999999999999999", "0x10", "1.5"]:
    for t in types:
        add("ror-fhir", "ror-consumer", "GET", base + t + "?_count=" + value, "operation-outcome")
for value in ["unknown", "-", "--name", "_score", "%27%3B", "name,bogus"]:
    for t in types:
        add("ror-fhir", "ror-consumer", "GET", base + t + "?_sort=" + value, "operation-outcome")
for (name, value) in [("_include", "Foo:bar"), ("_include", "Location:nope"), ("_include", "garbage"),
                      ("_revinclude", "HealthcareService:nope"), ("_revinclude", "::"), ("_include", "Location:nope:Organization"),
                      ("_summary", "true"), ("_summary", "data"), ("_total", "maybe"), ("_total", "")]:
    for t in types:
        add("ror-fhir", "ror-consumer", "GET", base + t + "?" + name + "=" + value, "operation-outcome")
for value in ["abc", "2023-13-45", "gtx", "ge", "2023-02-30T25:00:00Z", "9999999999999999", "%27%3B%20DROP%20TABLE%20x%3B--",
              "1e9999", "2023-01-01T10:00:00%2B99:99", "lt", "xx2023-01-01"]:
    for t in types:
        add("ror-fhir", "ror-consumer", "GET", base + t + "?_lastUpdated=" + value, "operation-outcome")
for expression in ["name eq", "(name eq \"x\"", "name eq \"x\")", "name zz \"x\"", "not(", "name eq \"unterminated",
                   "foo eq \"x\"", "name eq \"x\" and", "and name eq \"x\"", "name eq \"x\" xor name eq \"y\"", "((((((",
                   "_lastUpdated ge notadate", "organization.foo eq \"x\"", "name eq \"x\" \"y\"", "\"", "eq eq eq",
                   "name eq \"x\" or or name eq \"y\"", "name in (\"a\",\"b\")", "nb-capacity gt abc", "()"]:
    add("ror-fhir", "ror-consumer", "GET", base + "Location?_filter=" + urllib.parse.quote(expression, safe=""),
        "operation-outcome")
add("ror-fhir", "ror-consumer", "POST", base + "HealthcareService/_search", "operation-outcome",
    {"Content-Type": "application/x-www-form-urlencoded"}, "&".join("name=x%d" % i for i in range(2000)))
add("ror-fhir", "ror-consumer", "POST", base + "HealthcareService/_search", "operation-outcome",
    {"Content-Type": "application/x-www-form-urlencoded"}, "_filter=" + "%20or%20".join("name%%20eq%%20%%22x%d%%22" % i for i in range(3000)))
add("ror-fhir", "ror-consumer", "POST", base + "HealthcareService/_search", "operation-outcome",
    {"Content-Type": "application/x-www-form-urlencoded"}, "name=" + ",".join("x%d" % i for i in range(500)))
for path in ["Patient", "Foo", "Location/..%2F..%2Fetc%2Fpasswd", "Location/%00", "Location/" + "a" * 200,
             "Location/loc-00001-1/_history", "Location/loc-00001-1/_history/1", "Location/does-not-exist",
             "OperationDefinition/nope", "%2E%2E/%2E%2E/etc/passwd"]:
    add("ror-fhir", "ror-consumer", "GET", base + path, "operation-outcome")
for t in types:
    add("ror-fhir", "ror-consumer", "GET", base + t + "?_format=xml", "operation-outcome")
    add("ror-fhir", "ror-consumer", "DELETE", base + t + "/x", "operation-outcome")

# Capacity feed: malformed PATCH bodies, media types, identifiers.
feed = "/ws-synchro-dispo-lits-fhir/Location?identifier=1759000001/LIT000011"
json_type = {"Content-Type": "application/fhir+json"}
for body in ["", "{", "[]", "null", "\"x\"", "{\"resourceType\":\"Patient\"}", "{\"resourceType\":\"Parameters\"}",
             "{\"resourceType\":\"Parameters\",\"parameter\":[]}", "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"operation\"}]}",
             "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"move\"}]}]}",
             "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},{\"name\":\"path\",\"valueString\":\"Location.name\"}]}]}",
             "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},{\"name\":\"path\",\"valueString\":\"((((\"}]}]}",
             "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},{\"name\":\"path\",\"valueString\":\"Location.extension.where(url='x').where(\"}]}]}",
             "{\"a\":1,\"a\":2}", "[" * 2000 + "]" * 2000, "{\"resourceType\":\"Parameters\",\"parameter\":" + "[" * 600 + "]" * 600 + "}",
             "\u00ff\u00fe{}", "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},{\"name\":\"path\",\"valueString\":\"Location.extension\"},{\"name\":\"value\",\"valueInteger\":1e999}]}]}"]:
    add("ror-fhir", "ror-feeder", "PATCH", feed, "operation-outcome", json_type, body)
for content_type in ["text/plain", "application/xml", "application/json-patch+json", "multipart/form-data; boundary=x", ""]:
    add("ror-fhir", "ror-feeder", "PATCH", feed, "operation-outcome", {"Content-Type": content_type}, "{}")
for query in ["", "?identifier=", "?identifier=unknown/none", "?identifier=%00", "?name=x", "?identifier=1759000001/LIT000011&identifier=x"]:
    add("ror-fhir", "ror-feeder", "PATCH", "/ws-synchro-dispo-lits-fhir/Location" + query, "operation-outcome", json_type,
        "{\"resourceType\":\"Parameters\",\"parameter\":[]}")

# Token endpoint.
token = "/auth/realms/ror/protocol/openid-connect/token"
form = {"Content-Type": "application/x-www-form-urlencoded"}
for body in ["", "grant_type=password&client_id=esante-sandbox-consumer", "grant_type=client_credentials",
             "grant_type=client_credentials&client_id=nope", "grant_type=client_credentials&client_id=esante-sandbox-feeder",
             "grant_type=client_credentials&client_id=esante-sandbox-consumer&client_secret=x", "client_id=esante-sandbox-consumer",
             "grant_type=authorization_code&code=x&client_id=esante-sandbox-consumer", "grant_type=%00", "=&=&=&"]:
    add("ror-fhir", "ror-consumer-raw", "POST", token, "oauth", form, body)
add("ror-fhir", "ror-consumer-raw", "POST", token, "oauth", {"Content-Type": "application/json"}, "{\"grant_type\":\"client_credentials\"}")
for body in ["", "token=", "token=abc", "token=abc&client_id=nope"]:
    add("ror-fhir", "ror-consumer-raw", "POST", "/auth/realms/ror/protocol/openid-connect/token/introspect", "oauth", form, body)

# SOAP services.
soap = {"Content-Type": "application/soap+xml; charset=utf-8"}
envelope = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>%s</s:Body></s:Envelope>"
hostile_xml = ["", "<", "not xml", "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>",
               "<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><l>&b;</l>",
               "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body/></soap:Envelope>",
               envelope % "", envelope % "<unknown/>", envelope % ("<a>" * 300 + "</a>" * 300),
               envelope % "<x>\u0000</x>", "\ufeff\ufeff<x/>"]
for service, client, path in [("ror-csd", "csd-consumer", "/ROR/CSD"), ("insi", "insi-lps", "/lps"),
                              ("dmp", "insi-lps", "/si-dmp-server/v2/services/patients"),
                              ("dmp", "insi-lps", "/si-dmp-server/v2/services/repository"),
                              ("dmp", "insi-lps", "/si-dmp-server/v2/services/registry")]:
    for body in hostile_xml:
        add(service, client, "POST", path, "soap-fault", soap, body)
    add(service, client, "POST", path, "soap-fault", {"Content-Type": "text/xml"}, envelope % "")
    add(service, client, "POST", path, "soap-fault", {"Content-Type": "application/json"}, "{}")
    add(service, client, "POST", path, "soap-fault", {"Content-Type": "multipart/related; boundary=\"b\"; type=\"application/xop+xml\""},
        "--b\r\nContent-Type: application/xop+xml\r\n\r\n" + envelope % "" + "\r\n--x--")

# Mon espace santé.
for method, path, headers, body in [
        ("GET", "/mes/fhir/Observation", {}, None), ("GET", "/mes/fhir/Observation?subject.identifier=x", {"Authorization": "Bearer x"}, None),
        ("POST", "/mes/fhir", {"Authorization": "Bearer abc.def.ghi", "Content-Type": "application/fhir+json"}, "{}"),
        ("POST", "/mes/fhir", {"Content-Type": "application/fhir+json"}, "{"), ("GET", "/mes/fhir/Device/x", {}, None),
        ("GET", "/mes/fhir/Patient", {"Authorization": "Bearer x"}, None), ("DELETE", "/mes/fhir/Observation/x", {}, None)]:
    add("mes", "mes-service", method, path, "operation-outcome", headers, body)
for body in ["", "grant_type=authorization_code", "grant_type=authorization_code&code=x&client_id=esante-sandbox-balance",
             "grant_type=refresh_token&refresh_token=x&client_id=esante-sandbox-balance&client_secret=nope", "grant_type=nope"]:
    add("mes", "mes-service", "POST", "/mes/oauth/token", "oauth", form, body)

# Admin API.
admin_json = {"Content-Type": "application/json"}
for path, body in [("/admin/whitelist", "not json"), ("/admin/whitelist", "{}"), ("/admin/whitelist", "{\"service\":\"nope\",\"subjectDN\":\"CN=x\"}"),
                   ("/admin/whitelist", "{\"service\":\"ror-fhir\",\"subjectDN\":\"CN=x,BAD\"}"), ("/admin/whitelist", "[" * 1000),
                   ("/admin/faults", "{\"service\":\"nope\"}"), ("/admin/faults", "{\"errorRate\":2,\"service\":\"ror-fhir\"}"),
                   ("/admin/faults", "{}"), ("/admin/recette/runs", "{\"pack\":\"nope\",\"client\":\"CN=x\"}"),
                   ("/admin/recette/runs", "{\"pack\":\"dmp\",\"client\":\"\"}"), ("/admin/insi/identities", "{}"),
                   ("/admin/insi/identities", "{\"matricule\":\"1\",\"cle\":\"00\"}"), ("/admin/onboarding", "{}"),
                   ("/admin/onboarding", "{\"kind\":\"nope\"}"), ("/admin/clock", "{\"speed\":0}"), ("/admin/clock", "{\"speed\":1e300}"),
                   ("/admin/mes/services", "{}"), ("/admin/mes/pairings", "{\"clientId\":\"nope\",\"ins\":\"x\"}"),
                   ("/admin/certificates", "{\"subjectDN\":\"FOO=x\"}"), ("/admin/ror/token-keys/rotate?environment=lune", "")]:
    add("admin", "admin", "POST", path, "admin-json", admin_json, body)
for path in ["/admin/journal?limit=0", "/admin/journal?limit=abc", "/admin/journal?decision=maybe", "/admin/journal?after=x",
             "/admin/recette/runs/abc", "/admin/recette/runs/999999", "/admin/recette/runs/1/report?format=pdf",
             "/admin/onboarding/999999", "/admin/onboarding?state=nope"]:
    add("admin", "admin", "GET", path, "admin-json")
for path in ["/admin/whitelist/abc", "/admin/whitelist/999999", "/admin/faults/999999", "/admin/insi/identities/nope"]:
    add("admin", "admin", "DELETE", path, "admin-json")

# The console's forms (a browser's POSTs on the admin listener): bad fields, unknown ids and actions, odd bodies.
form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
good = "kind=saas&direction=consume&service=ror-fhir&contact=a%40b.test"
for body in ["", "kind=nope", good.replace("saas", "nope"), good.replace("consume", "both"), good.replace("ror-fhir", "nope"),
             good + "&subjectDN=FOO%3Dbar", good + "&subjectDN=CN%3Dx%2CBAD", good.replace("a%40b.test", ""),
             good + "&subjectDN=" + "A" * 5000, good + "&environment=lune&subjectDN=CN%3Dx%2CC%3DFR",
             good + "&certificatePEM=-----BEGIN%20CERTIFICATE-----%0Anope%0A-----END%20CERTIFICATE-----",
             good + "&establishmentCertificates=nope", good + "&establishmentCertificates=FINESS%20750000001%0Anope",
             good + "&establishments=abc%2C%2C%2C", "kind=%ZZ&contact=%", "&" * 5000, "kind=x&" * 3000, "%00=%00",
             "kind=%C3%28", '{"kind": "saas"}', "<xml/>"]:
    add("console", "console", "POST", "/console/onboarding", "console-page", form_headers, body)
for path in ["/console/onboarding/999999/approve", "/console/onboarding/abc/approve", "/console/onboarding/1/explode",
             "/console/onboarding/-1/reject", "/console/onboarding/99999999999999999999/approve",
             "/console/whitelist/abc/delete", "/console/whitelist/999999/delete", "/console/whitelist/-5/delete",
             "/console/faults/999999/delete", "/console/faults/abc/delete", "/console/recette/999999/close",
             "/console/recette/abc/close", "/console/mes/pairings/999999/consent", "/console/mes/pairings/abc/consent",
             "/console/nope", "/console/onboarding/1/approve/extra"]:
    add("console", "console", "POST", path, "console-page", form_headers, "actor=x&reason=y")
for body in ["speed=0", "speed=-1", "speed=abc", "speed=1e300", "speed=NaN", "speed=", "offset=abc", "at=yesterday"]:
    add("console", "console", "POST", "/console/clock", "console-page", form_headers, body)
for body in ["subjectDN=FOO%3Dx", "subjectDN=", "negative=nope&subjectDN=CN%3Dx%2CC%3DFR", "subjectDN=CN%3Dx&environment=lune",
             "subjectDN=CN%3Dx&keyType=dsa", "subjectDN=CN%3Dx&negative=%00", "subjectDN=" + "CN%3Dx%2C" * 2000]:
    add("console", "console", "POST", "/console/certificates", "console-page", form_headers, body)
for body in ["", "service=nope", "service=ror-fhir&errorRate=2", "service=ror-fhir&errorRate=abc", "service=ror-fhir&kind=nope",
             "service=ror-fhir&delayMs=-5", "service=ror-fhir&retryAfter=abc", "path=%2F..%2F..&service=nope"]:
    add("console", "console", "POST", "/console/faults", "console-page", form_headers, body)
for body in ["", "pack=nope&client=CN%3Dx", "pack=dmp&client=", "pack=dmp&client=FOO%3Dbar", "pack=dmp&client=CN%3Dx&minutes=abc",
             "pack=dmp&client=CN%3Dx&minutes=-1", "pack=dmp&client=CN%3Dx&minutes=1e9", "pack=%2E%2E%2Fetc&client=CN%3Dx"]:
    add("console", "console", "POST", "/console/recette", "console-page", form_headers, body)
add("console", "console", "GET", "/console/journal/rows?after=abc", "admin-json")  # the journal page's JSON poll
for path in ["/console/journal/abc", "/console/journal/999999999",
             "/console/recette/abc", "/console/recette/999999", "/console/mes/patients/nope", "/console/dmp/nope",
             "/console/dmp/documents/nope", "/console/dmp/documents/nope/raw", "/console/data/Location/nope",
             "/console/data/Nope/x", "/console/data/Location/..%2F..%2Fetc", "/console/nope"]:
    add("console", "console", "GET", path, "console-page")

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "Corpus", "hostile-requests.jsonl")
with open(out, "w") as file:
    for case in cases:
        file.write(json.dumps(case, ensure_ascii=False) + "\n")
print("%d requests written to %s" % (len(cases), os.path.normpath(out)))
