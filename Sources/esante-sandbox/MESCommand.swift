import Access
import ArgumentParser
import Foundation
import MonEspaceSante
import SandboxServer

/// `esante-sandbox mes`: Mon espace santé's services and pairings in a data folder (a running server sees them at once).
struct MESCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mes",
        abstract: "Mon espace santé: register services, list them, their pairings and the patients.",
        subcommands: [Service.self, Pairings.self, Patients.self]
    )

    struct Service: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Referenced services.",
            subcommands: [Add.self, List.self]
        )

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Register a service and whitelist its certificate's DN for mes; prints its client id and secret."
            )
            @OptionGroup var data: DataOptions
            @Option(help: "The service's name, as the patient's page shows it.") var name: String
            @Option(help: "Subject DN of the service's certificate (RFC 4514, OpenSSL one-line or slash form).")
            var subjectDN: String?
            @Option(help: "PEM certificate to read the DN from.") var certificate: String?
            @Option(help: "Redirect URI the patient's browser may be sent back to (repeatable).") var redirectURI:
                [String] = []
            @Option(help: "Pairing OID: Observation.subject.identifier.system is urn:oid:<OID>.") var pairingOID: String
            @Option(help: "Client id (default: made up).") var clientId: String?
            @Option(help: "Client secret (default: made up).") var clientSecret: String?
            @Flag(help: "Print the service as JSON.") var json = false

            func run() async throws {
                try await reportingErrors {
                    var dn = subjectDN
                    if let certificate {
                        dn = try Whitelist.entry(
                            from: WhitelistRequest(service: "mes", certificatePEM: try readPEM(certificate)),
                            origin: "cli"
                        ).subjectDN
                    }
                    guard let dn else { throw UsageFailure("give --subject-dn or --certificate") }
                    let store = try data.openStore()
                    let directory = MESDirectory(store: store, whitelist: try Whitelist(store: store))
                    let service: MESServiceRecord
                    do {
                        service = try directory.register(
                            .init(
                                name: name,
                                subjectDN: dn,
                                redirectURIs: redirectURI,
                                pairingOID: pairingOID,
                                clientId: clientId,
                                clientSecret: clientSecret
                            ),
                            origin: "cli"
                        )
                    } catch let error as MESError {
                        throw UsageFailure(error.description)
                    }
                    if json {
                        print(String(decoding: try SandboxJSON.encoder.encode(service), as: UTF8.self))
                    } else {
                        print(
                            "registered \(service.clientId) (secret \(service.clientSecret)), DN \(service.subjectDN) whitelisted for mes"
                        )
                    }
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the registered services.")
            @OptionGroup var data: DataOptions
            @Flag(help: "A JSON array (as GET /admin/mes/services) instead of lines.") var json = false

            func run() async throws {
                try await reportingErrors {
                    let services = try MESCommand.directory(data).services()
                    try MESCommand.list(services, json: json) {
                        "\($0.clientId)\t\($0.pairingOID)\t\($0.name)\t\($0.subjectDN)"
                    }
                }
            }
        }
    }

    struct Pairings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the pairings (consent, tokens issued, last call)."
        )
        @OptionGroup var data: DataOptions
        @Flag(help: "A JSON array (as GET /admin/mes/pairings) instead of lines.") var json = false

        func run() async throws {
            try await reportingErrors {
                try MESCommand.list(try MESCommand.directory(data).pairings(), json: json) { pairing in
                    "#\(pairing.id)\t\(pairing.clientId)\t\(pairing.patientINS)\tidPe \(pairing.idPe)\t\(pairing.state.rawValue)\t"
                        + "consent \(pairing.consent ? "given" : "withdrawn")\ttokens \(pairing.tokensIssued)"
                }
            }
        }
    }

    struct Patients: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the patients and their MSSanté addresses.")
        @OptionGroup var data: DataOptions
        @Flag(help: "A JSON array instead of lines.") var json = false

        func run() async throws {
            try await reportingErrors {
                try MESCommand.list(try MESCommand.directory(data).patients(), json: json) {
                    "\($0.ins)\t\($0.birthName) \($0.firstNames)\t\($0.messagingAddress)"
                }
            }
        }
    }

    static func directory(_ data: DataOptions) throws -> MESDirectory {
        let store = try data.openStore()
        return MESDirectory(store: store, whitelist: try Whitelist(store: store))
    }

    /// A listing as lines, or with `--json` as one JSON array, the admin API's encoding.
    static func list<T: Encodable>(_ items: [T], json: Bool, line: (T) -> String) throws {
        if json {
            print(String(decoding: try SandboxJSON.encoder.encode(items), as: UTF8.self))
        } else {
            for item in items { print(line(item)) }
        }
    }
}
