import ArgumentParser
import FHIRCore
import Foundation
import HTTPCommon
import RORFHIR

/// `esante-sandbox explain QUERY…`: how the store answers a ROR search — the SQL, SQLite's plan, the matches and the
/// time — on a data folder's database (a running server's too). For checking plans as the data grows.
struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show the SQL, SQLite's query plan and the time of ROR FHIR searches on a data folder.",
        discussion: """
            Each QUERY is a search as a consumer writes it after the base URL, e.g. \
            'HealthcareService?location.capacity-status=02&_include=HealthcareService:location'. The id query is \
            run once, uncached (the search cache is the server's; this is what a search costs when it is cold). \
            Only the parameters the search's ids depend on count: _include, _count and _summary change the page, \
            not this query.
            """
    )

    @Argument(help: "Searches, e.g. 'Location?identifier=1759000001/LIT000011'.") var queries: [String]
    @OptionGroup var data: DataOptions
    @Flag(help: "Print the SQL and its arguments too.") var sql = false

    func run() async throws {
        try await reportingErrors {
            let store = try data.openStore()
            let repository = ResourceRepository(store: store, registry: RORSearchParameters.registry)
            for query in queries {
                let parts = query.split(separator: "?", maxSplits: 1)
                let type = String(parts.first ?? "")
                let request: SearchRequest
                do {
                    request = try SearchRequest(
                        type: type,
                        items: parts.count > 1 ? FormEncoding.items(parts[1]) : [],
                        registry: repository.registry
                    )
                } catch let error as SearchError {
                    throw UsageFailure("\(query): \(error.message)")
                }
                let explanation = try await repository.explain(request)
                print("\(query)")
                print(
                    "  \(explanation.matches) matches in \(String(format: "%.1f", explanation.milliseconds)) ms (uncached)"
                )
                if sql {
                    print("  SQL: \(explanation.sql)")
                    print("  arguments: \(explanation.arguments.joined(separator: ", "))")
                }
                for line in explanation.plan { print("  plan: \(line)") }
            }
        }
    }
}
