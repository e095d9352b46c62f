import Access
import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SandboxServer
import TestPKI
import Testing
import X509

/// A test PKI minted once per test process (P-256: fast), shared by every test; tests mint their own clients in it.
enum SharedPKI {
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "esante-sandbox-tests-\(UUID().uuidString)"
        )
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    static let pki: SandboxPKI = try! SandboxPKI.loadOrCreate(
        directory: directory.appendingPathComponent("pki"),
        algorithm: .p256
    ).pki

    /// The repository's own `Seeds/` folder.
    static let repositorySeeds = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Seeds")

    /// Mints a client certificate into a fresh folder and returns its files.
    static func client(
        _ dn: String,
        negative: NegativeKind? = nil,
        algorithm: KeyAlgorithm = .p256
    ) throws -> ClientFiles {
        let issued = try pki.issueClient(
            subject: try SubjectDN(parsing: dn).distinguishedName(),
            algorithm: algorithm,
            negative: negative
        )
        let folder = directory.appendingPathComponent("clients/\(UUID().uuidString)")
        try pki.write(issued, to: folder)
        return ClientFiles(folder: folder, issued: issued)
    }

    /// The files of a demo client as an issued certificate.
    static func issued(_ files: DemoClientFiles) throws -> IssuedCertificate {
        let certificate = try PEMFile.certificates(at: files.certificate)[0]
        let key = try Certificate.PrivateKey(pemEncoded: String(contentsOf: files.key, encoding: .utf8))
        return IssuedCertificate(certificate: certificate, privateKey: key)
    }

    static func emptySeeds() throws -> URL {
        let url = directory.appendingPathComponent("seeds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The official artefacts (the ROR IG's examples, the ANS CSD XSD, the CNAM's INSi XSDs) in `shared/reference` beside
/// the repository, when this machine has a copy: several are not redistributable, so the repository does not hold
/// them. Tests that need them are `.enabled(if:)`, so that their absence shows as a skip.
enum Reference {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/reference")

    static func file(_ path: String) -> URL { root.appendingPathComponent(path) }

    static func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }

    /// Whether `curl` and `python3` are on the PATH (the README's walk-throughs use both).
    static let hasCurlAndPython: Bool = onPath("curl") && onPath("python3")

    static func onPath(_ tool: String) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "command -v \(tool)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// Whether `xmllint` is on the PATH (`.ci/run` installs it).
    static let xmllint = onPath("xmllint")
}

struct ClientFiles {
    var folder: URL
    var issued: IssuedCertificate
    var certificate: URL { folder.appendingPathComponent("cert.pem") }
    var key: URL { folder.appendingPathComponent("key.pem") }
    var bundle: URL { folder.appendingPathComponent("bundle.pem") }
}

/// A sandbox running in this process on free ports.
struct RunningSandbox {
    let sandbox: Sandbox
    let info: ReadyInfo
    let task: Task<Void, any Error>

    var tlsPort: Int { Int(info.tls.split(separator: ":").last!)! }
    var adminPort: Int { Int(info.admin.split(separator: ":").last!)! }

    static func start(
        rejectMode: RejectMode = .tls,
        seeds: URL? = nil,
        readyFile: URL? = nil,
        privatePKI: Bool = false,
        configure: (inout SandboxConfiguration) -> Void = { _ in }
    ) async throws -> RunningSandbox {
        var configuration = SandboxConfiguration()
        configuration.inMemory = true
        // A private PKI for tests that change it (reset?scope=all empties the CRL other tests rely on).
        configuration.pkiDirectory =
            privatePKI
            ? SharedPKI.directory.appendingPathComponent("pki-\(UUID().uuidString)") : SharedPKI.pki.directory
        configuration.keyAlgorithm = .p256
        configuration.seedsDirectory = try seeds ?? SharedPKI.emptySeeds()
        configuration.port = 0
        configuration.adminPort = 0
        configuration.rejectMode = rejectMode
        configuration.readyFile = readyFile
        configuration.printBanner = false
        configure(&configuration)
        var logger = Logger(label: "sandbox-under-test")
        logger.logLevel = .warning
        let sandbox = try Sandbox(configuration: configuration, logger: logger)
        let task = Task { try await sandbox.run(handleSignals: false) }
        let info = await sandbox.waitUntilReady()
        return RunningSandbox(sandbox: sandbox, info: info, task: task)
    }

    func stop() async {
        await sandbox.shutdown()
        _ = try? await task.value
    }

    /// Runs `body` against this sandbox, then stops it and waits until it has stopped, whether `body` returned or
    /// threw: the next test never meets a sandbox still shutting down.
    func whileRunning<T>(_ body: () async throws -> T) async throws -> T {
        let value: T
        do {
            value = try await body()
        } catch {
            await stop()
            throw error
        }
        await stop()
        return value
    }

    /// Whitelists a DN (or key) directly.
    @discardableResult
    func whitelist(_ service: String, dn: String? = nil, spki: String? = nil) throws -> WhitelistEntry {
        try sandbox.whitelist.add(
            try Whitelist.entry(
                from: .init(service: service, subjectDN: dn, publicKeySHA256: spki),
                origin: "test"
            )
        )
    }

    /// The database as a full disk leaves it (`true`): SQLite's page limit set to the pages it has, so a write that
    /// needs one more fails with `SQLITE_FULL`, the error a full disk gives; `false` gives the room back.
    func databaseFull(_ full: Bool) async throws {
        try await sandbox.store.writer.writeWithoutTransaction { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            try db.execute(sql: "PRAGMA max_page_count = \(full ? pages : 1_073_741_823)")
        }
    }

    /// Sends `write` until the first answer that is not `accepted` (writes still fit in pages SQLite holds free),
    /// at most 300 times: that answer, and the number accepted before it.
    func untilRefused(
        accepted: HTTPResponse.Status,
        _ write: (Int) async throws -> TestClient.Response
    ) async throws -> (TestClient.Response?, Int) {
        for attempt in 0..<300 {
            let response = try await write(attempt)
            if response.status != accepted { return (response, attempt) }
        }
        return (nil, 300)
    }

    /// Journal rows matching `predicate`, waiting up to 3 s for them (rows are written after the response).
    func journalRows(where predicate: (JournalEntry) -> Bool) async throws -> [JournalEntry] {
        for _ in 0..<150 {
            let rows = try sandbox.journal.entries(JournalFilter(limit: 1000)).filter(predicate)
            if !rows.isEmpty { return rows }
            try await Task.sleep(for: .milliseconds(20))
        }
        return []
    }

    /// One HTTPS request on a new connection with this client certificate (to the listener of `environment`).
    func request(
        _ path: String,
        method: HTTPRequest.Method = .get,
        client: ClientFiles?,
        tlsVersion: TLSVersion? = nil,
        headers: HTTPFields = [:],
        body: String? = nil,
        bytes: [UInt8]? = nil,
        environment: String? = nil,
        cipherSuites: [NIOTLSCipher]? = nil
    ) async throws -> TestClient.Response {
        let testClient = try connection(
            client: client,
            tlsVersion: tlsVersion,
            environment: environment,
            cipherSuites: cipherSuites
        )
        defer { Task { try? await testClient.shutdown() } }
        let payload = bytes.map { ByteBuffer(bytes: $0) } ?? body.map { ByteBuffer(string: $0) }
        return try await testClient.execute(.init(path, method: method, headers: headers, body: payload))
    }

    /// An HTTPS connection with this client certificate, kept for several requests as a real client keeps one (the
    /// caller shuts it down): what a test of a client's timing uses, a new handshake per call taking seconds when
    /// every suite runs at once.
    func connection(
        client: ClientFiles?,
        tlsVersion: TLSVersion? = nil,
        environment: String? = nil,
        cipherSuites: [NIOTLSCipher]? = nil
    ) throws -> TestClient {
        let listener = environment.flatMap { name in info.environments.first { $0.name == name } }
        let configuration = try TLSClients.configuration(
            client: client,
            tlsVersion: tlsVersion,
            trust: listener.map { URL(fileURLWithPath: $0.caCertificateFile) },
            cipherSuites: cipherSuites
        )
        // Generous: `swift test` starts every suite's sandboxes at once on two cores, and a request can wait its
        // turn for seconds (a ROR CSD test's first call took 8.5 s); no test measures time through this timeout.
        let testClient = TestClient(
            host: "127.0.0.1",
            port: listener.map { Int($0.tls.split(separator: ":").last!)! } ?? tlsPort,
            configuration: .init(tlsConfiguration: configuration, timeout: .seconds(60), serverName: "localhost")
        )
        testClient.connect()
        return testClient
    }

    /// A plain-HTTP admin call.
    func admin(
        _ path: String,
        method: HTTPRequest.Method = .get,
        body: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> TestClient.Response {
        let testClient = TestClient(host: "127.0.0.1", port: adminPort)
        testClient.connect()
        defer { Task { try? await testClient.shutdown() } }
        var headers = headers
        if body != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        // With a Host header, as curl and browsers send it (the admin listener compares it with Origin).
        return try await testClient.execute(
            .init(
                path,
                method: method,
                authority: "127.0.0.1:\(adminPort)",
                headers: headers,
                body: body.map { ByteBuffer(string: $0) }
            )
        )
    }
}

enum TLSClients {
    static func configuration(
        client: ClientFiles?,
        tlsVersion: TLSVersion?,
        trust: URL? = nil,
        cipherSuites: [NIOTLSCipher]? = nil
    ) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file((trust ?? SharedPKI.pki.caBundleURL).path)
        if let client {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(client.certificate.path).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: client.key.path, format: .pem))
        }
        if let tlsVersion {
            tls.minimumTLSVersion = tlsVersion
            tls.maximumTLSVersion = tlsVersion
        }
        if let cipherSuites { tls.cipherSuiteValues = cipherSuites }
        return tls
    }
}

/// Sends raw bytes over TLS and collects everything the server sends until it closes (or `timeout`).
enum RawTLS {
    struct Exchange {
        var received: String
        var serverClosed: Bool
    }

    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var bytes = ByteBuffer()
        let closed: EventLoopPromise<Void>
        init(closed: EventLoopPromise<Void>) { self.closed = closed }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            bytes.writeBuffer(&buffer)
        }
        let isClosed = NIOLockedValueBox(false)
        func channelInactive(context: ChannelHandlerContext) {
            isClosed.withLockedValue { $0 = true }
            closed.succeed(())
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }

    /// HTTP/1.0 requests, all but the last with `Connection: keep-alive`: each answered 200 in 1.0, the connection kept
    /// until the last answer, then closed.
    static func expectHTTP10KeepAlive(_ exchange: Exchange, answers count: Int) throws {
        #expect(exchange.serverClosed)
        let heads = exchange.received.components(separatedBy: "\r\n\r\n").filter { $0.contains("HTTP/1.") }
        try #require(heads.count == count, "\(exchange.received.prefix(300))")
        for head in heads { #expect(head.contains("HTTP/1.0 200 OK"), "\(head)") }
        for head in heads.dropLast() { #expect(head.lowercased().contains("connection: keep-alive"), "\(head)") }
        #expect(heads.last?.lowercased().contains("connection: close") == true)
    }

    static func exchange(
        port: Int,
        client: ClientFiles,
        send text: String,
        timeout: Duration = .seconds(3)
    ) async throws -> Exchange {
        let context = try NIOSSLContext(configuration: try TLSClients.configuration(client: client, tlsVersion: nil))
        let group = MultiThreadedEventLoopGroup.singleton
        let closed = group.next().makePromise(of: Void.self)
        let collector = Collector(closed: closed)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: "localhost")
                    )
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: text)).get()
        var serverClosed = false
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if collector.isClosed.withLockedValue({ $0 }) {
                serverClosed = true
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let received = try await channel.eventLoop.submit { String(buffer: collector.bytes) }.get()
        try? await channel.close()
        return Exchange(received: received, serverClosed: serverClosed)
    }
}

extension TestClient.Response {
    var text: String { body.map { String(buffer: $0) } ?? "" }
    /// The body's bytes as received.
    var data: Data { body.map { Data($0.readableBytesView) } ?? Data() }

    func json() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }
}

/// Runs shell commands and the built `esante-sandbox` executable.
enum Shell {
    static let cache = FileManager.default.temporaryDirectory.appendingPathComponent("esante-sandbox-tests-cache")

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The executable next to the test bundle (`swift build` puts both in the same folder). Its children get a
    /// cache of the tests' own (built-in seeds written out, RSA key pool), not the user's.
    static let executable: URL = {
        setenv("ESANTE_SANDBOX_CACHE", cache.path, 1)
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("esante-sandbox").path),
            folder.path != "/"
        {
            folder.deleteLastPathComponent()
        }
        return folder.appendingPathComponent("esante-sandbox")
    }()

    static func run(_ command: String) async throws -> Output {
        try await run(URL(fileURLWithPath: "/bin/sh"), ["-c", command])
    }

    static func sandbox(_ arguments: [String]) async throws -> Output {
        try await run(executable, arguments)
    }

    /// Runs a child process to its end on a thread of its own. Waiting on a thread of Swift's cooperative pool
    /// (2 threads on 2 cores) starved the sandboxes other tests run in this process: a `demo` child then timed out
    /// against one of them (CI, 2026-11-22).
    static func run(_ executable: URL, _ arguments: [String]) async throws -> Output {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Both pipes drained at once: a child filling one while we block on the other would hang both.
        async let stderr = offPool { err.fileHandleForReading.readDataToEndOfFile() }
        let stdout = try await offPool { out.fileHandleForReading.readDataToEndOfFile() }
        try await waitForExit(process)
        return Output(
            status: process.terminationStatus,
            stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: try await stderr, as: UTF8.self)
        )
    }

    /// Waits for a child started elsewhere to end, without holding a cooperative thread.
    static func waitForExit(_ process: Process) async throws {
        try await offPool { process.waitUntilExit() }
    }

    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }
}

/// A ROR FHIR consumer's calls: a sandbox on the repository seeds, the token, the Ror-* headers.
enum RORConsumer {
    static let consumerDN = "CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR"
    static let rorHeaders: HTTPFields = [
        HTTPField.Name("Ror-Profil-Utilisateur-Code")!: "CU22",
        HTTPField.Name("Ror-Profil-Utilisateur-System")!: "1.2.250.1.213.1.6.1.66",
        HTTPField.Name("Ror-Role-Metier-Code")!: "AUTOMATE",
        HTTPField.Name("Ror-Role-Metier-System")!: "1.2.250.1.213.1.1.4.6",
    ]
    static let tokenPath = "/auth/realms/ror/protocol/openid-connect/token"

    /// A sandbox with the repository seeds and the demo consumer's files.
    static func start() async throws -> (RunningSandbox, ClientFiles) {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        let files = try #require(running.info.clientCertificates["ror-consumer"])
        return (
            running,
            ClientFiles(folder: files.certificate.deletingLastPathComponent(), issued: try SharedPKI.issued(files))
        )
    }

    static func token(_ running: RunningSandbox, client: ClientFiles?, form: String) async throws -> TestClient.Response
    {
        try await running.request(
            tokenPath,
            method: .post,
            client: client,
            headers: [.contentType: "application/x-www-form-urlencoded"],
            body: form
        )
    }

    static func accessToken(_ running: RunningSandbox, client: ClientFiles) async throws -> String {
        let response = try await token(
            running,
            client: client,
            form: "grant_type=client_credentials&client_id=esante-sandbox-consumer"
        )
        #expect(response.status == .ok, "\(response.text)")
        return try #require(try response.json()["access_token"] as? String)
    }

    /// A consumer call with token and headers.
    static func get(
        _ running: RunningSandbox,
        _ path: String,
        client: ClientFiles,
        token: String
    ) async throws -> TestClient.Response {
        var headers = rorHeaders
        headers[.authorization] = "Bearer \(token)"
        return try await running.request(path, client: client, headers: headers)
    }
}

/// A ROR capacity feeder's calls: FHIRPath Patch bodies as bed-management software sends them.
enum CapacityFeed {
    static let capacity =
        "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-location-supported-capacity"
    static let path = "/ws-synchro-dispo-lits-fhir/Location?identifier="
    /// loc-00001-1 of the seeds, establishment eg-00001 (FINESS 759000001, in the demo feeder's list): beds (01).
    static let place = "1759000001/LIT000011"

    static func nos(_ tre: String) -> String {
        "https://mos.esante.gouv.fr/NOS/\(tre)/FHIR/\(tre.replacingOccurrences(of: "_", with: "-"))"
    }

    static func indicator(
        status: String,
        temporality: String = "01",
        gender: String? = "03",
        type: String = "01",
        count: Int,
        leaving: String? = nil
    ) -> [String: Any] {
        var parts: [(String, String, String)] = [
            ("capacityStatus", nos("TRE_R330-TypeStatutCapacite"), status),
            ("capacityType", nos("TRE_R329-NatureCapacite"), type),
            ("temporalityCapacity", nos("TRE_R331-TemporaliteCapacite"), temporality),
            ("capacitySourceType", nos("TRE_R335-TypeSourceCapacite"), "02"),
            ("temporaryAssignement", nos("TRE_R337-AffectationTemporaire"), "01"),
        ]
        if let gender { parts.append(("genderCapacityAvailable", nos("TRE_R332-GenreCapacite"), gender)) }
        var extensions: [[String: Any]] = parts.map {
            ["url": $0.0, "valueCodeableConcept": ["coding": [["system": $0.1, "code": $0.2]]]]
        }
        extensions += [
            ["url": "nbCapacity", "valueInteger": count],
            ["url": "capacityUpdateDate", "valueDateTime": "2026-11-22T10:00:00+01:00"],
        ]
        return ["url": capacity, "extension": extensions.filter { $0["url"] as? String != leaving }]
    }

    /// The scenario 2bis/3 selector: the indicator with these qualifiers.
    static func selector(status: String, temporality: String = "01", gender: String? = "03") -> String {
        func sub(_ url: String, _ code: String) -> String {
            "extension.where(url='\(url)' and valueCodeableConcept.coding.code='\(code)')"
        }
        var criteria = [
            sub("capacityStatus", status), sub("temporalityCapacity", temporality), sub("temporaryAssignement", "01"),
        ]
        if let gender { criteria.append(sub("genderCapacityAvailable", gender)) }
        return "Location.extension.where(url='\(capacity)').where(\(criteria.joined(separator: " and ")))"
    }

    static func body(_ type: String, path: String, value: [String: Any]? = nil) -> String {
        var parts: [[String: Any]] = [["name": "type", "valueCode": type], ["name": "path", "valueString": path]]
        if let value { parts.append(["name": "value", "valueExtension": value]) }
        let parameters: [String: Any] = [
            "resourceType": "Parameters", "parameter": [["name": "operation", "part": parts]],
        ]
        return String(decoding: try! JSONSerialization.data(withJSONObject: parameters), as: UTF8.self)
    }

    /// A sandbox on the repository seeds, the demo feeder's files and a feeder token.
    static func start(
        configure: @escaping (inout SandboxConfiguration) -> Void = { _ in }
    ) async throws -> (RunningSandbox, ClientFiles, String) {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds, configure: configure)
        let files = try #require(running.info.clientCertificates["ror-feeder"])
        let feeder = ClientFiles(
            folder: files.certificate.deletingLastPathComponent(),
            issued: try SharedPKI.issued(files)
        )
        let token = try await RORConsumer.token(
            running,
            client: feeder,
            form: "grant_type=client_credentials&client_id=esante-sandbox-feeder"
        )
        return (running, feeder, try #require(try token.json()["access_token"] as? String))
    }

    static func patch(
        _ running: RunningSandbox,
        _ identifier: String = place,
        body: String,
        client: ClientFiles,
        token: String?,
        contentType: String = "application/fhir+json",
        bytes: [UInt8]? = nil
    ) async throws -> TestClient.Response {
        var headers: HTTPFields = [.contentType: contentType]
        if let token { headers[.authorization] = "Bearer \(token)" }
        let query =
            identifier.addingPercentEncoding(
                withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~/"))
            ) ?? identifier
        return try await running.request(
            path + query,
            method: .patch,
            client: client,
            headers: headers,
            body: body,
            bytes: bytes
        )
    }

    /// Scenario 2bis: the available beds (status 02, current, undifferentiated) of loc-00001-1 replaced by `count`.
    static func replaceAvailable(
        _ running: RunningSandbox,
        count: Int,
        client: ClientFiles,
        token: String
    ) async throws -> TestClient.Response {
        try await patch(
            running,
            body: body(
                "replace",
                path: selector(status: "02"),
                value: indicator(status: "02", count: count)
            ),
            client: client,
            token: token
        )
    }

    /// Available beds (status 02, current, undifferentiated) of loc-00001-1 as a consumer reads them.
    static func available(
        _ running: RunningSandbox,
        status: String = "02",
        temporality: String = "01",
        gender: String? = "03"
    ) async throws -> [Int] {
        let (consumerRunning, consumer) = (running, try #require(running.info.clientCertificates["ror-consumer"]))
        let files = ClientFiles(
            folder: consumer.certificate.deletingLastPathComponent(),
            issued: try SharedPKI.issued(consumer)
        )
        let token = try await RORConsumer.accessToken(consumerRunning, client: files)
        let location = try await RORConsumer.get(
            running,
            "/ws-diffusion-fhir/Location/loc-00001-1",
            client: files,
            token: token
        ).json()
        return (location["extension"] as? [[String: Any]] ?? []).filter { $0["url"] as? String == capacity }.compactMap
        { indicator in
            let parts = indicator["extension"] as? [[String: Any]] ?? []
            func code(_ url: String) -> String? {
                ((parts.first { $0["url"] as? String == url }?["valueCodeableConcept"] as? [String: Any])?["coding"]
                    as? [[String: Any]])?.first?["code"] as? String
            }
            guard code("capacityStatus") == status, code("temporalityCapacity") == temporality,
                code("genderCapacityAvailable") == gender
            else { return nil }
            return parts.first { $0["url"] as? String == "nbCapacity" }?["valueInteger"] as? Int
        }
    }
}
