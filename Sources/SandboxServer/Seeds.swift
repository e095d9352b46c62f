import Access
import Foundation
import TestPKI

/// The datasets under `Seeds/` that the sandbox loads at start and after a reset.
///
/// - `Seeds/pki/demo-clients.json`: the bundled demo client certificates (minted into the PKI on first start).
/// - `Seeds/access/whitelist.json`: whitelist entries, naming a demo client or giving a DN / key directly.
public struct Seeds: Sendable {
    public struct DemoClient: Codable, Sendable {
        public var name: String
        public var subjectDN: String
        public var description: String?
    }

    public struct WhitelistSeed: Codable, Sendable {
        public var service: String
        /// A demo client's name: its DN (or, for CSD, its public key) is whitelisted.
        public var client: String?
        public var subjectDN: String?
        public var publicKeySHA256: String?
        public var role: String?
        public var establishments: [String]?
        public var label: String?
        public var environment: String?
        public var clientId: String?
        public var accessProfile: Int?
        public var clientSecret: String?
        public var rorHeaders: [String: String]?
    }

    struct DemoClientsFile: Codable { var clients: [DemoClient] }
    struct WhitelistFile: Codable { var entries: [WhitelistSeed] }

    public var demoClients: [DemoClient] = []
    public var whitelist: [WhitelistSeed] = []

    public init() {}

    /// Reads the seed files that exist under `directory` (a missing file is an empty dataset; a broken one is an error).
    public static func load(from directory: URL?) throws -> Seeds {
        var seeds = Seeds()
        guard let directory else { return seeds }
        if let file: DemoClientsFile = try read(directory.appendingPathComponent("pki/demo-clients.json")) {
            seeds.demoClients = file.clients
        }
        if let file: WhitelistFile = try read(directory.appendingPathComponent("access/whitelist.json")) {
            seeds.whitelist = file.entries
        }
        return seeds
    }

    private static func read<T: Decodable>(_ url: URL) throws -> T? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
        } catch {
            throw SandboxError.seeds("\(url.path): \(error)")
        }
    }

    /// Mints the demo clients missing from the PKI (`clients/NAME/`), and returns every demo client's certificate PEM.
    func ensureDemoClients(in pki: SandboxPKI, algorithm: KeyAlgorithm) throws -> [String: DemoClientFiles] {
        var files: [String: DemoClientFiles] = [:]
        for client in demoClients {
            let directory = pki.clientsURL.appendingPathComponent(client.name)
            let paths = DemoClientFiles(directory: directory)
            if !FileManager.default.fileExists(atPath: paths.certificate.path) {
                let dn: SubjectDN
                do { dn = try SubjectDN(parsing: client.subjectDN) } catch {
                    throw SandboxError.seeds("demo client \(client.name): \(error)")
                }
                let issued = try pki.issueClient(subject: try dn.distinguishedName(), algorithm: algorithm)
                // Mint aside then rename: two sandboxes starting on one PKI folder must not mix two key pairs.
                let staging = pki.clientsURL.appendingPathComponent(".staging-\(UUID().uuidString)")
                try pki.write(issued, to: staging)
                do {
                    try FileManager.default.moveItem(at: staging, to: directory)
                } catch {
                    try? FileManager.default.removeItem(at: staging)
                    guard FileManager.default.fileExists(atPath: paths.certificate.path) else { throw error }
                }
            }
            files[client.name] = paths
        }
        return files
    }

    /// Whitelist requests for the seed entries, demo client names resolved.
    func whitelistRequests(clients: [String: DemoClientFiles]) throws -> [WhitelistRequest] {
        try whitelist.map { seed in
            var request = WhitelistRequest(
                environment: seed.environment,
                service: seed.service,
                subjectDN: seed.subjectDN,
                publicKeySHA256: seed.publicKeySHA256,
                role: seed.role,
                establishments: seed.establishments,
                label: seed.label,
                clientId: seed.clientId,
                accessProfile: seed.accessProfile,
                clientSecret: seed.clientSecret,
                rorHeaders: seed.rorHeaders
            )
            if let name = seed.client {
                guard let files = clients[name] else {
                    throw SandboxError.seeds("whitelist entry for \(seed.service) names unknown demo client '\(name)'")
                }
                request.certificatePEM = try String(contentsOf: files.certificate, encoding: .utf8)
            }
            return request
        }
    }
}

/// Where a demo client's files are.
public struct DemoClientFiles: Sendable, Codable {
    public var certificate: URL
    public var key: URL
    public var bundle: URL

    init(directory: URL) {
        self.certificate = directory.appendingPathComponent("cert.pem")
        self.key = directory.appendingPathComponent("key.pem")
        self.bundle = directory.appendingPathComponent("bundle.pem")
    }
}
