import Access
import FHIRCore
import Foundation
import HTTPCommon
import RORFHIR
import SOAPCore

/// The parsers that read what a client sends, each fed arbitrary bytes. A target must never crash, trap or hang:
/// any input gets a value or a thrown error.
enum FuzzTarget: String, CaseIterable {
    /// A subject DN as `whitelist add` and the admin API read it (RFC 4514, OpenSSL, slash forms).
    case dn
    /// A FHIR search's query string (parameters, modifiers, chains, `_include`, `_sort`, `_filter`).
    case search
    /// A `_filter` expression alone.
    case filter
    /// The FHIRPath subset (profile rules, FHIRPath Patch paths), parsed then evaluated on a Location.
    case fhirpath
    /// The JSON reader every FHIR write goes through.
    case json
    /// A SOAP 1.2 envelope through the hardened XML parser (INSi, CSD, DMP).
    case soap

    func run(_ data: Data) {
        let text = String(decoding: data, as: UTF8.self)
        switch self {
        case .dn:
            _ = try? SubjectDN(parsing: text)
        case .search:
            _ = try? SearchRequest(
                type: "HealthcareService",
                items: FormEncoding.items(text),
                registry: RORSearchParameters.registry
            )
        case .filter:
            _ = try? SearchRequest(
                type: "HealthcareService",
                items: [("_filter", text)],
                registry: RORSearchParameters.registry
            )
        case .fhirpath:
            if let path = try? FHIRPath(parsing: text) { _ = path.evaluate(on: Self.location) }
        case .json:
            _ = try? JSON(parsing: data)
        case .soap:
            _ = try? SOAPEnvelope(data: data)
        }
    }

    /// A small Location with extensions, codings and a contained list to walk.
    static let location: JSONObject = {
        let text = #"""
            {"resourceType":"Location","id":"loc-1","meta":{"lastUpdated":"2026-12-07T10:00:00Z"},
             "identifier":[{"system":"urn:oid:1.2.250.1.71.4.2.2","value":"1759000001/LIT000011"}],
             "status":"active","name":"Unité","type":[{"coding":[{"system":"s","code":"02"}]}],
             "extension":[{"url":"https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-location-supported-capacity",
               "extension":[{"url":"capacity","valueQuantity":{"value":4}}]}]}
            """#
        guard case .object(let object) = try! JSON(parsing: Data(text.utf8)) else { fatalError("not an object") }
        return object
    }()

    /// `FUZZ_TARGET` names the target (libFuzzer passes no argument of ours).
    static func fromEnvironment() -> FuzzTarget {
        let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = allCases.map(\.rawValue).joined(separator: ", ")
            FileHandle.standardError.write(Data("FUZZ_TARGET must be one of \(names)\n".utf8))
            exit(2)
        }
        return target
    }
}

#if FUZZING
// Built by scripts/fuzz (ESANTE_SANDBOX_FUZZ=1: coverage and AddressSanitizer, libFuzzer without its main).
let target = FuzzTarget.fromEnvironment()

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main
struct Fuzz {
    static func main() {
        _ = target
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(
            LLVMFuzzerRunDriver(&argc, &argv) { bytes, count in
                target.run(bytes.map { Data(bytes: $0, count: count) } ?? Data())
                return 0
            }
        )
    }
}
#else
// An ordinary build replays files: `FUZZ_TARGET=json sandbox-fuzz FILE…` (the regression inputs in Tests/Corpus/fuzz).
@main
struct Replay {
    static func main() {
        let target = FuzzTarget.fromEnvironment()
        for path in CommandLine.arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
                exit(2)
            }
            target.run(data)
        }
        print("replayed \(CommandLine.arguments.count - 1) inputs on \(target.rawValue)")
    }
}
#endif
