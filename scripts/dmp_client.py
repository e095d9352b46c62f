#!/usr/bin/env python3
"""A DMP client written apart from the sandbox (plain `requests` and the standard library's MIME and XML tools):
TD0.2 existence test, then ITI-41 Provide and Register over MTOM/XOP with a CDA document, ITI-18 FindDocuments, and
ITI-43 Retrieve over MTOM, checking the document comes back byte for byte. Usage: dmp_client.py TLS_URL CA CERT KEY"""
import base64, email.parser, email.policy, hashlib, sys, uuid, xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import requests

INS, OID, STRUCTURE = "275126322074974", "1.2.250.1.213.1.4.10", "1690099990"
PATIENT = "%s^^^&%s&ISO" % (INS, OID)
tls = None
CERTIFICATE = None
NS = {"soap": "http://www.w3.org/2003/05/soap-envelope", "rs": "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0",
      "rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0", "xdsb": "urn:ihe:iti:xds-b:2007", "hl7": "urn:hl7-org:v3"}
session = requests.Session()
session.trust_env = False


def connect(url, ca, cert, key):
    """A new session (a process forked after calls must not share its parent's pooled connections)."""
    global tls, session, CERTIFICATE
    tls, CERTIFICATE = url, cert
    session = requests.Session()
    session.trust_env = False
    session.verify, session.cert = ca, (cert, key)


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def vihf(patient=None):
    patient = patient or PATIENT
    attributes = {"VIHF_Version": "3.0", "Secteur_Activite": "SA07^1.2.250.1.71.4.2.4", "Ressource_URN": "urn:dmp",
                  "urn:oasis:names:tc:xspa:1.0:subject:subject-id": "DOCTEUR CLIENT", "Identifiant_Structure": STRUCTURE,
                  "LPS_ID": "PY-CLIENT", "LPS_Nom": "dmp_client.py", "LPS_Version": "1", "LPS_ID_HOMOLOGATION_DMP": "PY-1",
                  "urn:oasis:names:tc:xacml:2.0:resource:resource-id": patient + "^NH", "Authentification_Mode": "INDIRECTE"}
    values = "".join('<saml2:Attribute Name="%s"><saml2:AttributeValue>%s</saml2:AttributeValue></saml2:Attribute>' % (n, esc(v))
                     for n, v in attributes.items())
    expiry = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ('<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
            '<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_%s" Version="2.0" IssueInstant="2026-12-07T10:00:00Z">'
            '<saml2:Issuer>CN=INSI-AUTO</saml2:Issuer><saml2:Conditions NotOnOrAfter="%s"/><saml2:AttributeStatement>%s'
            '<saml2:Attribute Name="urn:oasis:names:tc:xacml:2.0:subject:role"><saml2:AttributeValue>'
            '<Role xmlns="urn:hl7-org:v3" code="10" codeSystem="1.2.250.1.71.1.2.7"/></saml2:AttributeValue></saml2:Attribute>'
            '<saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"><saml2:AttributeValue>'
            '<PurposeOfUse xmlns="urn:hl7-org:v3" code="normal" codeSystem="1.2.250.1.213.1.1.4.248"/></saml2:AttributeValue></saml2:Attribute>'
            '</saml2:AttributeStatement></saml2:Assertion></wsse:Security>') % (uuid.uuid4(), expiry, values)


def envelope(action, body, patient=None):
    return ('<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">'
            '<soap:Header><wsa:Action soap:mustUnderstand="true">%s</wsa:Action><wsa:MessageID>urn:uuid:%s</wsa:MessageID>%s</soap:Header>'
            '<soap:Body>%s</soap:Body></soap:Envelope>') % (action, uuid.uuid4(), vihf(patient), body)


def mtom(envelope_text, attachments):
    """A multipart/related MTOM message: the envelope, then each (content-id, bytes) as a binary part. Written by hand:
    the email package's generator normalises line endings, which would change binary content."""
    boundary = "py-" + uuid.uuid4().hex
    chunks = [b"--%s\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\n"
              b"Content-Transfer-Encoding: binary\r\nContent-ID: <root@client>\r\n\r\n" % boundary.encode(), envelope_text.encode(), b"\r\n"]
    for cid, data in attachments:
        chunks += [b"--%s\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <%s>\r\n\r\n"
                   % (boundary.encode(), cid.encode()), data, b"\r\n"]
    chunks.append(b"--%s--\r\n" % boundary.encode())
    content_type = ('multipart/related; type="application/xop+xml"; boundary="%s"; start="<root@client>"; '
                    'start-info="application/soap+xml"') % boundary
    return b"".join(chunks), content_type


def soap(path, action, body, mtom_attachments=None, patient=None):
    text = envelope(action, body, patient)
    if mtom_attachments is None:
        response = session.post(tls + path, data=text.encode(), headers={"Content-Type": 'application/soap+xml; charset=utf-8; action="%s"' % action})
    else:
        payload, content_type = mtom(text, mtom_attachments)
        response = session.post(tls + path, data=payload, headers={"Content-Type": content_type})
    return response


def fail(text):
    print("DMP client check FAILED: " + text, file=sys.stderr)
    sys.exit(1)


def classification(entry, scheme, code):
    return ('<rim:Classification classificationScheme="%s" classifiedObject="%s" nodeRepresentation="%s" id="urn:uuid:%s">'
            '<rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1.2.250.1.213.1.1.4.1</rim:Value></rim:ValueList></rim:Slot></rim:Classification>') % (scheme, entry, code, uuid.uuid4())


def entry(id, document, unique, patient, class_code, type_code, format_code):
    """A document entry (ExtrinsicObject) with its hash, size, codes, patient and uniqueId."""
    codes = "".join(classification(id, scheme, code) for scheme, code in (
        ("urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", class_code), ("urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", type_code),
        ("urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", format_code)))
    return ('<rim:ExtrinsicObject id="%s" mimeType="text/xml" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">'
            '<rim:Slot name="hash"><rim:ValueList><rim:Value>%s</rim:Value></rim:ValueList></rim:Slot>'
            '<rim:Slot name="size"><rim:ValueList><rim:Value>%d</rim:Value></rim:ValueList></rim:Slot>%s'
            '<rim:ExternalIdentifier identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="%s" id="%s-p" registryObject="%s"/>'
            '<rim:ExternalIdentifier identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="%s" id="%s-u" registryObject="%s"/>'
            '</rim:ExtrinsicObject><rim:Association associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember" '
            'sourceObject="Set1" targetObject="%s" id="%s-a"/>') % (
        id, hashlib.sha1(document).hexdigest(), len(document), codes, esc(patient), id, id, unique, id, id, id, id)


def signature(document, unique):
    """The submission set's XAdES signature as IHE DSG shapes it (a detached ds:Signature whose Manifest lists the
    document by uniqueId and SHA-256). The sandbox checks its structure and digests, not the SignatureValue, so this
    client leaves the value a placeholder and puts its TLS certificate in KeyInfo."""
    certificate = "".join(line for line in open(CERTIFICATE).read().splitlines() if "-----" not in line)
    digest = base64.b64encode(hashlib.sha256(document).digest()).decode()
    return ('<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="sig"><ds:SignedInfo>'
            '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
            '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
            '<ds:Reference URI="#manifest" Type="http://www.w3.org/2000/09/xmldsig#Manifest"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
            '<ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue>'
            '<ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo>'
            '<ds:Object><xades:QualifyingProperties xmlns:xades="http://uri.etsi.org/01903/v1.3.2#" Target="#sig"><xades:SignedProperties>'
            '<xades:SignedSignatureProperties><xades:SigningTime>%s</xades:SigningTime><xades:SigningCertificate/></xades:SignedSignatureProperties>'
            '</xades:SignedProperties></xades:QualifyingProperties></ds:Object><ds:Object><ds:Manifest Id="manifest">'
            '<ds:Reference URI="urn:oid:%s"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>%s</ds:DigestValue>'
            '</ds:Reference></ds:Manifest></ds:Object></ds:Signature>') % (
        certificate, datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), unique, digest)


def submission(document, unique, patient=None, inline=False):
    """An ITI-41 request for one document, referenced by xop:Include (MTOM) or inline in base64, and the submission
    set's signature document (inline)."""
    patient = patient or PATIENT
    content = base64.b64encode(document).decode() if inline else '<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:doc1@client"/>'
    signed = signature(document, unique).encode()
    return (
        '<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007"><lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0">'
        '<rim:RegistryObjectList xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">%s%s'
        '<rim:RegistryPackage id="Set1"><rim:ExternalIdentifier identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="%s.1" id="e3" registryObject="Set1"/>'
        '<rim:ExternalIdentifier identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" value="%s" id="e4" registryObject="Set1"/></rim:RegistryPackage>'
        '</rim:RegistryObjectList></lcm:SubmitObjectsRequest><xdsb:Document id="Doc1">%s</xdsb:Document><xdsb:Document id="Sig1">%s</xdsb:Document>'
        '</xdsb:ProvideAndRegisterDocumentSetRequest>') % (
        entry("Doc1", document, unique, patient, "10", "11490-0", "urn:ihe:pcc:xds-ms:2007"),
        entry("Sig1", signed, unique + ".2", patient, "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "E1762", "urn:ihe:iti:dsg:detached:2014"),
        unique, esc(patient), content, base64.b64encode(signed).decode())


def find_documents(patient=None):
    return ('<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">'
            '<query:ResponseOption returnType="LeafClass"/><rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">'
            '<rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList><rim:Value>\'%s\'</rim:Value></rim:ValueList></rim:Slot>'
            '</rim:AdhocQuery></query:AdhocQueryRequest>') % esc(patient or PATIENT)


def main():
    connect(*sys.argv[1:5])
    # --skip-existence: a deliberately wrong client that feeds the DMP without TD0.2 (the recette's DMP pack must say so).
    if "--skip-existence" in sys.argv[5:]:
        print("1. TD0.2 skipped (--skip-existence)")
    else:
        existence_test()
    push_find_retrieve()


def existence_test():
    # TD0.2: the patient's DMP exists.
    existence = ('<PRPA_IN201307UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="1.2.3" extension="py-1"/><sender><device><id root="1.2.3"/></device></sender>'
                 '<controlActProcess classCode="CACT" moodCode="EVN"><reasonCode code="TEST_EXST" codeSystem="1.2.250.1.213.1.1.4.11"/>'
                 '<queryByParameter><queryId root="1.2.3" extension="q"/><parameterList><patientIdentifier><value root="%s" extension="%s"/>'
                 '</patientIdentifier></parameterList></queryByParameter></controlActProcess></PRPA_IN201307UV02>') % (OID, INS)
    answer = soap("/si-dmp-server/v2/services/patients", "urn:hl7-org:v3:PRPA_IN201307UV02", existence)
    code = ET.fromstring(answer.content).find(".//hl7:queryResponseCode", NS)
    if answer.status_code != 200 or code is None or code.get("code") != "OK":
        fail("TD0.2: %d %s" % (answer.status_code, answer.text[:300]))
    print("1. TD0.2 existence test: OK, the DMP exists")


def push_find_retrieve():
    # ITI-41 over MTOM.
    document = ('<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>'
                '<id root="%s" extension="%s"/></patientRole></recordTarget><title>Compte rendu du client Python</title></ClinicalDocument>' % (OID, INS)).encode() + bytes(range(256))
    unique = "1.2.250.1.999.7.%d" % uuid.uuid4().int
    submission_xml = submission(document, unique)
    answer = soap("/si-dmp-server/v2/services/repository", "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b", submission_xml, [("doc1@client", document)])
    status = ET.fromstring(answer.content).find(".//rs:RegistryResponse", NS)
    if answer.status_code != 200 or status is None or not status.get("status", "").endswith("Success"):
        fail("ITI-41: %d %s" % (answer.status_code, answer.text[-700:]))
    print("2. ITI-41 over MTOM: Success (%d bytes)" % len(document))

    # ITI-18 FindDocuments.
    query = find_documents()
    answer = soap("/si-dmp-server/v2/services/registry", "urn:ihe:iti:2007:RegistryStoredQuery", query)
    found = [e.get("value") for e in ET.fromstring(answer.content).iter("{%s}ExternalIdentifier" % NS["rim"])]
    if unique not in found:
        fail("ITI-18 did not find %s: %s" % (unique, answer.text[:500]))
    print("3. ITI-18 FindDocuments: found %s" % unique)

    # ITI-43 over MTOM: the same bytes.
    retrieve = ('<xdsb:RetrieveDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007"><xdsb:DocumentRequest>'
                '<xdsb:RepositoryUniqueId>1.2.250.1.213.4.1.1.1.2</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>%s</xdsb:DocumentUniqueId>'
                '</xdsb:DocumentRequest></xdsb:RetrieveDocumentSetRequest>') % unique
    answer = soap("/si-dmp-server/v2/services/repository", "urn:ihe:iti:2007:RetrieveDocumentSet", retrieve, [])
    if answer.status_code != 200 or not answer.headers.get("Content-Type", "").startswith("multipart/related"):
        fail("ITI-43: %d %s %s" % (answer.status_code, answer.headers.get("Content-Type"), answer.text[:300]))
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + answer.headers["Content-Type"].encode() + b"\r\n\r\n" + answer.content)
    parts = [part for part in message.iter_parts()]
    if len(parts) != 2 or parts[1].get_payload(decode=True) != document:
        fail("ITI-43: the document part is not the bytes pushed")
    print("4. ITI-43 over MTOM: the %d bytes pushed, byte for byte" % len(document))
    print("DMP client check passed")


if __name__ == "__main__":
    main()
