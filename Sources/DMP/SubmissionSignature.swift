import Crypto
import Foundation
import SOAPCore
import X509

/// The XAdES signature of a submission set (signature du lot de soumission), which the DMP requires of every TD2.1
/// submission over SOAP. It travels as one more document entry of the submission, in the form of IHE's Document
/// Digital Signature profile (DSG, detached signature): `formatCode` `urn:ihe:iti:dsg:detached:2014`, content a
/// `ds:Signature` whose `ds:Manifest` lists every document of the submission by uniqueId with its digest.
///
/// The sandbox checks presence and structure, the certificate's encoding and every manifest digest; it does not
/// verify the `SignatureValue` (that needs the signer's ORG_SIGN chain, which the sandbox's PKI does not issue).
struct SubmissionSignature: Equatable {
    static let formatCode = "urn:ihe:iti:dsg:detached:2014"
    static let xmldsig = "http://www.w3.org/2000/09/xmldsig#"
    static let xades = "http://uri.etsi.org/01903/v1.3.2#"

    /// The signing certificate's subject (RFC 4514) and the XAdES `SigningTime`, kept for inspection.
    var signer: String
    var signingTime: String

    /// Digest algorithms a manifest reference may name (XML-DSig 1.1 §6.2).
    static let digests: [String: @Sendable (Data) -> Data] = [
        "http://www.w3.org/2000/09/xmldsig#sha1": { Data(Insecure.SHA1.hash(data: $0)) },
        "http://www.w3.org/2001/04/xmlenc#sha256": { Data(SHA256.hash(data: $0)) },
        "http://www.w3.org/2001/04/xmldsig-more#sha384": { Data(SHA384.hash(data: $0)) },
        "http://www.w3.org/2001/04/xmlenc#sha512": { Data(SHA512.hash(data: $0)) },
    ]

    /// Reads and checks the signature document against the submission's other documents (uniqueId → content);
    /// throws the first problem, worded for a `RegistryError`'s `codeContext`.
    static func check(
        _ content: Data,
        signing documents: [(uniqueId: String, content: Data)]
    ) throws(Problem) -> SubmissionSignature {
        let root: SOAPElement
        do {
            root = try HardenedXMLParser(maximumBytes: 1 << 20).parse(content)
        } catch {
            throw Problem("the signature document is not XML that can be read: \(error)")
        }
        guard root.namespace == xmldsig, root.name == "Signature" else {
            throw Problem("the signature document's root is {\(root.namespace)}\(root.name), not ds:Signature")
        }
        let signedInfo = try required(root, "SignedInfo", xmldsig)
        for name in ["CanonicalizationMethod", "SignatureMethod"]
        where (try required(signedInfo, name, xmldsig)).attributes["Algorithm"]?.isEmpty ?? true {
            throw Problem("ds:SignedInfo/ds:\(name) has no Algorithm")
        }
        let signedReferences = signedInfo.children("Reference", namespace: xmldsig)
        let signatureValue = try required(root, "SignatureValue", xmldsig)
        guard !signatureValue.text.isEmpty, base64(signatureValue.text) != nil else {
            throw Problem("ds:SignatureValue is empty or not base64")
        }
        guard
            let certificateText = root.path("KeyInfo", "X509Data", "X509Certificate")?.text,
            let der = base64(certificateText)
        else {
            throw Problem(
                "ds:KeyInfo/ds:X509Data/ds:X509Certificate (the signer's certificate) is missing or not base64"
            )
        }
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: Array(der))
        } catch {
            throw Problem("ds:X509Certificate is not a DER X.509 certificate")
        }
        let objects = root.children("Object", namespace: xmldsig)
        guard
            let qualifying = objects.lazy.compactMap({ $0.child("QualifyingProperties", namespace: xades) }).first
        else {
            throw Problem("no ds:Object holds xades:QualifyingProperties (XAdES 1.3.2): the signature is not XAdES")
        }
        if let target = qualifying.attributes["Target"], let id = root.attributes["Id"], target != "#" + id {
            throw Problem("xades:QualifyingProperties Target \(target) is not this signature (#\(id))")
        }
        guard
            let signatureProperties = qualifying.path("SignedProperties", "SignedSignatureProperties"),
            let signingTime = signatureProperties.child("SigningTime", namespace: xades)?.text, !signingTime.isEmpty
        else {
            throw Problem("xades:SignedProperties/xades:SignedSignatureProperties/xades:SigningTime is missing")
        }
        guard
            signatureProperties.child("SigningCertificate", namespace: xades) != nil
                || signatureProperties.child("SigningCertificateV2", namespace: xades) != nil
        else {
            throw Problem("xades:SignedSignatureProperties has no SigningCertificate (or SigningCertificateV2)")
        }
        guard let manifest = objects.lazy.compactMap({ $0.child("Manifest", namespace: xmldsig) }).first else {
            throw Problem("no ds:Object holds the ds:Manifest listing the submission's documents")
        }
        if let id = manifest.attributes["Id"], !signedReferences.contains(where: { $0.attributes["URI"] == "#" + id }) {
            throw Problem("ds:SignedInfo has no ds:Reference to the manifest #\(id): the manifest is not signed")
        }
        var referenced: [String: SOAPElement] = [:]
        for reference in manifest.children("Reference", namespace: xmldsig) {
            let uri = reference.attributes["URI"] ?? ""
            referenced[uri.hasPrefix("urn:oid:") ? String(uri.dropFirst(8)) : uri] = reference
        }
        for document in documents {
            guard let reference = referenced[document.uniqueId] else {
                throw Problem("the ds:Manifest has no ds:Reference URI=\"urn:oid:\(document.uniqueId)\"")
            }
            let algorithm = reference.child("DigestMethod", namespace: xmldsig)?.attributes["Algorithm"] ?? ""
            guard let digest = digests[algorithm] else {
                throw Problem("the reference to \(document.uniqueId) names an unknown DigestMethod '\(algorithm)'")
            }
            let expected = digest(document.content).base64EncodedString()
            guard reference.child("DigestValue", namespace: xmldsig)?.text == expected else {
                throw Problem("the DigestValue for \(document.uniqueId) is not the document's digest (\(expected))")
            }
        }
        return SubmissionSignature(signer: certificate.subject.description, signingTime: signingTime)
    }

    struct Problem: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    private static func required(
        _ parent: SOAPElement,
        _ name: String,
        _ namespace: String
    ) throws(Problem)
        -> SOAPElement
    {
        guard let element = parent.child(name, namespace: namespace) else {
            throw Problem("\(parent.name) has no ds:\(name)")
        }
        return element
    }

    private static func base64(_ text: String) -> Data? {
        Data(base64Encoded: Data(text.utf8.filter { $0 > 0x20 }))
    }
}
