import Access
import FHIRCore
import Foundation
import GRDB
import RORFHIR
import Store
import Testing
import X509

@testable import SandboxTestSupport

@Suite("Command line")
struct CommandLineTests {
    static let dn = "CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR"

    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// `esante-sandbox serve` on free ports, as a child process.
    static func serve(dir: URL, seeds: URL, ready: URL) throws -> Process {
        let process = Process()
        process.executableURL = Shell.executable
        process.arguments = [
            "serve", "--data-dir", dir.path, "--port", "0", "--admin-port", "0", "--key-type", "p256",
            "--seeds", seeds.path, "--ready-file", ready.path,
        ]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test func certsIssuePrintsTheDNAndSPKIAndWritesTheFiles() async throws {
        let dir = try Self.folder()
        let output = try await Shell.sandbox([
            "certs", "issue", "--pki-dir", dir.appendingPathComponent("pki").path, "--key-type", "p256",
            "--subject", "C = FR, ST = Paris (75), O = GIP - TEST3012, OU = 33333333333, CN = CLIENT_TEST_RORN",
            "--out", dir.appendingPathComponent("out").path, "--expired",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("subject DN (RFC 4514): \(Self.dn)"))
        #expect(output.stdout.contains("SPKI SHA-256 (hex):"))
        #expect(output.stdout.contains("negative kind:         expired"))
        for name in ["cert.pem", "key.pem", "bundle.pem"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/\(name)").path))
        }
        // --environment production: issued by the production PKI, minted beside (pki-production).
        let production = try await Shell.sandbox([
            "certs", "issue", "--pki-dir", dir.appendingPathComponent("pki").path, "--key-type", "p256",
            "--environment", "production",
            "--subject", Self.dn, "--out", dir.appendingPathComponent("prod").path,
        ])
        #expect(production.status == 0, "\(production.stderr)")
        let pem = try String(contentsOf: dir.appendingPathComponent("prod/cert.pem"), encoding: .utf8)
        #expect(SubjectDN(try Certificate(pemEncoded: pem).issuer).rfc4514.contains("SANDBOX PROD AC IGC-SANTE"))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("pki-production/ca-bundle.pem").path))
    }

    @Test(arguments: [
        (["certs", "issue", "--subject", "CN=x,FOO=bar", "--out", "/tmp/never"], "unknown attribute type 'FOO'"),
        (["certs", "issue", "--subject", "CN=x\\", "--out", "/tmp/never"], "malformed DN"),
        (
            ["certs", "issue", "--subject", "CN=x", "--out", "/tmp/never", "--expired", "--revoked"],
            "at most one negative kind"
        ),
        (["certs", "revoke", "zz-not-hex"], "is not a serial number"),
        (["whitelist", "add", "--service", "ror-fhir", "--subject-dn", "CN=x"], "no sandbox database"),
        (["serve", "--host", "0.0.0.0", "--port", "0", "--admin-port", "0"], "--admin-token"),
        (["serve", "--seeds", "/nonexistent/seeds", "--port", "0", "--admin-port", "0"], "no such folder"),
        (["journal", "--decision", "maybe"], "must be accepted or refused"),
        (["serve", "--whitelist-delay", "soon", "--port", "0", "--admin-port", "0"], "whitelist delay 'soon'"),
        (
            ["serve", "--clock-speed", "0", "--port", "0", "--admin-port", "0"],
            "--clock-speed must be between 1 and 100000"
        ),
        (
            ["serve", "--environments", "bac-a-sable,Prod", "--port", "0", "--admin-port", "0"],
            "'Prod' is not a valid name"
        ),
        (
            ["serve", "--environments", "a,b", "--port", "65535", "--admin-port", "0"],
            "no room for 2 environment listeners"
        ),
        (["onboarding", "validate", "1"], "no sandbox database"),
    ])
    func badInputIsAClearErrorWithExitStatus2(arguments: [String], message: String) async throws {
        let dir = try Self.folder()
        let output = try await Shell.sandbox(arguments + ["--data-dir", dir.path])
        #expect(output.status == 2, "\(arguments): \(output.stdout) \(output.stderr)")
        #expect(output.stderr.contains("error: "))
        #expect(output.stderr.contains(message), "\(output.stderr)")
        #expect(!output.stderr.contains("Fatal error"))
    }

    /// The onboarding flow from the command line, on a data folder; refused transitions exit 2 with the reason.
    @Test func onboardingCommandsDriveTheFlow() async throws {
        let dir = try Self.folder()
        _ = try SandboxStore.open(path: dir.appendingPathComponent("sandbox.sqlite").path)
        let data = ["--data-dir", dir.path]
        let submitted = try await Shell.sandbox(
            [
                "onboarding", "submit", "--kind", "eai-regional", "--direction", "feed",
                "--service", "ror-fhir", "--contact", "eai@example.test", "--subject-dn", Self.dn,
                "--establishment", "750000001", "--establishment", "750000002",
            ] + data
        )
        #expect(submitted.status == 0, "\(submitted.stderr)")
        #expect(
            submitted.stdout.hasPrefix("#1 submitted eai-regional feed ror-fhir@bac-a-sable DN \(Self.dn)"),
            "\(submitted.stdout)"
        )
        let early = try await Shell.sandbox(["onboarding", "whitelist", "1"] + data)
        #expect(early.status == 2)
        #expect(
            early.stderr.contains(
                "error: request 1 is submitted: it cannot become whitelisted (next: validated or rejected)"
            ),
            "\(early.stderr)"
        )
        #expect(
            try await Shell.sandbox(["onboarding", "validate", "1", "--actor", "comité", "--reason", "ok"] + data)
                .status == 0
        )
        let done = try await Shell.sandbox(["onboarding", "tests-done", "1"] + data)
        #expect(done.stdout.hasPrefix("#1 whitelisted"), "delay 0: \(done.stdout) \(done.stderr)")
        let listed = try await Shell.sandbox(["whitelist", "list"] + data)
        #expect(listed.stdout.contains("feed DN \(Self.dn) establishments=750000001,750000002"), "\(listed.stdout)")
        let edited = try await Shell.sandbox(
            ["onboarding", "establishments", "1", "--establishment", "750000003"] + data
        )
        #expect(edited.status == 0, "\(edited.stderr)")
        #expect(try await Shell.sandbox(["whitelist", "list"] + data).stdout.contains("establishments=750000003"))
        let shown = try await Shell.sandbox(["onboarding", "show", "1"] + data)
        #expect(shown.stdout.contains("submitted → validated by comité: ok"), "\(shown.stdout)")
        let bad = try await Shell.sandbox(
            [
                "onboarding", "submit", "--kind", "hospital", "--direction", "feed", "--service", "ror-fhir",
                "--contact", "c",
            ] + data
        )
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("kind: 'hospital'"))
        let clock = try await Shell.sandbox(["onboarding", "clock", "--speed", "3600"] + data)
        #expect(clock.stdout.contains("×3600 (1 h per second)"), "\(clock.stdout)")
        #expect(
            try await Shell.sandbox(["onboarding", "list", "--state", "whitelisted"] + data).stdout.split(
                separator: "\n"
            ).count == 1
        )
    }

    /// `demo` plays the whole story against a sandbox it starts, and exits 0 when every step behaved as announced.
    @Test func demoPlaysTheStoryEndToEnd() async throws {
        let output = try await Shell.sandbox([
            "demo", "--seeds", SharedPKI.repositorySeeds.path, "--whitelist-delay", "0",
        ])
        #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
        for line in [
            "2. It calls the ROR capacity feed before being whitelisted: refused.",
            "403 Forbidden — The certificate subject DN",
            "state validated, client id sandbox-client-1", "the consumer sees 4 available beds",
            "Done: every step behaved as announced.",
        ] {
            #expect(output.stdout.contains(line), "\(line)")
        }
    }

    /// Against a running sandbox where the publisher is already whitelisted, step 2 is not as announced: exit 1.
    @Test func demoFailsWhenAStepDoesNotBehaveAsAnnounced() async throws {
        let dir = try Self.folder()
        let ready = dir.appendingPathComponent("ready.json")
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds, readyFile: ready)
        try await running.whileRunning {
            try running.whitelist(
                "ror-fhir",
                dn: "CN=DEMO-EDITEUR-LITS,OU=0002 759000001,O=EDITEUR DEMO GESTION DES LITS,ST=Paris (75),C=FR"
            )
            let output = try await Shell.sandbox([
                "demo", "--ready-file", ready.path, "--seeds", SharedPKI.repositorySeeds.path,
            ])
            #expect(output.status == 1, "\(output.stdout)\n\(output.stderr)")
            #expect(output.stderr.contains("demo failed: step 2: expected 403"), "\(output.stderr)")
            let missing = try await Shell.sandbox([
                "demo", "--ready-file", dir.appendingPathComponent("none.json").path,
            ])
            #expect(missing.status == 2)
            #expect(missing.stderr.contains("cannot read the ready file"))
            let delay = try await Shell.sandbox(["demo", "--whitelist-delay", "5 days"])
            #expect(delay.status == 2)
            #expect(delay.stderr.contains("--whitelist-delay: whitelist delay '5 days'"), "\(delay.stderr)")
        }
    }

    /// `journal --follow --json` prints rows written by another process as they arrive.
    @Test func journalFollowPrintsNewRows() async throws {
        let dir = try Self.folder()
        let store = try SandboxStore.open(path: dir.appendingPathComponent("sandbox.sqlite").path)
        let journal = Journal(store: store)
        journal.record(
            JournalEntry(
                environment: "bac-a-sable",
                service: "insi",
                method: "POST",
                path: "/lps/before",
                status: 200,
                decision: .accepted,
                reason: "whitelisted",
                identity: nil,
                durationMs: 1
            )
        )
        journal.flush()
        let process = Process()
        process.executableURL = Shell.executable
        process.arguments = ["journal", "--data-dir", dir.path, "--follow", "--json", "--service", "insi"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        try await Task.sleep(for: .milliseconds(700))
        journal.record(
            JournalEntry(
                environment: "bac-a-sable",
                service: "insi",
                method: "POST",
                path: "/lps/after",
                status: 403,
                decision: .refused,
                reason: "not-whitelisted",
                identity: nil,
                durationMs: 1
            )
        )
        journal.record(
            JournalEntry(
                environment: "bac-a-sable",
                service: "ror-fhir",
                method: "GET",
                path: "/ws-diffusion-fhir/x",
                status: 200,
                decision: .accepted,
                reason: "whitelisted",
                identity: nil,
                durationMs: 1
            )
        )
        journal.flush()
        try await Task.sleep(for: .milliseconds(1200))
        process.terminate()
        try await Shell.waitForExit(process)
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = output.split(separator: "\n")
        #expect(lines.count == 2, "\(output)")
        #expect(lines.first?.contains("\"path\":\"/lps/before\"") == true)
        #expect(lines.last?.contains("\"path\":\"/lps/after\"") == true)
        #expect(!output.contains("ws-diffusion-fhir"))
    }

    /// `seed generate` is deterministic, and a part of a large dataset is the same as in the whole.
    @Test func seedGenerateIsDeterministic() async throws {
        let dir = try Self.folder()
        for name in ["a", "b"] {
            let output = try await Shell.sandbox([
                "seed", "generate", "--establishments", "5", "--seed", "7", "--out",
                dir.appendingPathComponent(name).path,
            ])
            #expect(output.status == 0, "\(output.stderr)")
        }
        let a = try Data(contentsOf: dir.appendingPathComponent("a/ror/dataset.json"))
        let b = try Data(contentsOf: dir.appendingPathComponent("b/ror/dataset.json"))
        #expect(a == b)
        let bundle = try JSONSerialization.jsonObject(with: a) as? [String: Any]
        #expect((bundle?["entry"] as? [Any])?.count ?? 0 > 20)
        let bad = try await Shell.sandbox([
            "seed", "generate", "--establishments", "0", "--out", dir.appendingPathComponent("c").path,
        ])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--establishments must be between"))
        // The prebuilt database is written beside the JSON, and `seed prebuild` rebuilds it; without JSON it says so.
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a/ror/dataset.sqlite").path))
        let prebuilt = try await Shell.sandbox(["seed", "prebuild", "--seeds", dir.appendingPathComponent("a").path])
        #expect(prebuilt.status == 0, "\(prebuilt.stderr)")
        #expect(
            prebuilt.stdout.contains(
                "prebuilt \(((try JSONSerialization.jsonObject(with: a) as? [String: Any])?["entry"] as? [Any])?.count ?? -1) resources"
            )
        )
        let empty = try await Shell.sandbox(["seed", "prebuild", "--seeds", dir.appendingPathComponent("c").path])
        #expect(empty.status == 2)
        #expect(empty.stderr.contains("no JSON seed file"))
        let jsonOnly = try await Shell.sandbox([
            "seed", "generate", "--establishments", "2", "--no-prebuild", "--out", dir.appendingPathComponent("a").path,
        ])
        #expect(jsonOnly.status == 0, "\(jsonOnly.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("a/ror/dataset.sqlite").path))
        // A smaller generation over a larger one leaves none of the larger one's parts behind.
        let parts = try await Shell.sandbox([
            "seed", "generate", "--establishments", "260", "--no-prebuild", "--out",
            dir.appendingPathComponent("p").path,
        ])
        #expect(parts.status == 0, "\(parts.stderr)")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("p/ror").path).sorted()
                == ["dataset-0001.json", "dataset-0002.json"]
        )
        // Not a terminal: plain progress lines, every 10 %, instead of a bar redrawn in place.
        #expect(parts.stdout.contains("generating: 100% (260/260 establishments)\n"), "\(parts.stdout)")
        #expect(!parts.stdout.contains("\r"))
        let stored = try await Shell.sandbox(["seed", "prebuild", "--seeds", dir.appendingPathComponent("p").path])
        #expect(stored.status == 0, "\(stored.stderr)")
        #expect(stored.stdout.contains("storing: 50% (1/2 seed files)\nstoring: 100% (2/2 seed files)\nindexing…\n"))
        _ = try await Shell.sandbox([
            "seed", "generate", "--establishments", "3", "--no-prebuild", "--out", dir.appendingPathComponent("p").path,
        ])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("p/ror").path) == [
                "dataset.json"
            ]
        )
    }

    /// A data folder whose database is not one, or is locked by another process, stops `serve` with a sentence saying
    /// what to do and exit status 2 (it printed SQLite's raw error and exited 1).
    @Test func unusableDatabaseAtStartIsSaidInWords() async throws {
        let corrupt = try Self.folder()
        try Data("pas une base SQLite, pas une base SQLite".utf8).write(
            to: corrupt.appendingPathComponent("sandbox.sqlite")
        )
        let refused = try await Shell.sandbox(["serve", "--data-dir", corrupt.path, "--port", "0", "--admin-port", "0"])
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("is not a usable sandbox database"), "\(refused.stderr)")

        let locked = try Self.folder()
        let path = locked.appendingPathComponent("sandbox.sqlite").path
        _ = try SandboxStore.open(path: path)
        var holding = Configuration()
        holding.allowsUnsafeTransactions = true  // the lock is held across accesses on purpose
        holding.busyMode = .timeout(10)  // the store just opened may still be checkpointing
        let holder = try DatabaseQueue(path: path, configuration: holding)
        try await holder.writeWithoutTransaction { db in try db.execute(sql: "BEGIN EXCLUSIVE") }
        let busy = try await Shell.sandbox(["serve", "--data-dir", locked.path, "--port", "0", "--admin-port", "0"])
        #expect(busy.status == 2, "\(busy.stderr)")
        #expect(busy.stderr.contains("is locked by another process"), "\(busy.stderr)")
        try await holder.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
    }

    /// The CLI edits the same database a server uses; a malformed DN is refused before anything is stored.
    @Test func whitelistCommandsRoundTrip() async throws {
        let dir = try Self.folder()
        _ = try SandboxStore.open(path: dir.appendingPathComponent("sandbox.sqlite").path)
        let add = try await Shell.sandbox([
            "whitelist", "add", "--data-dir", dir.path, "--service", "ror-fhir",
            "--subject-dn", "/C=FR/ST=Paris (75)/O=GIP - TEST3012/OU=33333333333/CN=CLIENT_TEST_RORN",
        ])
        #expect(add.status == 0, "\(add.stderr)")
        #expect(add.stdout.contains("DN \(Self.dn)"))
        // Again: refused naming the entry, unless --replace.
        let again = ["whitelist", "add", "--data-dir", dir.path, "--service", "ror-fhir", "--subject-dn", Self.dn]
        let refused = try await Shell.sandbox(again + ["--role", "feed"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("is already whitelisted for ror-fhir"), "\(refused.stderr)")
        #expect(try await Shell.sandbox(again + ["--role", "feed", "--replace"]).status == 0)
        let bad = try await Shell.sandbox([
            "whitelist", "add", "--data-dir", dir.path, "--service", "ror-fhir", "--subject-dn", "CN",
        ])
        #expect(bad.status == 2)
        let list = try await Shell.sandbox(["whitelist", "list", "--data-dir", dir.path, "--json"])
        let entries = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
        #expect(entries?.count == 1)
        let id = try #require(entries?.first?["id"] as? Int)
        #expect(try await Shell.sandbox(["whitelist", "remove", "--data-dir", dir.path, "\(id)"]).status == 0)
        #expect(try await Shell.sandbox(["whitelist", "remove", "--data-dir", dir.path, "\(id)"]).status == 2)
    }

    /// `insi identities|cards|lps`: bad NIR keys refused (exit 2) unless `--allow-bad-key`, cards need known identities.
    @Test func insiCommandsEditTheTestBase() async throws {
        let dir = try Self.folder()
        _ = try SandboxStore.open(path: dir.appendingPathComponent("sandbox.sqlite").path)
        let identity = [
            "insi", "identities", "add", "--data-dir", dir.path, "--matricule", "1810363220456", "--cle", "60",
            "--nom", "HERMANN", "--prenoms", "GATIEN", "--sexe", "M", "--date-naissance", "1981-03-24",
            "--lieu-naissance", "63220",
        ]
        let refused = try await Shell.sandbox(identity)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("does not verify"), "\(refused.stderr)")
        #expect(try await Shell.sandbox(identity + ["--allow-bad-key"]).status == 0)
        let badDate = try await Shell.sandbox(
            identity.map { $0 == "1981-03-24" ? "1981-02-30" : $0 } + ["--allow-bad-key"]
        )
        #expect(badDate.status == 2 && badDate.stderr.contains("DateNaissance"))
        let list = try await Shell.sandbox(["insi", "identities", "list", "--data-dir", dir.path])
        let identities = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
        #expect(identities?.map { $0["matricule"] as? String } == ["1810363220456"])
        let card = try await Shell.sandbox([
            "insi", "cards", "add", "--data-dir", dir.path, "--id", "CV-1", "--assure", "1810363220456",
            "--beneficiaire", "1810363220457:1",
        ])
        #expect(card.status == 2 && card.stderr.contains("not an identity"))
        let badRank = try await Shell.sandbox([
            "insi", "cards", "add", "--data-dir", dir.path, "--id", "CV-1", "--assure", "1810363220456",
            "--beneficiaire", "1810363220456",
        ])
        #expect(badRank.status == 2 && badRank.stderr.contains("MATRICULE:RANK"))
        #expect(
            try await Shell.sandbox([
                "insi", "cards", "add", "--data-dir", dir.path, "--id", "CV-1", "--assure", "1810363220456",
                "--beneficiaire", "1810363220456:1",
            ]).status == 0
        )
        #expect(
            try await Shell.sandbox(["insi", "lps", "add", "--data-dir", dir.path, "LPS-CLI", "--label", "cli"]).status
                == 0
        )
        #expect(try await Shell.sandbox(["insi", "lps", "list", "--data-dir", dir.path]).stdout.contains("LPS-CLI"))
        #expect(try await Shell.sandbox(["insi", "lps", "remove", "--data-dir", dir.path, "LPS-CLI"]).status == 0)
        #expect(try await Shell.sandbox(["insi", "lps", "remove", "--data-dir", dir.path, "LPS-CLI"]).status == 2)
    }

    /// Start the real binary, add a whitelist entry through the admin API, `kill -9` right after the 201, restart:
    /// the entry is there. Also checks `--ready-file` and that a request works against the started process.
    @Test func acknowledgedWritesSurviveKillMinus9() async throws {
        let dir = try Self.folder()
        let ready = dir.appendingPathComponent("ready.json")
        let seeds = dir.appendingPathComponent("seeds")
        try FileManager.default.createDirectory(at: seeds, withIntermediateDirectories: true)
        let process = try Self.serve(dir: dir, seeds: seeds, ready: ready)
        defer { if process.isRunning { process.terminate() } }
        var info: [String: Any]?
        for _ in 0..<200 where info == nil {
            try await Task.sleep(for: .milliseconds(25))
            info = (try? Data(contentsOf: ready)).flatMap {
                try? JSONSerialization.jsonObject(with: $0) as? [String: Any]
            }
        }
        let admin = try #require(info?["admin"] as? String)
        let add = try await Shell.run(
            """
            curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
            -d '{"service":"insi","subjectDN":"\(Self.dn)"}' \(admin)/admin/whitelist && kill -9 \(process.processIdentifier)
            """
        )
        #expect(add.stdout == "201")
        try await Shell.waitForExit(process)
        #expect(process.terminationReason == .uncaughtSignal)
        let store = try SandboxStore.open(path: dir.appendingPathComponent("sandbox.sqlite").path)
        let count = try await store.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM whitelist_entry WHERE service = 'insi'")
        }
        #expect(count == 1)
    }

    @Test func sigtermStopsTheServerCleanly() async throws {
        let dir = try Self.folder()
        let ready = dir.appendingPathComponent("ready.json")
        let process = try Self.serve(dir: dir, seeds: dir, ready: ready)
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: ready.path) {
            try await Task.sleep(for: .milliseconds(25))
        }
        // A refused handshake (no client certificate) is journaled, and flushed by the graceful stop.
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: ready)) as? [String: Any]
        let tls = try #require(info?["tls"] as? String)
        _ = try await Shell.run("curl -s --max-time 5 --cacert '\(dir.path)/pki/ca-bundle.pem' \(tls)/_sandbox/whoami")
        process.terminate()  // SIGTERM
        for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(25)) }
        #expect(!process.isRunning)
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        let journal = try await Shell.sandbox(["journal", "--data-dir", dir.path, "--json", "--decision", "refused"])
        #expect(journal.status == 0)
        #expect(journal.stdout.contains("\"reason\":\"no-client-certificate\""), "\(journal.stdout)")
    }

    /// `validate`: a conforming file (a Device: no ROR profile, the structure only) exits 0, a file with issues 1 with its OperationOutcome, an unreadable file and
    /// a bad --repeat 2 with a message; --repeat prints the time per validation.
    @Test func validateChecksFilesOffline() async throws {
        let dir = try Self.folder()
        let good = dir.appendingPathComponent("good.json")
        try Data(
            #"{"resourceType": "Device", "id": "d1", "status": "active", "meta": {"lastUpdated": "2026-12-07T10:00:00Z"}}"#
                .utf8
        ).write(to: good)
        let bad = dir.appendingPathComponent("bad.json")
        try Data(#"{"resourceType": "Organization", "id": "o 1", "nom": "EJ"}"#.utf8).write(to: bad)
        let checked = try await Shell.sandbox(["validate", bad.path, "--repeat", "3"])
        #expect(checked.status == 1, "\(checked.stderr)")
        #expect(checked.stdout.contains("Unrecognized property 'nom'"), "\(checked.stdout)")
        #expect(checked.stdout.contains("\"Organization.id\""))
        #expect(checked.stdout.contains("µs per validation"))
        let missing = try await Shell.sandbox(["validate", dir.appendingPathComponent("none.json").path])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("none.json"))
        let zero = try await Shell.sandbox(["validate", bad.path, "--repeat", "0"])
        #expect(zero.status == 2 && zero.stderr.contains("--repeat must be at least 1"))
        let ok = try await Shell.sandbox(["validate", good.path])
        #expect(ok.status == 0, "\(ok.stdout)")
        #expect(ok.stdout.contains("No issue"))
    }

    /// `explain`: a search's matches, time and SQLite plan on a data folder's database; a bad search or a folder
    /// without a database is a message and exit 2.
    @Test func explainShowsTheMatchesAndThePlan() async throws {
        let dir = try Self.folder()
        let store = try SandboxStore.open(path: dir.appendingPathComponent("sandbox.sqlite").path)
        let repository = ResourceRepository(store: store, registry: RORSearchParameters.registry)
        try await store.write { db in
            for id in ["loc-a", "loc-b"] {
                _ = try repository.save(
                    ["resourceType": "Location", "id": id, "identifier": [["system": "urn:x", "value": id]]],
                    in: db
                )
            }
        }
        let explained = try await Shell.sandbox([
            "explain", "--data-dir", dir.path, "--sql", "Location?identifier=loc-a", "Location?_count=5",
        ])
        #expect(explained.status == 0, "\(explained.stderr)")
        #expect(explained.stdout.contains("1 matches in"), "\(explained.stdout)")
        #expect(explained.stdout.contains("2 matches in"))
        #expect(explained.stdout.contains("plan: SEARCH"))
        #expect(explained.stdout.contains("SQL: SELECT r.id FROM fhir_resource r"))
        let bad = try await Shell.sandbox(["explain", "--data-dir", dir.path, "Location?nom=x"])
        #expect(bad.status == 2 && bad.stderr.contains("Location?nom=x"), "\(bad.stderr)")
        let none = try await Shell.sandbox([
            "explain", "--data-dir", dir.appendingPathComponent("none").path, "Location",
        ])
        #expect(none.status == 2 && none.stderr.contains("no sandbox database"))
    }

    /// `sql` reads a data folder made over a prebuilt dataset (which the sqlite3 shell cannot open), refuses writes,
    /// names a bad statement, and writes a standalone copy with VACUUM INTO.
    @Test func sqlReadsAnOverlayDataFolder() async throws {
        let (_, dataset, written) = try PrebuiltDatasetTests.generated(establishments: 1)
        try dataset.prebuild(registry: RORSearchParameters.registry)
        let dir = try Self.folder()
        let path = dir.appendingPathComponent("sandbox.sqlite").path
        try SandboxStore.install(prebuilt: dataset.prebuiltFile.path, at: path, mode: .overlay)
        let store = try SandboxStore.open(path: path)
        try await store.write { db in
            try db.execute(sql: "DELETE FROM fhir_resource WHERE type = 'Organization'")
        }
        let remaining = try await store.writer.read {
            try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM fhir_resource")
        }
        #expect(remaining ?? 0 < written)

        let counted = try await Shell.sandbox([
            "sql", "--data-dir", dir.path, "SELECT COUNT(*) AS resources FROM fhir_resource",
            "SELECT type, json FROM fhir_resource WHERE type = 'Location' LIMIT 1",
        ])
        #expect(counted.status == 0, "\(counted.stderr)")
        let lines = counted.stdout.split(separator: "\n")
        #expect(lines.prefix(2) == ["resources", "\(remaining ?? -1)"], "\(counted.stdout)")
        #expect(lines.count == 4 && lines[3].hasPrefix("Location\t{"), "\(counted.stdout)")

        let write = try await Shell.sandbox(["sql", "--data-dir", dir.path, "DELETE FROM fhir_resource"])
        #expect(write.status == 2 && write.stderr.contains("readonly"), "\(write.stderr)")
        let bad = try await Shell.sandbox(["sql", "--data-dir", dir.path, "SELECT anything FROM nowhere"])
        #expect(bad.status == 2 && bad.stderr.contains("no such table: nowhere"), "\(bad.stderr)")
        let none = try await Shell.sandbox(["sql", "--data-dir", dir.appendingPathComponent("none").path, "SELECT 1"])
        #expect(none.status == 2 && none.stderr.contains("no sandbox database"))

        let copy = dir.appendingPathComponent("copy.sqlite").path
        let vacuum = try await Shell.sandbox(["sql", "--data-dir", dir.path, "VACUUM INTO '\(copy)'"])
        #expect(vacuum.status == 0, "\(vacuum.stderr)")
        let standalone = try DatabaseQueue(path: copy)
        #expect(
            try await standalone.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM fhir_resource") } == remaining
        )
        #expect(try await standalone.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") } == "ok")
    }
}
