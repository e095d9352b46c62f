import Access
import ArgumentParser
import Foundation
import SandboxServer
import Store

extension OnboardingError: UserFacingError {}
extension ClockError: UserFacingError {}

/// `esante-sandbox onboarding …`: the integration-request flow on a data folder (a running server sees the
/// changes within a second and whitelists requests whose delay has passed).
struct OnboardingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "onboarding",
        abstract:
            "Integration requests: submit, list, show, validate, reject, tests-done, whitelist, revoke, and the ANS's edits.",
        subcommands: [
            Submit.self, List.self, Show.self, Validate.self, Reject.self, TestsDone.self, WhitelistRequestCommand.self,
            Revoke.self, Establishments.self, AddCertificate.self, RemoveCertificate.self, Clock.self,
        ]
    )

    /// The options every subcommand shares.
    struct Common: ParsableArguments {
        @OptionGroup var data: DataOptions
        @Option(help: "Who does it (recorded in the request's history).") var actor: String?
        @Flag(help: "Print the request as JSON.") var json = false

        func onboarding() throws -> Onboarding {
            let store = try data.openStore()
            let whitelist = try Whitelist(store: store)
            let journal = Journal(store: store)
            return try Onboarding(
                store: store,
                whitelist: whitelist,
                clock: try SandboxClock(store: store),
                journal: journal
            )
        }

        /// Runs a change, flushes its journal row, prints the request.
        func perform(_ change: (Onboarding) throws -> OnboardingRequest) async throws {
            let onboarding = try onboarding()
            let request = try change(onboarding)
            onboarding.flushJournal()
            print(json ? try OnboardingCommand.render(request) : OnboardingCommand.line(request))
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Submit an integration request.")
        @OptionGroup var common: Common
        @Option(help: "eai-regional, saas or proprietary.") var kind: String
        @Option(help: "feed or consume.") var direction: String
        @Option(help: "ror-fhir, ror-csd, insi, dmp or mes.") var service: String
        @Option(help: "Environment (default: the first one served).") var environment: String?
        @Option(help: "Contact (mail or name).") var contact: String
        @Option(help: "Subject DN of the certificate.") var subjectDN: String?
        @Option(help: "PEM file of the certificate (or public key, ror-csd).") var certificate: String?
        @Option(help: "FINESS the certificate acts for (EAI/SaaS, repeatable).") var establishment: [String] = []
        @Option(help: "Proprietary: FINESS=certificate.pem, one per establishment (repeatable).")
        var establishmentCertificate: [String] = []

        func run() async throws {
            try await reportingErrors {
                let certificates = try establishmentCertificate.map { spec -> EstablishmentCertificate in
                    guard let equals = spec.firstIndex(of: "=") else {
                        throw UsageFailure(
                            "--establishment-certificate '\(spec)': expected FINESS=path/to/certificate.pem"
                        )
                    }
                    return EstablishmentCertificate(
                        finess: String(spec[..<equals]),
                        certificatePEM: try readPEM(String(spec[spec.index(after: equals)...]))
                    )
                }
                let submission = OnboardingSubmission(
                    kind: kind,
                    direction: direction,
                    service: service,
                    environment: environment,
                    contact: contact,
                    subjectDN: subjectDN,
                    certificatePEM: try certificate.map(readPEM),
                    establishments: establishment.isEmpty ? nil : establishment,
                    establishmentCertificates: certificates.isEmpty ? nil : certificates
                )
                try await common.perform { try $0.submit(submission, actor: common.actor ?? "cli") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List integration requests.")
        @OptionGroup var common: Common
        @Option(help: "Only requests in this state.") var state: String?

        func run() async throws {
            try await reportingErrors {
                var filter: OnboardingState?
                if let state {
                    guard let value = OnboardingState(rawValue: state) else {
                        throw UsageFailure(
                            "--state must be one of \(OnboardingState.allCases.map(\.rawValue).joined(separator: ", "))"
                        )
                    }
                    filter = value
                }
                let requests = try common.onboarding().list(state: filter)
                for request in requests {
                    print(common.json ? try OnboardingCommand.render(request) : OnboardingCommand.line(request))
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a request and its history.")
        @OptionGroup var common: Common
        @Argument(help: "Request id.") var id: Int64

        func run() async throws {
            try await reportingErrors {
                let onboarding = try common.onboarding()
                let request = try onboarding.request(id)
                print(common.json ? try OnboardingCommand.render(request) : OnboardingCommand.line(request))
                for event in try onboarding.events(id) {
                    print(
                        "  \(ISO8601DateFormatter().string(from: event.time)) \(event.fromState.map { "\($0) → " } ?? "")\(event.toState) by \(event.actor)\(event.reason.map { ": \($0)" } ?? "")"
                    )
                }
            }
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Committee: accept a request and assign its access profile."
        )
        @OptionGroup var common: Common
        @Argument(help: "Request id.") var id: Int64
        @Option(help: "ROR access profile 0–5 (consumers).") var accessProfile: Int?
        @Option(help: "Keycloak client id (default sandbox-client-<id>).") var clientId: String?
        @Option(help: "Client secret (profile 0).") var clientSecret: String?
        @Option(help: "Ror-* header value as Name=value (repeatable).") var rorHeader: [String] = []
        @Option(help: "Why.") var reason: String?

        func run() async throws {
            try await reportingErrors {
                var headers: [String: String] = [:]
                for spec in rorHeader {
                    guard let equals = spec.firstIndex(of: "=") else {
                        throw UsageFailure("--ror-header '\(spec)': expected Name=value")
                    }
                    headers[String(spec[..<equals])] = String(spec[spec.index(after: equals)...])
                }
                let decision = CommitteeDecision(
                    accessProfile: accessProfile,
                    clientId: clientId,
                    clientSecret: clientSecret,
                    rorHeaders: headers.isEmpty ? nil : headers,
                    reason: reason
                )
                try await common.perform { try $0.validate(id, decision: decision, actor: common.actor ?? "committee") }
            }
        }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Committee: reject a request, saying why.")
        @OptionGroup var common: Common
        @Argument(help: "Request id.") var id: Int64
        @Option(help: "Why (required).") var reason: String

        func run() async throws {
            try await reportingErrors {
                try await common.perform { try $0.reject(id, reason: reason, actor: common.actor ?? "committee") }
            }
        }
    }

    struct TestsDone: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tests-done",
            abstract: "Publisher: tests done, start the ANS delay."
        )
        @OptionGroup var common: Common
        @Argument(help: "Request id.") var id: Int64

        func run() async throws {
            try await reportingErrors {
                try await common.perform { try $0.markTestsDone(id, actor: common.actor ?? "publisher") }
            }
        }
    }

    struct WhitelistRequestCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "whitelist",
            abstract: "ANS: put a request's certificate(s) in the whitelist (once the delay has passed)."
        )
        @OptionGroup var common: Common
        @Argument(help: "Request id.") var id: Int64

        func run() async throws {
            try await reportingErrors {
                try await common.perform { try $0.addToWhitelist(id, actor: common.actor ?? "ans") }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "ANS: revoke a request (its whitelist entries are removed)."
        )
        @OptionGroup var common: Common
        @Argument(help: "Request id.") var id: Int64
        @Option(help: "Why.") var reason: String?

        func run() async throws {
            try await reportingErrors {
                try await common.perform { try $0.revoke(id, reason: reason, actor: common.actor ?? "ans") }
            }
        }
    }

    struct Establishments: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "ANS: replace the FINESS list of an EAI/SaaS request."
        )
        @OptionGroup var common: Common
        @Argument(help: "Request id.") var id: Int64
        @Option(help: "FINESS (repeatable).") var establishment: [String] = []

        func run() async throws {
            try await reportingErrors {
                try await common.perform { try $0.setEstablishments(id, establishment, actor: common.actor ?? "ans") }
            }
        }
    }

    struct AddCertificate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-certificate",
            abstract: "ANS: add an establishment certificate to a proprietary solution."
        )
        @OptionGroup var common: Common
        @Argument(help: "Request id.") var id: Int64
        @Option(help: "FINESS of the establishment.") var finess: String
        @Option(help: "PEM file of its certificate.") var certificate: String

        func run() async throws {
            try await reportingErrors {
                let pem = try readPEM(certificate)
                try await common.perform {
                    try $0.addEstablishmentCertificate(
                        id,
                        EstablishmentCertificate(finess: finess, certificatePEM: pem),
                        actor: common.actor ?? "ans"
                    )
                }
            }
        }
    }

    struct RemoveCertificate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-certificate",
            abstract: "ANS: remove an establishment's certificate from a proprietary solution."
        )
        @OptionGroup var common: Common
        @Argument(help: "Request id.") var id: Int64
        @Option(help: "FINESS of the establishment.") var finess: String

        func run() async throws {
            try await reportingErrors {
                try await common.perform {
                    try $0.removeEstablishmentCertificate(id, finess: finess, actor: common.actor ?? "ans")
                }
            }
        }
    }

    struct Clock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the sandbox clock, or change its speed (--speed 3600: an hour per second)."
        )
        @OptionGroup var data: DataOptions
        @Option(help: "New speed (1 = real time).") var speed: Double?

        func run() async throws {
            try await reportingErrors {
                let clock = try SandboxClock(store: try data.openStore())
                if let speed { try clock.setSpeed(speed) }
                let view = clock.view
                print("\(ISO8601DateFormatter().string(from: view.now)) (\(view.label))")
            }
        }
    }

    static func line(_ request: OnboardingRequest) -> String {
        let credential =
            request.subjectDN.map { "DN \($0)" }
            ?? (request.certificatePEM != nil
                ? "certificate" : "\(request.establishmentCertificates.count) establishment certificate(s)")
        var text =
            "#\(request.id) \(request.state.rawValue) \(request.kind.rawValue) \(request.direction.rawValue) "
            + "\(request.service.rawValue)@\(request.environment) \(credential) contact=\(request.contact)"
        let finess =
            request.kind == .proprietary ? request.establishmentCertificates.map(\.finess) : request.establishments
        if !finess.isEmpty { text += " establishments=\(finess.joined(separator: ","))" }
        if let due = request.whitelistDueAt, request.state == .testsDone {
            text += " due=\(ISO8601DateFormatter().string(from: due))"
        }
        if let reason = request.rejectionReason { text += " reason=\(reason)" }
        return text
    }

    static func render(_ request: OnboardingRequest) throws -> String {
        String(decoding: try SandboxJSON.encoder.encode(request.masked), as: UTF8.self)
    }
}

/// The text of a PEM file named on the command line.
func readPEM(_ path: String) throws -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw UsageFailure("cannot read \(path)")
    }
    return text
}
