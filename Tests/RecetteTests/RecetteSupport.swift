import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import Recette
@testable import SandboxServer
@testable import SandboxTestSupport

/// A run driven through the admin API, as a publisher's CI or the console would.
enum RunDriver {
    /// `POST /admin/recette/runs`; the run's id.
    static func start(_ running: RunningSandbox, pack: String, client: String) async throws -> Int64 {
        let body = try JSONSerialization.data(withJSONObject: [
            "pack": pack, "client": client, "productName": "Logiciel de test", "productVersion": "1.2.3",
        ])
        let response = try await running.admin(
            "/admin/recette/runs",
            method: .post,
            body: String(decoding: body, as: UTF8.self)
        )
        #expect(response.status == .created, "\(response.text)")
        return try #require(try response.json()["id"] as? Int).int64
    }

    /// `POST /admin/recette/runs/{id}/close`, once the journal has the client's last rows.
    static func close(_ running: RunningSandbox, _ id: Int64) async throws -> Report {
        running.sandbox.journal.flush()
        let response = try await running.admin("/admin/recette/runs/\(id)/close", method: .post)
        #expect(response.status == .ok, "\(response.text)")
        return try Report(response.json())
    }

    /// The JSON report, read back.
    struct Report {
        var verdict: String
        /// By `scenario/step`: status and message.
        var steps: [String: (status: String, message: String)]
        var json: [String: Any]

        init(_ json: [String: Any]) throws {
            self.json = json
            verdict = try #require(json["verdict"] as? String)
            var steps: [String: (String, String)] = [:]
            for scenario in json["scenarios"] as? [[String: Any]] ?? [] {
                for step in scenario["steps"] as? [[String: Any]] ?? [] {
                    steps["\(scenario["id"] ?? "")/\(step["id"] ?? "")"] = (
                        step["status"] as? String ?? "", step["message"] as? String ?? ""
                    )
                }
            }
            self.steps = steps
        }

        /// The steps not passed, for failure messages.
        var problems: String {
            steps.filter { $0.value.status != "pass" }.sorted { $0.key < $1.key }
                .map { "\($0.key) \($0.value.status): \($0.value.message)" }.joined(separator: "\n")
        }
    }

    static func files(_ running: RunningSandbox, _ name: String) throws -> ClientFiles {
        let files = try #require(running.info.clientCertificates[name])
        return ClientFiles(folder: files.certificate.deletingLastPathComponent(), issued: try SharedPKI.issued(files))
    }
}

extension Int {
    var int64: Int64 { Int64(self) }
}
