/// The national services the sandbox stands in for. Each owns URL path prefixes and is whitelisted separately.
public enum SandboxService: String, Sendable, Hashable, Codable, CaseIterable {
    /// ROR FHIR "MEV3" (consumer API, capacity feed, Keycloak token endpoint).
    case rorFHIR = "ror-fhir"
    /// ROR SOAP "CSD MEV2.4" (legacy), whitelisted by public key.
    case rorCSD = "ror-csd"
    /// INSi teleservice (Assurance Maladie), SOAP.
    case insi = "insi"
    /// DMP (dossier médical partagé).
    case dmp = "dmp"
    /// Mon espace santé.
    case mes = "mes"

    /// How the ANS identifies a caller of this service in its whitelist.
    public enum Credential: String, Sendable {
        /// Certificate subject DN (FHIR, INSi, DMP, MES).
        case subjectDN
        /// Certificate public key (CSD MEV2.4).
        case publicKey
    }

    /// How errors are written on this service's paths.
    public enum ErrorForm: Sendable {
        case fhirOperationOutcome
        case soapFault
    }

    public var credential: Credential { self == .rorCSD ? .publicKey : .subjectDN }

    public var errorForm: ErrorForm {
        switch self {
        case .rorFHIR, .mes: .fhirOperationOutcome
        case .rorCSD, .insi, .dmp: .soapFault
        }
    }

    /// The form on one of this service's paths: the DMP's FHIR API (PDSm4DMP) answers in FHIR, its SOAP ones in SOAP.
    public func errorForm(path: String) -> ErrorForm {
        self == .dmp && path.hasPrefix(Path.dmpFHIR) ? .fhirOperationOutcome : errorForm
    }

    /// The real services' path prefixes, defined here only: the access layer routes on them and each service module
    /// mounts its routes under them.
    public enum Path {
        /// ROR FHIR consumer API ("ws-diffusion").
        public static let rorConsumer = "/ws-diffusion-fhir"
        /// ROR capacity feed ("synchro des disponibilités en lits").
        public static let rorCapacityFeed = "/ws-synchro-dispo-lits-fhir"
        /// The ROR's Keycloak realm.
        public static let rorRealm = "/auth/realms/ror"
        public static let rorCSD = "/ROR/CSD"
        /// INSi ("LPS" services of the Assurance Maladie).
        public static let insi = "/lps"
        public static let dmp = "/si-dmp-server"
        /// The DMP's FHIR API (PDSm4DMP).
        public static let dmpFHIR = dmp + "/fhir"
        public static let mes = "/mes"
    }

    public var pathPrefixes: [String] {
        switch self {
        case .rorFHIR: [Path.rorConsumer, Path.rorCapacityFeed, Path.rorRealm]
        case .rorCSD: [Path.rorCSD]
        case .insi: [Path.insi]
        case .dmp: [Path.dmp]
        case .mes: [Path.mes]
        }
    }

    /// The service owning a request path, matched on whole path segments (`/lps` and `/lps/x`, not `/lpsx`).
    public static func owning(path: String) -> SandboxService? {
        for service in allCases {
            for prefix in service.pathPrefixes where path.hasPrefix(prefix) {
                let rest = path.dropFirst(prefix.count)
                if rest.isEmpty || rest.hasPrefix("/") || rest.hasPrefix("?") { return service }
            }
        }
        return nil
    }
}

/// Whitelist environments ("bac à sable" is the ANS sandbox, the default here).
public enum SandboxEnvironment {
    public static let sandbox = "bac-a-sable"
}

/// What a service route may ask of the request context about its caller (implemented by the mTLS listener's
/// context), so service modules do not depend on the server module.
public protocol CallerContext {
    var identity: ClientIdentity? { get }
    /// The access layer's decision for this request (set on service paths once the caller is whitelisted).
    var access: AccessDecision? { get }
    /// The environment of the listener the request arrived on (`bac-a-sable`, `production`…).
    var environment: String { get }
}
