#!/usr/bin/env python3
"""A ROR client configured by issuer only, written with real OAuth libraries apart from the sandbox: authlib reads
and validates the realm's discovery document (OpenID Connect Discovery) and fetches a client-credentials token over
mutual TLS (tls_client_auth: the certificate is the credential); PyJWT's PyJWKClient fetches the JWKS and verifies the
token (signature, iss, exp) and its certificate binding (cnf.x5t#S256); then the token opens a FHIR read.
Usage: oauth_client.py ISSUER CA CERT KEY"""
import base64, hashlib, ssl, sys

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.discovery import OpenIDProviderMetadata, get_well_known_url
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding


def fail(text):
    print("OAuth client check FAILED: " + text, file=sys.stderr)
    sys.exit(1)


def main():
    issuer, ca, cert, key = sys.argv[1:5]
    http = requests.Session()
    http.trust_env = False
    http.verify, http.cert = ca, (cert, key)

    # Discovery by issuer, validated as OpenID Connect Discovery asks.
    metadata = OpenIDProviderMetadata(http.get(get_well_known_url(issuer, external=True)).json())
    metadata.validate()
    if metadata["issuer"] != issuer:
        fail("discovery issuer %s is not %s" % (metadata["issuer"], issuer))
    print("1. discovery: %s (token endpoint %s)" % (metadata["issuer"], metadata["token_endpoint"]))

    # Client credentials over mutual TLS: no secret, the certificate authenticates (RFC 8705).
    client = OAuth2Session("esante-sandbox-consumer", token_endpoint_auth_method="none")
    client.trust_env = False
    client.verify, client.cert = ca, (cert, key)
    token = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    access = token["access_token"]
    print("2. token: %s, expires in %s s" % (token["token_type"], token["expires_in"]))

    # The JWKS verifies it; the binding is this certificate's SHA-256 thumbprint.
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"], ssl_context=context).get_signing_key_from_jwt(access)
    claims = jwt.decode(access, signing_key.key, algorithms=metadata["id_token_signing_alg_values_supported"],
                        issuer=issuer, options={"require": ["exp", "iat", "iss"]})
    der = x509.load_pem_x509_certificate(open(cert, "rb").read()).public_bytes(Encoding.DER)
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    if claims.get("cnf", {}).get("x5t#S256") != thumbprint:
        fail("cnf.x5t#S256 %s is not the certificate's %s" % (claims.get("cnf"), thumbprint))
    print("3. PyJWKClient: signature by kid %s, iss, exp and cnf verified" % signing_key.key_id)

    base = issuer.split("/auth/realms/")[0]
    answer = http.get(base + "/ws-diffusion-fhir/Location?_count=1", headers={
        "Authorization": "Bearer " + access, "Ror-Profil-Utilisateur-Code": "CU22",
        "Ror-Profil-Utilisateur-System": "1.2.250.1.213.1.6.1.66", "Ror-Role-Metier-Code": "AUTOMATE",
        "Ror-Role-Metier-System": "1.2.250.1.213.1.1.4.6"})
    if answer.status_code != 200:
        fail("FHIR read: %d %s" % (answer.status_code, answer.text[:300]))
    print("4. FHIR read with the token: 200")
    print("OAuth client check passed")


if __name__ == "__main__":
    main()
