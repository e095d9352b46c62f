import ArgumentParser
import FHIRCore
import Foundation

/// `esante-sandbox validate FILE…`: what `$validate` answers, offline — the FHIR base structure and the ROR profile
/// rules of the seeds' terminology folder, one OperationOutcome per file.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate FHIR JSON resources as the ROR's $validate does, without a server.",
        discussion: """
            Checks each FILE (a resource, or a Parameters holding one as `resource`) against the FHIR R4 structure \
            (unknown properties, primitive types and formats, cardinalities, choice types, contained resources) and \
            the ROR profile rules, as sent (meta.lastUpdated included). Prints each file's OperationOutcome; exit \
            status 1 when any file has an issue, 2 when a file cannot be read. --repeat N validates each file N \
            times and prints the time one validation takes (µs, median of the runs).
            """
    )

    @Argument(help: "FHIR JSON files.") var files: [String]
    @Option(help: "Seeds folder whose terminology/ holds the rules (default: the built-in seeds).") var seeds: String?
    @Option(help: "Validate each file this many times and print the time per validation.") var `repeat` = 1

    func run() async throws {
        var failed = false
        try await reportingErrors {
            guard `repeat` >= 1 else { throw UsageFailure("--repeat must be at least 1") }
            let folder = try SeedsFolder.resolve(seeds).appendingPathComponent("terminology")
            let validator: ProfileValidator
            do { validator = try ProfileValidator.load(from: folder) } catch {
                throw UsageFailure("the rules in \(folder.path) cannot be read: \(error)")
            }
            for file in files {
                let resource: JSONObject
                do {
                    guard case .object(let object) = try JSON(parsing: Data(contentsOf: URL(fileURLWithPath: file)))
                    else {
                        throw UsageFailure("\(file): not a JSON object")
                    }
                    resource = OperationOutcome.validationCandidate(object)
                } catch let error as UsageFailure {
                    throw error
                } catch {
                    throw UsageFailure("\(file): \(error)")
                }
                var issues = validator.validate(resource)
                if `repeat` > 1 {
                    var times: [Double] = []
                    for _ in 0..<`repeat` {
                        let start = ContinuousClock.now
                        issues = validator.validate(resource)
                        let elapsed = ContinuousClock.now - start
                        times.append(
                            Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6
                        )
                    }
                    times.sort()
                    let size = (try? Data(contentsOf: URL(fileURLWithPath: file)).count) ?? 0
                    print(
                        "\(file): \(size) bytes, \(String(format: "%.1f", times[times.count / 2])) µs per validation (median of \(`repeat`), p90 \(String(format: "%.1f", times[times.count * 9 / 10])) µs)"
                    )
                }
                let outcome = OperationOutcome(validation: issues, noIssue: "No issue")
                print("\(file): \(String(decoding: outcome.jsonData(), as: UTF8.self))")
                failed = failed || !issues.isEmpty
            }
        }
        if failed { throw ExitCode(1) }
    }
}
