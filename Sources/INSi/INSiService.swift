import Access
import Foundation
import Hummingbird
import NIOCore
import SOAPCore
import Store

/// How the INSi stub answers a search that finds nobody.
public enum INSiMode: String, Sendable, CaseIterable {
    /// CR 01 "Aucune identite trouvee", as the production service.
    case strict
    /// `insi_101` fault, as the editor test environment does for anyone outside its test base (which is why the
    /// CNDA hands out injection files).
    case realistic
}

/// The INSi teleservice (Assurance Maladie, `DESIR_ICIR_EXP_1.5.0`): `POST /lps` (SOAP 1.2) with
/// `rechercherInsAvecTraitsIdentite` and `rechercherInsAvecCarteVitale`, `GET /lps?wsdl` and its XSDs.
/// Facts: `docs/services/insi.md`.
public final class INSiService: Sendable {
    public static let path = SandboxService.Path.insi
    public let directory: INSiDirectory
    public let mode: INSiMode
    /// OIDs the answers carry: the editor test environment returns the production ones (`.8` NIR, `.9` NIA).
    public let nirOID: String
    public let niaOID: String
    let parser = HardenedXMLParser(maximumBytes: 256 * 1024, maximumDepth: 32, maximumElements: 2_000)

    public init(
        store: SandboxStore,
        mode: INSiMode = .strict,
        nirOID: String = "1.2.250.1.213.1.4.8",
        niaOID: String = "1.2.250.1.213.1.4.9"
    ) {
        self.directory = INSiDirectory(store: store)
        self.mode = mode
        self.nirOID = nirOID
        self.niaOID = niaOID
    }

    public func addRoutes<Context: RequestContext & CallerContext>(to router: Router<Context>) {
        router.get(RouterPath(Self.path)) { request, _ in
            try INSiWSDL.response(request, baseURL: Self.baseURL(request))
        }
        router.post(RouterPath(Self.path)) { request, context in
            do throws(INSiFault) {
                let soap = try await SOAPEndpoint.read(request, parser: self.parser, faults: INSiFault.self)
                return SOAPEndpoint.answer(try self.handle(soap, identity: context.identity))
            } catch {
                return error.response
            }
        }
    }

    static func baseURL(_ request: Request) -> String {
        "https://\(request.head.authority ?? "localhost")\(path)"
    }

    // MARK: Handling

    /// The answer to one request: a `RESULTAT` envelope (HTTP 200), or the fault (HTTP 500, as the real service).
    func handle(_ soap: SOAPRequest, identity: ClientIdentity?) throws(INSiFault) -> String {
        let envelope = soap.envelope
        let messageID = envelope.headerBlock("MessageID", namespace: INSiNamespace.addressing)?.text
        let request = INSiRequest(envelope: envelope, messageID: messageID)
        let operation = try request.operation(soap)
        try request.checkCaller(identity: identity)
        try request.checkContexts()
        let idam = request.idam
        let authorised: Bool
        do { authorised = try directory.isAuthorised(idam: idam) } catch {
            throw INSiFault.storage(error, messageID: messageID)
        }
        guard authorised else {
            throw INSiFault(
                .sender,
                "desir_550",
                subcode: "siram_100",
                reason:
                    "L'accès par ce progiciel au service n'est pas autorisé. Contactez l'éditeur du progiciel ou votre responsable informatique.",
                message: "Numéro d'autorisation du logiciel inconnu.",
                messageID: messageID
            )
        }
        let found: [INSIdentity]
        do {
            switch operation {
            case .traits:
                let traits = try request.traits()
                found = try directory.identities().filter(traits.matches)
            case .vitale:
                let beneficiary = try request.beneficiary()
                found = try beneficiary.lookup(identities: directory.identities(), cards: directory.cards())
            case .verification:
                let (supplied, traits) = try request.verification()
                let candidates = try directory.identities().filter(traits.matches)
                // One identity answering the traits, carrying the INS supplied: verified (CR 00); several: CR 02.
                found =
                    candidates.count == 1
                    ? candidates.filter { $0.matricule == supplied.matricule && $0.key == supplied.key } : candidates
            }
        } catch let fault as INSiFault {
            throw fault
        } catch {
            throw INSiFault.storage(error, messageID: messageID)
        }
        if found.isEmpty, mode == .realistic {
            throw INSiFault(
                .receiver,
                "insi_101",
                subcode: "insi_101",
                reason: "Erreur technique : le service est momentanément indisponible.",
                message:
                    "Identité absente de la base de test (mode realistic : l'environnement de test éditeur ne sait pas répondre CR 01).",
                messageID: messageID
            )
        }
        return INSiResult(found: found, nirOID: nirOID, niaOID: niaOID).envelope
    }
}

/// Namespaces of the INSi messages (WSDL `DESIR_ICIR_EXP_1.5.0`).
public enum INSiNamespace {
    public static let service = "http://www.cnamts.fr/webservice"
    public static let traitsRequest = "http://www.cnamts.fr/INSiRecSans"
    public static let vitaleRequest = "http://www.cnamts.fr/INSiRecVit"
    public static let result = "http://www.cnamts.fr/INSiResultat"
    public static let contextBAM = "urn:siram:bam:ctxbam"
    public static let contextLPS = "urn:siram:lps:ctxlps"
    public static let siram = "urn:siram"
    public static let addressing = "http://www.w3.org/2005/08/addressing"
    public static let security = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    public static let saml2 = "urn:oasis:names:tc:SAML:2.0:assertion"
}

/// The operations and their SOAP actions: the two of WSDL 1.5.0, and the verification the sandbox assumes.
public enum INSiOperation: String, Sendable, CaseIterable, SOAPOperation {
    case traits = "rechercherInsAvecTraitsIdentite"
    case vitale = "rechercherInsAvecCarteVitale"
    /// "Vérification unitaire": no public WSDL. Assumed shape (from public client notes): body `RequeteUnitaire/
    /// IndividuVerifie/{INSFourni/IdIndividu, TraitsIdentiteIndividu}`; answered as a traits search whose single
    /// identity must carry the INS supplied. Not in the served WSDL, which stays the CNAM's interface.
    case verification = "verifierInsAvecTraitsIdentite"

    /// The operations of `DESIR_ICIR_EXP_1.5.0` (the served WSDL).
    public static let published: [INSiOperation] = [.traits, .vitale]

    public var action: String { "urn:ServiceIdentiteCertifiee:1.0.0:\(rawValue)" }

    /// The body element that selects the operation (the verification's namespace is not public: any is accepted).
    public func selects(_ body: SOAPElement) -> Bool {
        switch self {
        case .traits: body.namespace == INSiNamespace.traitsRequest && body.name == "RECSANSVITALE"
        case .vitale: body.namespace == INSiNamespace.vitaleRequest && body.name == "RECVITALE"
        case .verification: body.name == "RequeteUnitaire"
        }
    }
}
