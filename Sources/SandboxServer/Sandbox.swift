import Access
import DMP
import FHIRCore
import Foundation
import GRDB
import Hummingbird
import HummingbirdCore
import INSi
import Logging
import MonEspaceSante
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import RORCSD
import RORFHIR
import Recette
import ServiceLifecycle
import Store
import TestPKI
import X509

/// Where a running sandbox listens, as written to `--ready-file`.
public struct ReadyInfo: Codable, Sendable {
    /// The first environment's mutual-TLS URL.
    public var tls: String
    public var admin: String
    public var environment: String
    /// PEM of the CA bundle clients must trust (root + issuing CA).
    public var caCertificate: String
    public var caCertificateFile: String
    /// Demo client name → files (`certificate`, `key`, `bundle`).
    public var clientCertificates: [String: DemoClientFiles]
    public var pid: Int32
    /// Every environment's listener (`--environments`), first one first.
    public var environments: [ReadyEnvironment]
    /// The seeds in use: a folder, or `built in (N files, digest)`.
    public var seeds: String?
}

/// One environment's listener in the ready file.
public struct ReadyEnvironment: Codable, Sendable {
    public var name: String
    public var tls: String
    public var caCertificateFile: String
}

/// One environment (`bac-a-sable`, `production`…): its own mutual-TLS listener, PKI, trusted CAs and whitelist.
public struct EnvironmentListener: Sendable {
    public let name: String
    public let pki: SandboxPKI
    public let trustStore: TrustStore
    /// Configured port (0: a free one).
    let port: Int
}

/// The sandbox: store, PKI, trust, whitelist, journal, and the two listeners (mutual TLS and admin).
public final class Sandbox: Sendable {
    public let configuration: SandboxConfiguration
    public let store: SandboxStore
    /// One per environment, the first being the default one.
    public let listeners: [EnvironmentListener]
    /// The first environment's PKI (demo clients are minted in it) and trusted CAs.
    public var pki: SandboxPKI { listeners[0].pki }
    public var trustStore: TrustStore { listeners[0].trustStore }
    public let whitelist: Whitelist
    public let journal: Journal
    public let seeds: Seeds
    /// The folder the seeds are read from (at start and on reset) and how the banner names it.
    public let seedsFolder: URL
    let seedsLabel: String
    public let demoClients: [String: DemoClientFiles]
    /// ROR FHIR MEV3 (`/ws-diffusion-fhir`).
    public let ror: RORFHIRService
    /// ROR CSD MEV2.4 (`/ROR/CSD`), over the ROR FHIR store.
    public let csd: RORCSDService
    /// INSi teleservice (`/lps`).
    public let insi: INSiService
    /// Mon espace santé (`/mes`): pairing and health measures.
    public let mes: MESService
    /// The DMP's web services (`/si-dmp-server`).
    public let dmp: DMPService
    /// The sandbox clock (compressible for demos) and the onboarding flow that runs on it.
    public let clock: SandboxClock
    public let onboarding: Onboarding
    /// Injected faults (latency, 503s, maintenance, dropped connections), in memory.
    public let faults: FaultInjector
    /// The recette: scenario packs (`Seeds/recette`), runs judged from the journal, and the answers they inject.
    public let recette: RecetteRuns
    public let recetteInjector: RecetteInjector
    /// Calls counted as they are journaled, served as `GET /metrics` on the admin listener.
    let metrics: SandboxMetrics
    /// Named in reports and `--version`.
    public static let version = "0.9.0"
    let logger: Logger
    private let ready = NIOLockedValueBox<
        (tls: [String: Int], admin: Int?, waiters: [CheckedContinuation<ReadyInfo, Never>], info: ReadyInfo?)
    >(
        ([:], nil, [], nil)
    )
    let startedAt = Date()
    private let serviceGroup = NIOLockedValueBox<ServiceGroup?>(nil)

    /// Prepares everything that does not listen: opens the store, loads or mints the PKI, loads the seeds.
    public init(configuration: SandboxConfiguration, logger: Logger = Logger(label: "esante-sandbox")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        let (seedsFolder, seedsLabel) = try configuration.resolveSeeds()
        self.seedsFolder = seedsFolder
        self.seedsLabel = seedsLabel
        if configuration.inMemory {
            self.store = try SandboxStore.inMemory()
        } else {
            try FileManager.default.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true)
            let path = configuration.dataDirectory.appendingPathComponent("sandbox.sqlite").path
            try Self.installPrebuiltDataset(
                at: path,
                seeds: seedsFolder,
                mode: configuration.prebuiltMode,
                logger: logger
            )
            do {
                self.store = try SandboxStore.open(path: path)
            } catch let error as DatabaseError {
                throw SandboxError.database(path: path, error)
            }
        }
        if let pool = configuration.keyPool { RSAKeyPool.install(pool) }
        var pkis: [SandboxPKI] = []
        for name in configuration.resolvedEnvironments {
            let (pki, created) = try SandboxPKI.loadOrCreate(
                directory: SandboxPKI.directory(base: configuration.resolvedPKIDirectory, environment: name),
                algorithm: configuration.keyAlgorithm,
                environment: name
            )
            if created { logger.info("minted the \(name) PKI in \(pki.directory.path)") }
            pkis.append(pki)
        }
        var extraTrusted: [Certificate] = []
        for file in configuration.trustCAFiles {
            do { extraTrusted += try PEMFile.certificates(at: file) } catch {
                throw SandboxError.configuration("--trust-ca \(file.path): \(error)")
            }
        }
        var listeners: [EnvironmentListener] = []
        for (index, name) in configuration.resolvedEnvironments.enumerated() {
            let pki = pkis[index]
            // Each environment trusts its own chain only (--trust-ca adds to the first); the others' CAs are known
            // just to name the refusal of a certificate from the wrong environment.
            let others = pkis.enumerated().filter { $0.offset != index }.flatMap {
                [$0.element.root.certificate, $0.element.issuingCA.certificate]
            }
            let trustStore = TrustStore(
                certificates: [pki.root.certificate, pki.issuingCA.certificate] + (index == 0 ? extraTrusted : []),
                otherEnvironmentCAs: others
            )
            trustStore.setRevokedSerials(try pki.revokedSerials())
            listeners.append(
                EnvironmentListener(
                    name: name,
                    pki: pki,
                    trustStore: trustStore,
                    port: configuration.port == 0 ? 0 : configuration.port + index
                )
            )
        }
        self.listeners = listeners
        let pki = pkis[0]

        self.seeds = try Seeds.load(from: seedsFolder)
        self.demoClients = try seeds.ensureDemoClients(in: pki, algorithm: configuration.keyAlgorithm)
        self.whitelist = try Whitelist(store: store)
        let metrics = SandboxMetrics()
        self.metrics = metrics
        self.journal = Journal(
            store: store,
            maxRows: configuration.journalMaxRows,
            maxBodyBytes: configuration.journalMaxBytes,
            logger: logger,
            observer: { metrics.observe($0) }
        )
        self.clock = try SandboxClock(store: store, speed: configuration.clockSpeed)
        self.onboarding = try Onboarding(
            store: store,
            whitelist: whitelist,
            clock: clock,
            delay: configuration.whitelistDelay,
            environments: configuration.resolvedEnvironments,
            journal: journal
        )
        self.faults = FaultInjector(clock: clock)
        do {
            let packs = try RecettePacks.load(from: seedsFolder)
            self.recette = RecetteRuns(store: store, journal: journal, packs: packs)
        } catch {
            throw SandboxError.seeds("recette: \(error)")
        }
        self.recetteInjector = RecetteInjector()
        let indicators: RORCapacityIndicators
        let validator: ProfileValidator
        do {
            indicators = try RORCapacityIndicators.load(from: seedsFolder)
            validator = try ProfileValidator.load(
                from: seedsFolder.appendingPathComponent("terminology")
            )
        } catch {
            throw SandboxError.seeds("terminology: \(error)")
        }
        self.ror = RORFHIRService(
            store: store,
            tokens: RORTokenService(
                keys: Dictionary(
                    try listeners.map { listener in
                        (
                            listener.name,
                            try RealmKeys(
                                folder: listener.pki.directory,
                                algorithm: configuration.tokenAlgorithm,
                                tokenLifetime: RORTokenService.lifetime
                            )
                        )
                    },
                    uniquingKeysWith: { first, _ in first }
                ),
                whitelist: whitelist,
                revocations: try RORTokenRevocations(store: store)
            ),
            indicators: indicators,
            validator: validator,
            maximumBody: configuration.maxBody
        )
        self.csd = RORCSDService(repository: ror.repository)
        self.insi = INSiService(store: store, mode: configuration.insiMode, nirOID: configuration.insiNIROID)
        self.dmp = DMPService(records: DMPRecords(store: store), documents: DMPDocuments(store: store))
        do {
            self.mes = try MESService(
                store: store,
                whitelist: whitelist,
                keyFile: pki.directory.appendingPathComponent("mes-signing-key.pem"),
                rules: MESMeasureRules.load(from: seedsFolder)
            )
        } catch {
            throw SandboxError.seeds("mes: \(error)")
        }
        try seedWhitelist()
        // Service data is seeded on first start only: what clients wrote survives restarts (reset re-seeds).
        do {
            try ror.loadSeeds(from: seedsFolder, replace: false)
        } catch {
            throw SandboxError.seeds("ror: \(error)")
        }
        do {
            try insi.directory.loadSeeds(from: seedsFolder, replace: false)
        } catch {
            throw SandboxError.seeds("insi: \(error)")
        }
        // After the ROR's: its first load and its reset own the FHIR tables, where the measures live too.
        try loadMESSeeds(replace: false)
        do {
            try dmp.loadSeeds(from: seedsFolder, replace: false)
        } catch {
            throw SandboxError.seeds("dmp: \(error)")
        }
    }

    /// `Seeds/mes/`: services (whose certificates are demo clients), patients, pairings and their measures.
    func loadMESSeeds(replace: Bool) throws {
        let clients = seeds.demoClients
        do {
            try mes.loadSeeds(from: seedsFolder, replace: replace) { name in
                clients.first { $0.name == name }?.subjectDN
            }
        } catch {
            throw SandboxError.seeds("mes: \(error)")
        }
    }

    /// A new data folder starts from the seeds' prebuilt ROR database when it still stands for the JSON beside it
    /// (``RORSeedDataset``), as a page overlay over it (at once) or a copy (seconds): not minutes of loading JSON.
    static func installPrebuiltDataset(
        at path: String,
        seeds: URL?,
        mode: SandboxStore.InstallMode,
        logger: Logger
    ) throws {
        guard let seeds, !FileManager.default.fileExists(atPath: path) else { return }
        let dataset = RORSeedDataset(seeds: seeds)
        guard FileManager.default.fileExists(atPath: dataset.prebuiltFile.path) else { return }
        if let reason = try dataset.prebuiltMismatch(registry: RORSearchParameters.registry) {
            logger.warning(
                "not using \(dataset.prebuiltFile.path): \(reason); loading the JSON seeds (run `esante-sandbox seed prebuild --seeds \(seeds.path)` to rebuild it)"
            )
            return
        }
        // A journal left by a database deleted by hand must not be replayed over the copy.
        for suffix in ["-wal", "-shm", "-pages"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let started = Date()
        do {
            try SandboxStore.install(prebuilt: dataset.prebuiltFile.path, at: path, mode: mode)
        } catch {
            throw SandboxError.seeds("ror: \(error)")
        }
        logger.info(
            "installed the prebuilt ROR dataset \(dataset.prebuiltFile.path) (\(mode.rawValue)) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s"
        )
    }

    /// Adds the seed whitelist entries (idempotent: an existing entry for the same credential is updated).
    func seedWhitelist() throws {
        for request in try seeds.whitelistRequests(clients: demoClients) {
            do {
                try whitelist.add(try Whitelist.entry(from: request, origin: "seed"))
            } catch let error as WhitelistError {
                throw SandboxError.seeds("whitelist entry for \(request.service): \(error)")
            }
        }
    }

    /// Where a reset stands (`GET /admin/reset`): reloading a national ROR dataset takes minutes.
    public struct ResetProgress: Codable, Sendable {
        public var running = false
        /// ROR seed files stored so far, of `files`.
        public var filesDone = 0
        public var files = 0
        public var startedAt: Date?
        public var finishedAt: Date?
    }
    let resetProgress = NIOLockedValueBox(ResetProgress())

    /// `POST /admin/reset`: service data back to the seeds and the journal emptied; with `all`, the whitelist and
    /// the CRL too (the PKI files themselves are kept: clients hold copies of them).
    public func reset(all: Bool) throws {
        resetProgress.withLockedValue { $0 = ResetProgress(running: true, startedAt: Date()) }
        defer {
            resetProgress.withLockedValue {
                $0.running = false
                $0.finishedAt = Date()
            }
        }
        try ror.loadSeeds(from: seedsFolder, replace: true) { done, files in
            resetProgress.withLockedValue {
                $0.filesDone = done
                $0.files = files
            }
        }
        try insi.directory.loadSeeds(from: seedsFolder, replace: true)
        faults.removeAll()
        ror.snapshots.removeAll()
        ror.export.removeAll()
        // Open recette runs keep the calls they have: a client's suite may reset the sandbox in its set-up.
        try recette.keepCallsOfOpenRuns()
        try journal.removeAll()
        if all {
            try onboarding.removeAll()
            try clock.reset()
            if let speed = configuration.clockSpeed { try clock.setSpeed(speed) }
            try whitelist.removeAll()
            for listener in listeners {
                try listener.pki.clearRevocations()
                listener.trustStore.setRevokedSerials([])
            }
        }
        try seedWhitelist()
        try loadMESSeeds(replace: true)
        try dmp.loadSeeds(from: seedsFolder, replace: true)
        // The journal rows queued while it was emptied (every request kept its bodies until then), written, then the
        // memory malloc kept for them given back: under load each reset left RSS 60–130 MiB higher (soak, 2026-12-07).
        journal.flush()
        LinuxCalls.trimMallocHeap()
    }

    // MARK: Running

    /// Runs both listeners until cancelled or, with `handleSignals`, until SIGTERM/SIGINT (graceful shutdown).
    public func run(handleSignals: Bool = true) async throws {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        for listener in listeners { services.append(.init(service: try makeTLSApplication(listener))) }
        services.append(.init(service: makeAdminApplication()))
        services.append(
            .init(
                service: BackgroundTasks(
                    journal: journal,
                    clock: clock,
                    onboarding: onboarding,
                    listeners: listeners,
                    refreshRecette: { [recette, recetteInjector] in try recetteInjector.refresh(from: recette) },
                    answerRecetteJournalRequests: { [recette, journal] in
                        try recette.answerJournalRequests(flush: journal.flush)
                    },
                    logger: logger
                )
            )
        )
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
                logger: logger
            )
        )
        serviceGroup.withLockedValue { $0 = group }
        defer { ror.export.removeAll() }  // export files live in a temporary folder
        try await group.run()
        journal.flush()
    }

    /// Stops a running sandbox gracefully (in-flight requests finish, the journal is flushed), as SIGTERM does.
    public func shutdown() async {
        await serviceGroup.withLockedValue { $0 }?.triggerGracefulShutdown()
    }

    /// Waits until both listeners are bound (for tests and the ready file).
    public func waitUntilReady() async -> ReadyInfo {
        await withCheckedContinuation { continuation in
            let info = ready.withLockedValue { state -> ReadyInfo? in
                if let info = state.info { return info }
                state.waiters.append(continuation)
                return nil
            }
            if let info { continuation.resume(returning: info) }
        }
    }

    private func listening(environment: String? = nil, tls: Int? = nil, admin: Int? = nil) {
        let (info, waiters) = ready.withLockedValue { state -> (ReadyInfo?, [CheckedContinuation<ReadyInfo, Never>]) in
            if let environment, let tls { state.tls[environment] = tls }
            if let admin { state.admin = admin }
            guard state.tls.count == listeners.count, let adminPort = state.admin, state.info == nil else {
                return (nil, [])
            }
            let info = makeReadyInfo(tlsPorts: state.tls, adminPort: adminPort)
            state.info = info
            defer { state.waiters = [] }
            return (info, state.waiters)
        }
        guard let info else { return }
        mes.pairingPageBase.withLockedValue { $0 = info.admin }
        if let file = configuration.readyFile {
            do {
                let data = try SandboxJSON.encoder.encode(info)
                try data.write(to: file, options: .atomic)
            } catch {
                logger.error("could not write the ready file \(file.path): \(error)")
            }
        }
        if configuration.printBanner {
            // Explicit write: stdout is block-buffered when redirected, and test harnesses read it live.
            FileHandle.standardOutput.write(Data((banner(info) + "\n").utf8))
        }
        for waiter in waiters { waiter.resume(returning: info) }
    }

    private func makeReadyInfo(tlsPorts: [String: Int], adminPort: Int) -> ReadyInfo {
        let tlsHost = Self.urlHost(configuration.host)
        let adminHost = Self.urlHost(configuration.resolvedAdminHost)
        let environments = listeners.map {
            ReadyEnvironment(
                name: $0.name,
                tls: "https://\(tlsHost):\(tlsPorts[$0.name] ?? 0)",
                caCertificateFile: $0.pki.caBundleURL.path
            )
        }
        return ReadyInfo(
            tls: environments[0].tls,
            admin: "http://\(adminHost):\(adminPort)",
            environment: configuration.environment,
            caCertificate: (try? String(contentsOf: pki.caBundleURL, encoding: .utf8)) ?? "",
            caCertificateFile: pki.caBundleURL.path,
            clientCertificates: demoClients,
            pid: ProcessInfo.processInfo.processIdentifier,
            environments: environments,
            seeds: seedsLabel
        )
    }

    /// The address clients use: a wildcard bind is reached on loopback.
    static func urlHost(_ host: String) -> String {
        switch host {
        case "0.0.0.0", "::", "": "127.0.0.1"
        default: host.contains(":") ? "[\(host)]" : host
        }
    }

    func banner(_ info: ReadyInfo) -> String {
        var lines = [
            "esante-sandbox is listening (environment \(info.environment))",
            "  mutual TLS : \(info.tls)   (reject mode: \(configuration.rejectMode.rawValue))",
        ]
        for environment in info.environments.dropFirst() {
            lines.append(
                "  \(environment.name) : \(environment.tls)   (own PKI and whitelist; CA bundle \(environment.caCertificateFile))"
            )
        }
        lines += [
            "  admin API  : \(info.admin)/admin/health   (OpenAPI: \(info.admin)/admin/openapi.json)",
            "  console    : \(info.admin)/console   (onboarding: ANS delay \(onboarding.delay), clock \(clock.view.label))",
            "  CA bundle  : \(info.caCertificateFile)",
            "  seeds      : \(seedsLabel)",
        ]
        if let consumer = demoClients["ror-consumer"] ?? demoClients.values.first {
            lines.append("Try it:")
            lines.append(
                "  curl --cacert \(Self.shellQuote(info.caCertificateFile)) --cert \(Self.shellQuote(consumer.certificate.path)) --key \(Self.shellQuote(consumer.key.path)) \(info.tls)/_sandbox/whoami"
            )
        }
        if let consumer = demoClients["ror-consumer"] {
            lines.append(
                "ROR FHIR token (then call \(info.tls)/ws-diffusion-fhir with Authorization: Bearer and the Ror-* headers, see README):"
            )
            lines.append(
                "  curl --cacert \(Self.shellQuote(info.caCertificateFile)) --cert \(Self.shellQuote(consumer.bundle.path)) -d 'grant_type=client_credentials&client_id=esante-sandbox-consumer' \(info.tls)/auth/realms/ror/protocol/openid-connect/token"
            )
        }
        lines.append(
            "Services: ROR FHIR \(info.tls)/ws-diffusion-fhir · capacity feed \(info.tls)/ws-synchro-dispo-lits-fhir/Location · "
                + "ROR CSD \(info.tls)/ROR/CSD?wsdl · INSi \(info.tls)/lps?wsdl · Mon espace santé \(info.tls)/mes/fhir "
                + "(pairing page \(info.admin)\(MESService.authorizePath)) · DMP \(info.tls)\(DMPService.patientsPath)"
        )
        lines.append("Demo client certificates: " + demoClients.keys.sorted().joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    static func shellQuote(_ text: String) -> String {
        text.allSatisfy({ $0.isLetter || $0.isNumber || "/._-".contains($0) })
            ? text : "'\(text.replacingOccurrences(of: "'", with: "'\\''"))'"
    }

    // MARK: Listeners

    func makeTLSContext(_ listener: EnvironmentListener) throws -> NIOSSLContext {
        let pki = listener.pki
        let trustStore = listener.trustStore
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        if let certURL = configuration.serverCertificate, let keyURL = configuration.serverKey {
            do {
                chain = try NIOSSLCertificate.fromPEMFile(certURL.path)
                key = try NIOSSLPrivateKey(file: keyURL.path, format: .pem)
            } catch {
                throw SandboxError.configuration("--server-cert/--server-key: \(error)")
            }
        } else {
            chain = try NIOSSLCertificate.fromPEMFile(pki.serverChainURL.path)
            key = try NIOSSLPrivateKey(file: pki.directory.appendingPathComponent("server-key.pem").path, format: .pem)
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.tlsProfile.apply(to: &tls)
        // tls: a bad or missing client certificate ends the handshake; http: let it through to answer 403.
        tls.certificateVerification = configuration.rejectMode == .tls ? .noHostnameVerification : .optionalVerification
        // Advertise the trusted CAs so clients holding several certificates pick the right one.
        tls.trustRoots = .certificates(
            try (trustStore.anchors + trustStore.intermediates).map {
                try NIOSSLCertificate(bytes: $0.serializeAsPEM().derBytes, format: .der)
            }
        )
        tls.sendCANameList = true
        return try NIOSSLContext(configuration: tls)
    }

    func makeTLSApplication(_ listener: EnvironmentListener) throws -> some Service {
        let sslContext = try makeTLSContext(listener)
        let router = Router(context: SandboxRequestContext.self)
        SandboxRoutes.add(to: router, whitelist: whitelist, ror: ror, csd: csd, insi: insi, mes: mes, dmp: dmp)
        let responder = AccessResponder(
            inner: router.buildResponder(),
            environment: listener.name,
            whitelist: whitelist,
            journal: journal,
            journalBodyLimit: configuration.journalBodyLimit,
            faults: faults,
            recette: recetteInjector
        )
        let trustStore = listener.trustStore
        let rejectMode = configuration.rejectMode
        let requestTimeout = TimeAmount.milliseconds(Int64(configuration.requestTimeout * 1000))
        let journal = self.journal
        let environment = listener.name
        let immediate = SandboxRoutes.immediateAnswers(ror: ror)
        let access = responder
        let server = HTTPServerBuilder { responder in
            MTLSChannel(
                base: HTTP1Channel(responder: responder),
                sslContext: sslContext,
                trustStore: trustStore,
                rejectMode: rejectMode,
                requestTimeout: requestTimeout,
                onRefusal: { refusal in
                    journal.record(
                        JournalEntry(
                            environment: environment,
                            service: nil,
                            method: "TLS",
                            path: "",
                            status: 0,
                            decision: .refused,
                            reason: refusal.reason,
                            identity: refusal.identity,
                            durationMs: AccessResponder<Router<SandboxRequestContext>.Responder>.milliseconds(
                                refusal.duration
                            ),
                            remoteAddress: refusal.remoteAddress
                        )
                    )
                },
                immediate: (
                    immediate, { access.respondNow(to: $0, body: $1, context: $2, answer: $3, headerMemos: $4) }
                )
            )
        }
        return Application(
            responder: responder,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: listener.port), serverName: nil),
            onServerRunning: { [weak self] channel in
                self?.listening(environment: environment, tls: channel.localAddress?.port)
            },
            logger: logger
        )
    }

    /// The admin listener's router: the admin API and the console, each part given the services it uses.
    func makeAdminRouter() -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        AdminAPI.addGuards(to: router, adminToken: configuration.adminToken)
        let layout = ConsoleLayout(clock: clock)
        let audit = FaultAudit(journal: journal, environment: configuration.environment)
        let workshop = CertificateWorkshop(
            listeners: listeners,
            defaultEnvironment: configuration.environment,
            keyAlgorithm: configuration.keyAlgorithm
        )
        Console.add(
            to: router,
            dashboard: ConsoleDashboard(
                layout: layout,
                ready: { [self] in await waitUntilReady() },
                journal: journal,
                onboarding: onboarding,
                whitelist: whitelist,
                faults: faults
            ),
            access: ConsoleAccess(
                layout: layout,
                onboarding: onboarding,
                whitelist: whitelist,
                clock: clock,
                faults: faults,
                faultAudit: audit,
                workshop: workshop
            ),
            data: ConsoleData(
                layout: layout,
                journal: journal,
                repository: ror.repository,
                ror: RORInspection(repository: ror.repository)
            ),
            mes: ConsoleMES(layout: layout, mes: mes),
            dmp: ConsoleDMP(layout: layout, dmp: dmp),
            recette: ConsoleRecette(
                layout: layout,
                runs: recette,
                injector: recetteInjector,
                demoClients: seeds.demoClients.map { ($0.name, $0.subjectDN) }
            )
        )
        let admin = router.group("admin")
        AdminAPI.add(
            to: admin,
            health: { [self] in await health() },
            whitelist: whitelist,
            journal: journal,
            reset: { [self] all in try reset(all: all) },
            resetProgress: { [self] in resetProgress.withLockedValue { $0 } }
        )
        AdminINSi.add(to: admin, directory: insi.directory)
        AdminOnboarding.add(to: admin, onboarding: onboarding)
        AdminFaults.add(to: admin, faults: faults, audit: audit)
        AdminCertificates.add(to: admin, workshop: workshop)
        AdminMES.add(to: admin, mes: mes, tlsBase: { [self] in await waitUntilReady().tls })
        AdminDMP.add(to: admin, records: dmp.records)
        AdminRecette.add(to: admin, runs: recette, injector: recetteInjector, sandboxVersion: Self.version)
        AdminRealmKeys.add(to: admin, tokens: ror.tokens)
        mes.addBrowserRoutes(to: router)
        AdminAPI.addOpenAPI(to: admin)
        metrics.addRoute(
            to: router,
            journal: journal,
            whitelist: whitelist,
            onboarding: onboarding,
            environments: configuration.resolvedEnvironments
        )
        return router
    }

    /// `GET /admin/health`.
    func health() async -> AdminAPI.Health {
        let info = await waitUntilReady()
        return AdminAPI.Health(
            status: "ok",
            environment: configuration.environment,
            tls: info.tls,
            admin: info.admin,
            rejectMode: configuration.rejectMode.rawValue,
            whitelistEntries: (try? whitelist.entries().count) ?? 0,
            uptimeSeconds: Date().timeIntervalSince(startedAt),
            environments: info.environments,
            clock: clock.view,
            onboardingWaiting: (try? onboarding.waitingCount()) ?? 0
        )
    }

    func makeAdminApplication() -> some Service {
        Application(
            responder: AdminResponder(inner: makeAdminRouter().buildResponder(), layout: ConsoleLayout(clock: clock)),
            configuration: .init(
                address: .hostname(configuration.resolvedAdminHost, port: configuration.adminPort),
                serverName: nil
            ),
            onServerRunning: { [weak self] channel in self?.listening(admin: channel.localAddress?.port) },
            logger: logger
        )
    }
}

/// Work that runs beside the listeners: the journal writer, the CRL watcher, the onboarding promotions and the
/// memory trim.
struct BackgroundTasks: Service {
    let journal: Journal
    let clock: SandboxClock
    let onboarding: Onboarding
    let listeners: [EnvironmentListener]
    /// Takes the answers of the recette runs open now (a run started by the CLI is seen within a second).
    let refreshRecette: @Sendable () throws -> Void
    /// Writes the journal when a CLI closing a run asks for it (checked every 100 ms).
    let answerRecetteJournalRequests: @Sendable () throws -> Void
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await journal.run() }
                group.addTask { await watchRevocations() }
                group.addTask { await promoteOnboarding() }
                group.addTask { await trimMemoryWhenIdle() }
                group.addTask { await refreshRecetteRuns() }
            }
        }
        journal.flush()
    }

    /// The ANS's part of onboarding: requests whose delay has passed on the sandbox clock are whitelisted within
    /// 200 ms (real time); a clock speed set by the CLI is picked up too.
    private func promoteOnboarding() async {
        while !Task.isCancelled {
            do {
                try clock.reload()
                try onboarding.promoteDue()
            } catch {
                logger.error("onboarding: \(error)")
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    private func refreshRecetteRuns() async {
        var tick = 0
        while !Task.isCancelled {
            do {
                try answerRecetteJournalRequests()
                if tick % 10 == 0 { try refreshRecette() }
            } catch {
                logger.error("recette: \(error)")
            }
            tick += 1
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Requests build pages, bundles and exports on many threads, and malloc keeps what they free in per-thread
    /// arenas (a national query run left 125–334 MiB resident for ~70 MiB in use): given back once the sandbox has
    /// been idle for a second, and every 30 s under steady load — a soak's heap held 159 MiB from malloc for 25 MiB in
    /// use and its resident part grew by steps between resets; one trim took it from 59 to 28 MiB in well under the
    /// 50 ms a debugger call could tell. Not every second under load: that slowed a national export by a fifth.
    private func trimMemoryWhenIdle() async {
        var seen = journal.recordedCount
        var trimmed = false
        var busySeconds = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let recorded = journal.recordedCount
            if recorded != seen {
                (seen, trimmed) = (recorded, false)
                busySeconds += 1
                guard busySeconds >= 30 else { continue }
            } else if trimmed {
                continue
            }
            LinuxCalls.trimMallocHeap()
            (trimmed, busySeconds) = (true, 0)
        }
    }

    /// `certs revoke` edits `revoked.txt` (one per environment), possibly from another process: picked up within a second.
    private func watchRevocations() async {
        var lastModified: [String: Date] = [:]
        while !Task.isCancelled {
            for listener in listeners {
                let url = listener.pki.revocationURL
                let modified =
                    (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date
                if modified != lastModified[listener.name] {
                    lastModified[listener.name] = modified
                    if let serials = try? SandboxPKI.revokedSerials(at: url) {
                        listener.trustStore.setRevokedSerials(serials)
                    }
                }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
