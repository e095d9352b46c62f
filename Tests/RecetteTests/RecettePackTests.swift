import Foundation
import HTTPTypes
import Testing

@testable import Recette
@testable import SandboxServer
@testable import SandboxTestSupport

/// The packs as data: every shipped pack loads; a pack the judge could not apply is refused with the file, scenario
/// and step named; the admin API's refusals.
@Suite("Recette: packs and the admin API")
struct RecettePackTests {
    @Test func theShippedPacksLoad() throws {
        let packs = try RecettePacks.load(from: SharedPKI.repositorySeeds)
        #expect(packs.packs.map(\.id) == ["csd-consumer", "dmp", "insi", "mes", "ror-consumer", "ror-feeder"])
        for pack in packs.packs {
            #expect(!pack.version.isEmpty && !pack.scenarios.isEmpty, "\(pack.id)")
        }
    }

    static func pack(_ steps: String) -> Data {
        Data(
            """
            {"id": "p", "version": "1", "title": "t", "scenarios": [{"id": "S", "title": "s", "steps": [\(steps)]}]}
            """.utf8
        )
    }

    @Test(arguments: [
        ("{", "x.json: not a scenario pack"),
        (
            #"{"id": "a", "title": "t", "match": {}, "after": "b"}, {"id": "b", "title": "t", "match": {}}"#,
            "scenario S, step a: after 'b' is not an earlier step of the scenario"
        ),
        (#"{"id": "a", "title": "t", "match": {}, "rule": "every"}"#, "step a: rule every needs check"),
        (
            #"{"id": "a", "title": "t", "match": {}, "withinSeconds": 3}"#,
            "withinSeconds and notBeforeSeconds need after"
        ),
        (
            #"{"id": "a", "title": "t", "match": {}}, {"id": "a", "title": "t", "match": {}}"#,
            "step a: the id is given twice"
        ),
        (
            #"{"id": "a", "title": "t", "match": {"body": [{"fhirpath": "a.b(", "exists": true}]}}"#,
            "step a: FHIRPath 'a.b('"
        ),
        (
            #"{"id": "a", "title": "t", "match": {"body": [{"xpath": "//a", "form": "b"}]}}"#,
            "a body predicate has one of fhirpath, xpath, form or contains"
        ),
        (#"{"id": "a", "title": "t", "match": {}, "rule": "sometimes"}"#, "not a scenario pack"),
    ])
    func packsTheJudgeCannotApplyAreRefused(steps: String, message: String) {
        let data = steps == "{" ? Data("{".utf8) : Self.pack(steps)
        #expect {
            try RecettePack.load(data, name: "x.json")
        } throws: { error in
            "\(error)".hasPrefix("x.json: ") && "\(error)".contains(message)
        }
    }

    /// A broken pack in the seeds stops the start, naming its file.
    @Test func aBrokenPackStopsTheStart() throws {
        let seeds = try SharedPKI.emptySeeds()
        try FileManager.default.createDirectory(
            at: seeds.appendingPathComponent("recette"),
            withIntermediateDirectories: true
        )
        try Self.pack(#"{"id": "a", "title": "t", "match": {}, "rule": "every"}"#)
            .write(to: seeds.appendingPathComponent("recette/broken.json"))
        var configuration = SandboxConfiguration()
        configuration.inMemory = true
        configuration.pkiDirectory = SharedPKI.pki.directory
        configuration.seedsDirectory = seeds
        #expect {
            _ = try Sandbox(configuration: configuration)
        } throws: { error in
            "\(error)".contains("Seeds/recette/broken.json: scenario S, step a: rule every needs check")
        }
    }

    @Test func adminAPIRefusalsAreNamed() async throws {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        try await running.whileRunning {
            for (body, message) in [
                (#"{"pack": "nope", "client": "CN=X"}"#, "no pack 'nope'"),
                (#"{"pack": "dmp", "client": "pas un DN"}"#, "is neither a subject DN"),
                (#"{"pack": "dmp", "client": "CN=X", "minutes": 0}"#, "the run's duration"),
                (#"{"pack": "dmp"}"#, "client"),
            ] {
                let response = try await running.admin("/admin/recette/runs", method: .post, body: body)
                #expect(response.status == .badRequest, "\(body)")
                #expect((try response.json()["error"] as? String)?.contains(message) == true, "\(response.text)")
            }
            #expect(try await running.admin("/admin/recette/runs/42").status == .notFound)
            #expect(try await running.admin("/admin/recette/runs/x").status == .badRequest)
            #expect(try await running.admin("/admin/recette/runs/42/close", method: .post).status == .notFound)
            let id = try await RunDriver.start(running, pack: "dmp", client: "CN=X")
            let badFormat = try await running.admin("/admin/recette/runs/\(id)/report?format=pdf")
            #expect(badFormat.status == .badRequest)
            // An open run with nothing seen: running, its steps waiting.
            let status = try RunDriver.Report(try await running.admin("/admin/recette/runs/\(id)").json())
            #expect(status.verdict == "running")
            #expect(status.steps["SBX-DMP-ALIM/D1"]?.status == "waiting")
            let junit = try await running.admin("/admin/recette/runs/\(id)/report?format=junit")
            #expect(junit.headers[.contentType] == "application/xml")
            #expect(junit.text.contains("<skipped message=\"waiting"))
        }
    }

    /// The console: the form refuses a bad client next to its field, starts a run (303 to its page, which reloads
    /// itself while open), and closes it.
    @Test func consoleStartsShowsAndClosesARun() async throws {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        try await running.whileRunning {
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let page = try await running.admin("/console/recette")
            #expect(page.text.contains("id=\"recette-start\""))
            #expect(page.text.contains("CN=INSI-AUTO"))  // the demo clients are offered
            let refused = try await running.admin(
                "/console/recette",
                method: .post,
                body: "pack=dmp&client=pas+un+DN",
                headers: form
            )
            #expect(refused.status == .badRequest)
            #expect(refused.text.contains("class=\"error\"") && refused.text.contains("is neither a subject DN"))
            let started = try await running.admin(
                "/console/recette",
                method: .post,
                body: "pack=insi&client=CN%3DX&productName=Mon+LPS",
                headers: form
            )
            #expect(started.status == .seeOther)
            let location = try #require(started.headers[.location])
            let open = try await running.admin(location)
            #expect(open.text.contains("http-equiv=\"refresh\""))
            #expect(open.text.contains("SBX-INSI-BOUCLE"))
            #expect(open.text.contains("<svg id=\"recette-summary\""))
            #expect(try await running.admin(location + "/close", method: .post).status == .seeOther)
            let closed = try await running.admin(location)
            #expect(!closed.text.contains("http-equiv=\"refresh\""))
            #expect(closed.text.contains(">incomplete<"))
            #expect(try await running.admin("/console/recette/99").status == .notFound)
        }
    }
}
