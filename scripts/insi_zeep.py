#!/usr/bin/env python3
"""A zeep (Python SOAP) client against the sandbox's INSi service: loads the served WSDL and its schemas over
mutual TLS, calls both operations, checks that RESULTAT comes back.

usage: insi_zeep.py BASE_URL CA_BUNDLE CLIENT_CERT CLIENT_KEY [IDAM]
  e.g. insi_zeep.py https://127.0.0.1:8443 .esante-sandbox/pki/ca-bundle.pem \
       .esante-sandbox/pki/clients/insi-lps/cert.pem .esante-sandbox/pki/clients/insi-lps/key.pem
Exit 0 when both operations answered as expected."""
import datetime
import sys
import uuid

import requests
from lxml import etree
from zeep import Client, Settings
from zeep.transports import Transport

base, ca, cert, key = sys.argv[1:5]
idam = sys.argv[5] if len(sys.argv) > 5 else "SANDBOX-LPS-0001"

session = requests.Session()
session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
session.verify = ca
session.cert = (cert, key)
client = Client(f"{base}/lps?wsdl", transport=Transport(session=session), settings=Settings(strict=True))

BAM, LPS, WSA = "urn:siram:bam:ctxbam", "urn:siram:lps:ctxlps", "http://www.w3.org/2005/08/addressing"
SAML, WSSE = "urn:oasis:names:tc:SAML:2.0:assertion", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


def sub(parent, ns, name, text=None, **attributes):
    element = etree.SubElement(parent, f"{{{ns}}}{name}", **attributes)
    element.text = text
    return element


def headers(action, beneficiary=None):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    bam = etree.Element(f"{{{BAM}}}ContexteBAM", Version="01_02")
    sub(bam, BAM, "Id", str(uuid.uuid4())); sub(bam, BAM, "Temps", now); sub(bam, BAM, "Emetteur", "zeep")
    coverage = sub(bam, BAM, "COUVERTURE")
    if beneficiary:
        b = sub(coverage, BAM, "BENEFICIAIRE")
        nir = sub(b, BAM, "Nir"); sub(nir, BAM, "Num", beneficiary[0])
        sub(b, BAM, "Rang", str(beneficiary[1]))
    lps = etree.Element(f"{{{LPS}}}ContexteLPS", Nature="CTXLPS", Version="01_00")
    sub(lps, LPS, "Id", str(uuid.uuid4())); sub(lps, LPS, "Temps", now); sub(lps, LPS, "Emetteur", "zeep")
    software = sub(lps, LPS, "LPS")
    sub(software, LPS, "IDAM", idam, R="4"); sub(software, LPS, "Version", "1")
    sub(software, LPS, "Instance", str(uuid.uuid4())); sub(software, LPS, "Nom", "urn:lps:zeep:1")
    action_element = etree.Element(f"{{{WSA}}}Action"); action_element.text = action
    message = etree.Element(f"{{{WSA}}}MessageID"); message.text = f"uuid:{uuid.uuid4()}"
    result = [bam, lps, action_element, message]
    if beneficiary:
        security = etree.Element(f"{{{WSSE}}}Security")
        assertion = sub(security, SAML, "Assertion", ID="_card", Version="2.0", IssueInstant=now)
        sub(assertion, SAML, "Issuer", "CN=CARTE VITALE SANDBOX")
        subject = sub(assertion, SAML, "Subject"); sub(subject, SAML, "NameID", "CV-SBX-0003")
        result.append(security)
    return result


failures = 0
answer = client.service.rechercherInsAvecTraitsIdentite(
    NomNaissance="ADRTROIS", Prenom=["DOMINIQUE"], Sexe="F", DateNaissance="1997-02-26",
    _soapheaders=headers("urn:ServiceIdentiteCertifiee:1.0.0:rechercherInsAvecTraitsIdentite"))
print("rechercherInsAvecTraitsIdentite:", answer.CR.CodeCR, answer.CR.LibelleCR, answer.INDIVIDU.INSACTIF.IdIndividu.NumIdentifiant)
failures += answer.CR.CodeCR != "00" or answer.INDIVIDU.INSACTIF.IdIndividu.NumIdentifiant != "297022A020778"

answer = client.service.rechercherInsAvecCarteVitale(
    MatriculeIndividu={"NumIdentifiant": "2181213055202"}, NomNaissance="JUMEAU", DateNaissance="2018-12-24", RangNaissance="2",
    _soapheaders=headers("urn:ServiceIdentiteCertifiee:1.0.0:rechercherInsAvecCarteVitale", ("2181213055202", 2)))
print("rechercherInsAvecCarteVitale:", answer.CR.CodeCR, answer.CR.LibelleCR, answer.INDIVIDU.TIQ.ListePrenom)
failures += answer.CR.CodeCR != "00" or answer.INDIVIDU.TIQ.ListePrenom != "SACHA"
sys.exit(1 if failures else 0)
