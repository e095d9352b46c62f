import Crypto
import Foundation
import _CryptoExtras

/// RSA-2048 keys minted ahead of need, in a per-user folder, so a new data folder gets its PKI in milliseconds
/// instead of the ~0.6 s its ten RSA keys take to generate. Each key is handed out once — claimed by an atomic
/// rename, then deleted — so no two data folders ever hold the same key. `serve` refills the pool after it is ready
/// in a child process of its own (`certs fill-key-pool`): an integration suite stops a sandbox within a second or
/// two, and a refill inside the server would die with it.
public final class RSAKeyPool: Sendable {
    public let directory: URL
    /// Keys the pool keeps ready: a new data folder takes ten (CA, issuing CA, server, six demo clients, the realm).
    public let depth: Int

    public init(directory: URL, depth: Int) {
        self.directory = directory
        self.depth = depth
    }

    /// Keys ready now.
    public var count: Int { readyFiles().count }

    /// One key nobody else has, or nil when the pool is empty (the caller generates one).
    public func take() -> _RSA.Signing.PrivateKey? {
        for file in readyFiles() {
            let claimed = file.appendingPathExtension("claimed-\(UUID().uuidString)")
            // Whoever renames first owns the key; a loser's rename fails and it tries the next file.
            guard rename(file.path, claimed.path) == 0 else { continue }
            defer { unlink(claimed.path) }
            if let pem = try? String(contentsOf: claimed, encoding: .utf8),
                let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem)
            {
                return key
            }
        }
        return nil
    }

    /// Generates keys until the pool holds `depth`. Returns false without generating when another process is
    /// already filling this pool (an advisory lock on `.fill.lock`).
    @discardableResult
    public func refill() throws -> Bool {
        try FileManager.default.createDirectory(
            at: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let lockPath = directory.appendingPathComponent(".fill.lock").path
        let lock = open(lockPath, O_CREAT | O_RDWR, 0o600)
        guard lock >= 0 else { throw PKIError.unwritable(lockPath, String(cString: strerror(errno))) }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else { return false }
        while count < depth {
            let pem = try _RSA.Signing.PrivateKey(keySize: .bits2048).pemRepresentation
            let name = UUID().uuidString
            let staging = directory.appendingPathComponent(".\(name).tmp")
            guard
                FileManager.default.createFile(
                    atPath: staging.path,
                    contents: Data(pem.utf8),
                    attributes: [
                        .posixPermissions: 0o600
                    ]
                )
            else { throw PKIError.unwritable(staging.path, "a pooled key") }
            // Published whole or not at all: `take` only lists `*.pem`.
            guard rename(staging.path, directory.appendingPathComponent("\(name).pem").path) == 0 else {
                unlink(staging.path)
                throw PKIError.unwritable(directory.path, "cannot publish a pooled key")
            }
        }
        return true
    }

    private func readyFiles() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".pem") }.sorted().map { directory.appendingPathComponent($0) }
    }

    // MARK: The pool minting uses

    /// The pool every RSA key of this process comes from first (none: keys are generated on demand).
    public static var installed: RSAKeyPool? {
        get { current.withLock { $0 } }
    }

    public static func install(_ pool: RSAKeyPool?) {
        current.withLock { $0 = pool }
    }

    /// An RSA-2048 key from the installed pool, or freshly generated.
    public static func key() throws -> _RSA.Signing.PrivateKey {
        if let key = installed?.take() { return key }
        return try _RSA.Signing.PrivateKey(keySize: .bits2048)
    }

    private static let current = LockedPool()
}

private final class LockedPool: @unchecked Sendable {
    private let lock = NSLock()
    private var pool: RSAKeyPool?

    func withLock<T>(_ body: (inout RSAKeyPool?) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&pool)
    }
}
