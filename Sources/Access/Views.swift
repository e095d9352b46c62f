import Foundation

extension WhitelistEntry {
    /// A whitelist entry as the admin API and the CLI show it (camelCase, the client secret never shown).
    public struct View: Encodable, Sendable {
        var id: Int64
        var environment: String
        var service: String
        var subjectDN: String?
        var publicKeySHA256: String?
        var role: String
        var establishments: [String]
        var label: String?
        var origin: String
        var createdAt: Date
        var updatedAt: Date
        var clientId: String?
        var accessProfile: Int?
        /// Whether a client secret is set (the secret itself is never shown).
        var clientSecretSet: Bool?
        var rorHeaders: [String: String]?
        var onboardingRequestId: Int64?

        public init(_ entry: WhitelistEntry) {
            onboardingRequestId = entry.onboardingRequestId
            clientId = entry.clientId
            accessProfile = entry.accessProfile
            clientSecretSet = entry.service == .rorFHIR ? (entry.clientSecret != nil) : nil
            rorHeaders = entry.rorHeaders
            id = entry.id ?? 0
            environment = entry.environment
            service = entry.service.rawValue
            subjectDN = entry.subjectDN
            publicKeySHA256 = entry.publicKeySHA256?.hex
            role = entry.role.rawValue
            establishments = entry.establishments
            label = entry.label
            origin = entry.origin
            createdAt = entry.createdAt
            updatedAt = entry.updatedAt
        }
    }
}

extension JournalEntry {
    /// A journal row as the admin API and the CLI show it; bodies as text when UTF-8, else base64 with
    /// `…Encoding: "base64"`.
    public struct View: Encodable, Sendable {
        var id: Int64
        var time: Date
        var environment: String
        var service: String?
        var method: String
        var path: String
        var query: String?
        var status: Int
        var decision: String
        var reason: String?
        var subjectDN: String?
        var issuerDN: String?
        var serialNumber: String?
        var spkiSHA256: String?
        var durationMs: Double
        var remoteAddress: String?
        var requestHeaders: [String: String]?
        var requestBody: String?
        var requestBodyEncoding: String?
        var requestBodyTruncated: Bool
        var responseHeaders: [String: String]?
        var responseBody: String?
        var responseBodyEncoding: String?
        var responseBodyTruncated: Bool

        public init(_ entry: JournalEntry) {
            id = entry.id ?? 0
            time = entry.time
            environment = entry.environment
            service = entry.service
            method = entry.method
            path = entry.path
            query = entry.query
            status = entry.status
            decision = entry.decision.rawValue
            reason = entry.reason
            subjectDN = entry.subjectDN
            issuerDN = entry.issuerDN
            serialNumber = entry.serialNumber
            spkiSHA256 = entry.spkiSHA256
            durationMs = entry.durationMs
            remoteAddress = entry.remoteAddress
            requestHeaders = Self.headers(entry.requestHeaders)
            (requestBody, requestBodyEncoding) = Self.body(entry.requestBody)
            requestBodyTruncated = entry.requestBodyTruncated
            responseHeaders = Self.headers(entry.responseHeaders)
            (responseBody, responseBodyEncoding) = Self.body(entry.responseBody)
            responseBodyTruncated = entry.responseBodyTruncated
        }

        static func headers(_ json: String?) -> [String: String]? {
            guard let json else { return nil }
            return try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))
        }

        static func body(_ data: Data?) -> (String?, String?) {
            guard let data else { return (nil, nil) }
            if let text = String(data: data, encoding: .utf8) { return (text, nil) }
            return (data.base64EncodedString(), "base64")
        }
    }
}

extension OnboardingRequest {
    /// The request as shown (API, CLI, console): the committee's client secret masked.
    public var masked: OnboardingRequest {
        var copy = self
        if copy.committee?.clientSecret != nil { copy.committee?.clientSecret = "***" }
        return copy
    }
}

extension OnboardingEvent {
    /// An onboarding event as shown (camelCase).
    public struct View: Encodable, Sendable {
        var id: Int64
        var time: Date
        var fromState: String?
        var toState: String
        var actor: String
        var reason: String?

        public init(_ event: OnboardingEvent) {
            id = event.id ?? 0
            time = event.time
            fromState = event.fromState
            toState = event.toState
            actor = event.actor
            reason = event.reason
        }
    }
}
