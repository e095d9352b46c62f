import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// `esante-sandbox reset`: a running sandbox's data back to its seeds, through its admin API, with the progress of
/// the ROR reload (minutes on a national dataset) read from `GET /admin/reset` while `POST /admin/reset` runs.
struct ResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Put a running sandbox's data back to its seeds (POST /admin/reset), showing the reload's progress."
    )

    @Option(help: "The sandbox's admin URL (default: ESANTE_SANDBOX_ADMIN_URL, else http://127.0.0.1:8080).")
    var admin: String?

    @Option(help: "The admin token, when the sandbox has one (default: ESANTE_SANDBOX_ADMIN_TOKEN).")
    var adminToken: String?

    @Flag(help: "Also the whitelist (to the seeds), onboarding requests, the clock and the CRLs (scope=all).")
    var all = false

    func run() async throws {
        try await reportingErrors {
            let base =
                (admin ?? ServeSettings.environmentValue("admin-url") ?? "http://127.0.0.1:8080")
                .trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            guard base.hasPrefix("http://") || base.hasPrefix("https://") else {
                throw UsageFailure("--admin \(base): not an http:// URL")
            }
            let token = adminToken ?? ServeSettings.environmentValue("admin-token")
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            defer { _ = client.shutdown() }
            let scope = all ? "all" : "data"
            let finished = NIOLockedValueBox(false)
            let reset = Task {
                defer { finished.withLockedValue { $0 = true } }
                let answer = try await Self.call(client, "POST", "\(base)/admin/reset?scope=\(scope)", token)
                return (answer.status, answer.text)
            }
            var progress: ProgressReport?
            // Polled while the reset runs; a small dataset resets before the first poll.
            while !finished.withLockedValue({ $0 }) {
                try await Task.sleep(for: .milliseconds(250))
                let polled = try? await Self.call(client, "GET", "\(base)/admin/reset", token)
                guard let state = polled?.json, state["running"] as? Bool == true else { continue }
                if let files = state["files"] as? Int, files > 0 {
                    if progress == nil { progress = ProgressReport("resetting", total: files, unit: "ROR seed files") }
                    progress?.update(state["filesDone"] as? Int ?? 0)
                }
            }
            let answer: (status: Int, text: String)
            do { answer = try await reset.value } catch {
                throw UsageFailure("could not reach the sandbox's admin API at \(base): \(error)")
            }
            guard answer.status == 200 else {
                throw UsageFailure("\(base)/admin/reset answered \(answer.status): \(answer.text)")
            }
            if let final = try? await Self.call(client, "GET", "\(base)/admin/reset", token).json,
                let files = final["files"] as? Int, files > 0
            {
                let report = progress ?? ProgressReport("resetting", total: files, unit: "ROR seed files")
                report.update(final["filesDone"] as? Int ?? files)
                report.finish()
            }
            print("reset done (scope \(scope))")
        }
    }

    static func call(
        _ client: HTTPClient,
        _ method: String,
        _ url: String,
        _ token: String?
    ) async throws -> (
        status: Int, json: [String: Any]?, text: String
    ) {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        if let token, !token.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await client.execute(request, timeout: .minutes(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        let data = Data(buffer: body)
        return (
            Int(response.status.code), try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            String(decoding: data, as: UTF8.self)
        )
    }
}
