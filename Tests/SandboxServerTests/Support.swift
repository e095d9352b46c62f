import Access
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SandboxServer
import Testing
import TestPKI

/// A test PKI minted once per test process (P-256: fast), shared by every test; tests mint their own clients in it.
enum SharedPKI {
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("esante-sandbox-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    static let pki: SandboxPKI = try! SandboxPKI.loadOrCreate(directory: directory.appendingPathComponent("pki"), algorithm: .p256).pki

    /// The repository's own `Seeds/` folder.
    static let repositorySeeds = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Seeds")

    /// Mints a client certificate into a fresh folder and returns its files.
    static func client(_ dn: String, negative: NegativeKind? = nil, algorithm: KeyAlgorithm = .p256) throws -> ClientFiles {
        let issued = try pki.issueClient(subject: try SubjectDN(parsing: dn).distinguishedName(), algorithm: algorithm, negative: negative)
        let folder = directory.appendingPathComponent("clients/\(UUID().uuidString)")
        try pki.write(issued, to: folder)
        return ClientFiles(folder: folder, issued: issued)
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

    /// Whether `xmllint` is on the PATH (`.ci/run` installs it).
    static let xmllint: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "command -v xmllint"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()
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
        rejectMode: RejectMode = .tls, seeds: URL? = nil, readyFile: URL? = nil, privatePKI: Bool = false,
        configure: (inout SandboxConfiguration) -> Void = { _ in }
    ) async throws -> RunningSandbox {
        var configuration = SandboxConfiguration()
        configuration.inMemory = true
        // A private PKI for tests that change it (reset?scope=all empties the CRL other tests rely on).
        configuration.pkiDirectory = privatePKI
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
        try sandbox.whitelist.add(try Whitelist.entry(
            from: .init(service: service, subjectDN: dn, publicKeySHA256: spki), origin: "test"))
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
        _ path: String, method: HTTPRequest.Method = .get, client: ClientFiles?, tlsVersion: TLSVersion? = nil,
        headers: HTTPFields = [:], body: String? = nil, bytes: [UInt8]? = nil, environment: String? = nil
    ) async throws -> TestClient.Response {
        let listener = environment.flatMap { name in info.environments.first { $0.name == name } }
        let configuration = try TLSClients.configuration(
            client: client, tlsVersion: tlsVersion, trust: listener.map { URL(fileURLWithPath: $0.caCertificateFile) })
        let testClient = TestClient(
            host: "127.0.0.1", port: listener.map { Int($0.tls.split(separator: ":").last!)! } ?? tlsPort,
            configuration: .init(tlsConfiguration: configuration, timeout: .seconds(10), serverName: "localhost"))
        testClient.connect()
        defer { Task { try? await testClient.shutdown() } }
        let payload = bytes.map { ByteBuffer(bytes: $0) } ?? body.map { ByteBuffer(string: $0) }
        return try await testClient.execute(.init(path, method: method, headers: headers, body: payload))
    }

    /// A plain-HTTP admin call.
    func admin(_ path: String, method: HTTPRequest.Method = .get, body: String? = nil, headers: HTTPFields = [:]) async throws -> TestClient.Response {
        let testClient = TestClient(host: "127.0.0.1", port: adminPort)
        testClient.connect()
        defer { Task { try? await testClient.shutdown() } }
        var headers = headers
        if body != nil { headers[.contentType] = "application/json" }
        // With a Host header, as curl and browsers send it (the admin listener compares it with Origin).
        return try await testClient.execute(.init(path, method: method, authority: "127.0.0.1:\(adminPort)", headers: headers,
                                                  body: body.map { ByteBuffer(string: $0) }))
    }
}

enum TLSClients {
    static func configuration(client: ClientFiles?, tlsVersion: TLSVersion?, trust: URL? = nil) throws -> TLSConfiguration {
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

    static func exchange(port: Int, client: ClientFiles, send text: String, timeout: Duration = .seconds(3)) async throws -> Exchange {
        let context = try NIOSSLContext(configuration: try TLSClients.configuration(client: client, tlsVersion: nil))
        let group = MultiThreadedEventLoopGroup.singleton
        let closed = group.next().makePromise(of: Void.self)
        let collector = Collector(closed: closed)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: text)).get()
        var serverClosed = false
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if collector.isClosed.withLockedValue({ $0 }) { serverClosed = true; break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let received = try await channel.eventLoop.submit { String(buffer: collector.bytes) }.get()
        try? await channel.close()
        return Exchange(received: received, serverClosed: serverClosed)
    }
}

extension TestClient.Response {
    var text: String { body.map { String(buffer: $0) } ?? "" }

    func json() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }
}
