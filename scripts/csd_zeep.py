#!/usr/bin/env python3
"""A zeep (Python SOAP) client against the sandbox's ROR CSD MEV2.4 service: loads the served WSDL and schema over
mutual TLS (certificate whitelisted by public key), calls both operations.

usage: csd_zeep.py BASE_URL CA_BUNDLE CLIENT_CERT CLIENT_KEY
Exit 0 when TR_Lecture returned a CSD tree and TR-Notif a list."""
import sys

import requests
from zeep import Client, Settings
from zeep.transports import Transport

base, ca, cert, key = sys.argv[1:5]
session = requests.Session()
session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
session.verify = ca
session.cert = (cert, key)
client = Client(f"{base}/ROR/CSD?wsdl", transport=Transport(session=session), settings=Settings(strict=False))

failures = 0
lecture = client.service.careServicesRequest_Request(
    function={
        "urn": "urn:asip:ror:lecture:offreSoinEtablissement:2017", "encapsulated": True,
        "TR_Lecture-OffresSanteEtablissement": {"etablissementDemandeLecture": {
            "id_etablissement": {"code": "1759000001", "assigningAuthorityName": "1.2.250.1.71.1.2.14"}}},
    })
facilities = lecture.result.queryResult.facilityDirectory._value_1 or []
print("careServicesRequest_Request: facilityNumber", lecture.result.facilityNumber, "facilities", len(facilities))
failures += lecture.result.facilityNumber < 1 or len(facilities) != lecture.result.facilityNumber

notif = client.service["TR-Notif-ListeEtablissementsMajApresDate_Demande"](params={"dateRef": "2020-01-01T00:00:00Z"})
print("TR-Notif-ListeEtablissementsMajApresDate_Demande: result", notif.result, "first", notif.etablissementReponseNotif[0].id_etablissement.code)
failures += notif.result < 1
sys.exit(1 if failures else 0)
