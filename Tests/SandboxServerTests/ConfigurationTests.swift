import Foundation
import SandboxServer
import Testing

@testable import SandboxTestSupport

/// `serve` settings from flags, `ESANTE_SANDBOX_*` variables and a `--config` JSON file, flags winning.
@Suite("Configuration")
struct ConfigurationTests {
    /// The built binary with extra environment variables.
    static func sandbox(_ environment: [String: String], _ arguments: [String]) async throws -> Shell.Output {
        let assignments = environment.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
        let quoted = ([Shell.executable.path] + arguments).map { "'\($0)'" }.joined(separator: " ")
        return try await Shell.run("env \(assignments) \(quoted)")
    }

    /// `--print-config` lines as flag → (value, origin).
    static func settings(_ output: String) -> [String: (value: String, origin: String)] {
        var result: [String: (String, String)] = [:]
        for line in output.split(separator: "\n") {
            let columns = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard columns.count >= 3, columns[0].hasPrefix("--") else { continue }
            result[String(columns[0].dropFirst(2))] = (columns[1], columns[2...].joined(separator: " "))
        }
        return result
    }

    @Test func flagsWinOverTheEnvironmentWhichWinsOverTheFile() async throws {
        let dir = try CommandLineTests.folder()
        let file = dir.appendingPathComponent("sandbox.json")
        try Data(
            #"{"port": 7001, "adminPort": 7081, "rejectMode": "http", "requestTimeout": 12.5, "inMemory": true, "logLevel": "info"}"#
                .utf8
        ).write(to: file)
        let output = try await Self.sandbox(
            [
                "ESANTE_SANDBOX_ADMIN_PORT": "7082", "ESANTE_SANDBOX_ADMIN_TOKEN": "s3cret",
                "ESANTE_SANDBOX_KEY_TYPE": "p256",
            ],
            ["serve", "--config", file.path, "--port", "7000", "--print-config"]
        )
        #expect(output.status == 0, "\(output.stderr)")
        let settings = Self.settings(output.stdout)
        #expect(settings["port"]?.value == "7000")
        #expect(settings["port"]?.origin == "flag --port")
        #expect(settings["admin-port"]?.value == "7082")
        #expect(settings["admin-port"]?.origin == "environment ESANTE_SANDBOX_ADMIN_PORT")
        #expect(settings["reject-mode"]?.value == "http")
        #expect(settings["reject-mode"]?.origin == "file \(file.path)")
        #expect(settings["request-timeout"]?.value == "12.5")
        #expect(settings["in-memory"]?.value == "true")
        #expect(settings["key-type"]?.value == "p256")
        #expect(settings["tls-profile"]?.origin == "default")
        #expect(settings["tls-profile"]?.value == "intermediate")
        // The admin token's value is never printed.
        #expect(settings["admin-token"]?.value == "********")
        #expect(!output.stdout.contains("s3cret"))
    }

    @Test(
        arguments: [
            (
                ["ESANTE_SANDBOX_PORT": "abc"], nil,
                "environment ESANTE_SANDBOX_PORT: 'abc' is not a valid value for --port"
            ),
            (["ESANTE_SANDBOX_REJECT_MODE": "htp"], nil, "'htp' is not a valid value for --reject-mode"),
            (["ESANTE_SANDBOX_PREBUILT": "copies"], nil, "'copies' is not a valid value for --prebuilt"),
            ([:], #"{"rejectMode": "htp"}"#, "'htp' is not a valid value for --reject-mode"),
            ([:], #"{"port": [1, 2]}"#, "port must be an integer"),
            ([:], "port = 1", "not a JSON object of settings"),
            (
                ["ESANTE_SANDBOX_CONFIG": "/nonexistent/sandbox.json"], nil,
                "--config /nonexistent/sandbox.json: no such file"
            ),
        ] as [([String: String], String?, String)]
    )
    func aBadSettingIsRefusedNamingWhereItCameFrom(
        environment: [String: String],
        file: String?,
        message: String
    ) async throws {
        var arguments = ["serve", "--print-config"]
        if let file {
            let url = try CommandLineTests.folder().appendingPathComponent("bad.json")
            try Data(file.utf8).write(to: url)
            arguments += ["--config", url.path]
        }
        let output = try await Self.sandbox(environment, arguments)
        #expect(output.status == 2)
        #expect(output.stderr.contains(message), "\(output.stderr)")
    }

    /// A journal body budget below 1 MiB would prune every row at once: refused at start, naming the flag.
    @Test func aJournalBodyBudgetBelowOneMebibyteIsRefused() async throws {
        let dir = try CommandLineTests.folder()
        let output = try await Self.sandbox(
            [:],
            ["serve", "--data-dir", dir.path, "--port", "0", "--admin-port", "0", "--journal-max-bytes", "1000"]
        )
        #expect(output.status != 0)
        #expect(output.stderr.contains("--journal-max-bytes must be at least 1048576"), "\(output.stderr)")
    }

    @Test func serveTakesItsSettingsFromTheEnvironment() async throws {
        let dir = try CommandLineTests.folder()
        let ready = dir.appendingPathComponent("ready.json")
        let process = Process()
        process.executableURL = Shell.executable
        process.arguments = ["serve"]
        process.environment = ProcessInfo.processInfo.environment.merging([
            "ESANTE_SANDBOX_DATA_DIR": dir.appendingPathComponent("data").path, "ESANTE_SANDBOX_PORT": "0",
            "ESANTE_SANDBOX_ADMIN_PORT": "0", "ESANTE_SANDBOX_READY_FILE": ready.path,
            "ESANTE_SANDBOX_KEY_TYPE": "p256", "ESANTE_SANDBOX_KEY_POOL_DEPTH": "0",
            "ESANTE_SANDBOX_ENVIRONMENTS": "bac-a-sable,production",
        ]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { process.terminate() }
        let info = try await AnywhereTests.waitForReadyFile(ready)
        #expect(info.environments.map(\.name) == ["bac-a-sable", "production"])
        #expect(info.caCertificateFile.hasPrefix(dir.appendingPathComponent("data/pki").path))
        // Another command finds the same data folder through the same variable.
        let list = try await Self.sandbox(
            ["ESANTE_SANDBOX_DATA_DIR": dir.appendingPathComponent("data").path],
            ["whitelist", "list", "--json"]
        )
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("ror-fhir"))
    }
}

/// `esante-sandbox reset` against a running sandbox's admin API, and `GET /admin/reset`.
@Suite("Reset command")
struct ResetCommandTests {
    @Test func resetPutsTheSeedsBackAndShowsTheROR() async throws {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds) { $0.adminToken = "s3cret" }
        try await running.whileRunning {
            let admin = "http://127.0.0.1:\(running.adminPort)"
            let output = try await Shell.sandbox(["reset", "--admin", admin, "--admin-token", "s3cret"])
            #expect(output.status == 0, "\(output.stderr)")
            // Not a terminal: the final line of the progress, then the result.
            #expect(output.stdout.contains("resetting: 100% (1/1 ROR seed files)\n"), "\(output.stdout)")
            #expect(output.stdout.hasSuffix("reset done (scope data)\n"))
            let state = try await running.admin("/admin/reset", headers: [.authorization: "Bearer s3cret"]).json()
            #expect(state["running"] as? Bool == false)
            #expect(state["files"] as? Int == 1)
            #expect(state["filesDone"] as? Int == 1)
            #expect(state["finishedAt"] != nil)

            let refused = try await Shell.sandbox(["reset", "--admin", admin])
            #expect(refused.status == 2)
            #expect(refused.stderr.contains("/admin/reset answered 401"), "\(refused.stderr)")
        }
    }

    @Test(arguments: [
        (["reset", "--admin", "ftp://127.0.0.1:1"], "not an http:// URL"),
        (["reset", "--admin", "http://127.0.0.1:1"], "could not reach the sandbox's admin API"),
    ])
    func aSandboxThatCannotBeReachedIsSaid(arguments: [String], message: String) async throws {
        let output = try await Shell.sandbox(arguments)
        #expect(output.status == 2)
        #expect(output.stderr.contains(message), "\(output.stderr)")
    }
}
