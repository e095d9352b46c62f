import ArgumentParser
import Foundation
import INSi

extension INSiValidationError: UserFacingError {}

/// `esante-sandbox insi …`: the INSi test base of a data folder (a running server sees changes at its next call).
struct INSiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "insi",
        abstract: "Edit the INSi test base: identities, simulated Vitale cards, authorised LPS numbers.",
        subcommands: [Identities.self, Cards.self, LPS.self]
    )

    static func directory(_ data: DataOptions) throws -> INSiDirectory { INSiDirectory(store: try data.openStore()) }

    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func remove(_ kind: INSiDirectory.Kind, _ id: String, data: DataOptions) throws {
        guard try directory(data).remove(kind, id: id) else {
            throw UsageFailure("no INSi \(kind.rawValue) entry '\(id)'")
        }
        print("removed \(id)")
    }

    struct Identities: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "identities",
            abstract: "Identities of the test base.",
            subcommands: [List.self, Add.self, Remove.self]
        )

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print the identities as JSON.")
            @OptionGroup var data: DataOptions
            @Flag(help: "JSON, this listing's only output (accepted as on every listing).") var json = false
            func run() async throws { try await reportingErrors { try printJSON(try directory(data).identities()) } }
        }

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add (or replace) an identity; its key is checked by the NIR rule unless --allow-bad-key."
            )
            @OptionGroup var data: DataOptions
            @Option(help: "Matricule INS, 13 characters (NIR or NIA).") var matricule: String
            @Option(help: "Key, 2 digits.") var cle: String
            @Option(help: "Birth name (upper-case A-Z, '-', ''', spaces).") var nom: String
            @Option(help: "First names, space separated, first one first.") var prenoms: String
            @Option(help: "M or F.") var sexe: String
            @Option(help: "Birth date YYYY-MM-DD.") var dateNaissance: String
            @Option(help: "INSEE COG code of the birth place.") var lieuNaissance: String?
            @Flag(help: "The matricule is an NIA (answered with OID .9).") var nia = false
            @Flag(help: "Keep a key that does not verify (the CNDA uses some on purpose).") var allowBadKey = false
            @Option(help: "Free note.") var note: String?

            func run() async throws {
                try await reportingErrors {
                    let identity = INSIdentity(
                        matricule: matricule,
                        key: cle,
                        kind: nia ? .nia : .nir,
                        birthName: nom,
                        firstNames: prenoms,
                        sex: sexe,
                        birthDate: dateNaissance,
                        birthPlace: lieuNaissance,
                        note: note
                    )
                    try directory(data).add(identity, allowBadKey: allowBadKey)
                    print("added \(matricule) \(cle) \(nom) \(prenoms)")
                }
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove an identity by matricule.")
            @OptionGroup var data: DataOptions
            @Argument(help: "Matricule (13 characters).") var matricule: String
            func run() async throws { try await reportingErrors { try remove(.identity, matricule, data: data) } }
        }
    }

    struct Cards: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cards",
            abstract: "Simulated Vitale cards.",
            subcommands: [List.self, Add.self, Remove.self]
        )

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print the cards as JSON.")
            @OptionGroup var data: DataOptions
            @Flag(help: "JSON, this listing's only output (accepted as on every listing).") var json = false
            func run() async throws { try await reportingErrors { try printJSON(try directory(data).cards()) } }
        }

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add (or replace) a card; beneficiaries must be identities of the base."
            )
            @OptionGroup var data: DataOptions
            @Option(help: "Card id.") var id: String
            @Option(help: "Matricule of the insured person.") var assure: String
            @Option(help: "Beneficiary as MATRICULE:RANK (repeatable).") var beneficiaire: [String]

            func run() async throws {
                try await reportingErrors {
                    let beneficiaries = try beneficiaire.map { text -> VitaleCard.Beneficiary in
                        let parts = text.split(separator: ":")
                        guard parts.count == 2, let rank = Int(parts[1]) else {
                            throw UsageFailure(
                                "--beneficiaire '\(text)': expected MATRICULE:RANK, e.g. 2181213055202:2"
                            )
                        }
                        return VitaleCard.Beneficiary(matricule: String(parts[0]), rank: rank)
                    }
                    try directory(data).add(VitaleCard(id: id, insured: assure, beneficiaries: beneficiaries))
                    print("added card \(id)")
                }
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a card by id.")
            @OptionGroup var data: DataOptions
            @Argument(help: "Card id.") var id: String
            func run() async throws { try await reportingErrors { try remove(.card, id, data: data) } }
        }
    }

    struct LPS: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lps",
            abstract: "LPS authorisation numbers (ContexteLPS/LPS/IDAM) the sandbox accepts.",
            subcommands: [List.self, Add.self, Remove.self]
        )

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print the numbers as JSON.")
            @OptionGroup var data: DataOptions
            @Flag(help: "JSON, this listing's only output (accepted as on every listing).") var json = false
            func run() async throws { try await reportingErrors { try printJSON(try directory(data).authorisedLPS()) } }
        }

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Authorise an LPS number.")
            @OptionGroup var data: DataOptions
            @Argument(help: "Authorisation number.") var idam: String
            @Option(help: "Free label.") var label: String?
            func run() async throws {
                try await reportingErrors {
                    try directory(data).add(INSiDirectory.AuthorisedLPS(idam: idam, label: label))
                    print("authorised \(idam)")
                }
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Withdraw an LPS number.")
            @OptionGroup var data: DataOptions
            @Argument(help: "Authorisation number.") var idam: String
            func run() async throws { try await reportingErrors { try remove(.lps, idam, data: data) } }
        }
    }
}
