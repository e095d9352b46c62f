import Access
import Crypto
import Foundation
import HTTPCommon
import JWTKit
import NIOConcurrencyHelpers
import TestPKI
import _CryptoExtras

#if canImport(Glibc)
import Glibc
#endif

/// The keys one environment's realm signs its tokens with (clés de signature du royaume Keycloak): the current key,
/// and the keys rotated out, still published and still accepted until the tokens they signed have expired — as
/// Keycloak keeps a passive key. Kept as PEM files in the environment's PKI folder so tokens survive restarts:
/// `token-signing-key-rs256.pem` (RS256, Keycloak's default) or `token-signing-key.pem` (ES256), and
/// `…-retired-<unix time>.pem` for rotated ones.
public final class RealmKeys: Sendable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case rs256 = "RS256"
        case es256 = "ES256"

        var fileName: String { self == .rs256 ? "token-signing-key-rs256" : "token-signing-key" }
    }

    /// A signing key with its `kid` (the RFC 7638 thumbprint of its public JWK) and public JWK.
    struct Key: Sendable {
        var kid: String
        var jwk: [String: String]
        var rsa: JWTKit.Insecure.RSA.PrivateKey?
        var ecdsa: ES256PrivateKey?
        /// When it was rotated out (nil: current).
        var retiredAt: Date?
    }

    struct State: Sendable {
        var current: Key
        var retired: [Key]
        /// Bumped by each rotation: the collection built for an older generation is built again.
        var generation = 0
        var collection: (generation: Int, keys: JWTKeyCollection)?
    }

    public let algorithm: Algorithm
    let folder: URL
    let tokenLifetime: TimeInterval
    private let state: NIOLockedValueBox<State>

    public init(folder: URL, algorithm: Algorithm, tokenLifetime: TimeInterval) throws {
        self.folder = folder
        self.algorithm = algorithm
        self.tokenLifetime = tokenLifetime
        let current = try Self.load(
            try Self.loadOrCreate(folder.appendingPathComponent(algorithm.fileName + ".pem"), algorithm),
            algorithm
        )
        var retired: [Key] = []
        let prefix = algorithm.fileName + "-retired-"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in files where name.hasPrefix(prefix) && name.hasSuffix(".pem") {
            let url = folder.appendingPathComponent(name)
            guard let seconds = Double(name.dropFirst(prefix.count).dropLast(4)) else { continue }
            let retiredAt = Date(timeIntervalSince1970: seconds)
            if retiredAt.addingTimeInterval(tokenLifetime) < Date() {
                try? FileManager.default.removeItem(at: url)  // its tokens have all expired
                continue
            }
            var key = try Self.load(try String(contentsOf: url, encoding: .utf8), algorithm)
            key.retiredAt = retiredAt
            retired.append(key)
        }
        state = NIOLockedValueBox(State(current: current, retired: retired))
    }

    /// The key collection tokens are signed and verified with: the current key and the retired ones still
    /// published (built once per rotation: adding keys to JWTKit's collection is asynchronous).
    func collection(now: Date = Date()) async -> JWTKeyCollection {
        let (generation, built, keys) = state.withLockedValue { state in
            (
                state.generation, state.collection,
                [state.current] + state.retired.filter { self.published($0, now: now) }
            )
        }
        if let built, built.generation == generation { return built.keys }
        let collection = JWTKeyCollection()
        for key in keys {
            if let rsa = key.rsa {
                await collection.add(rsa: rsa, digestAlgorithm: .sha256, kid: JWKIdentifier(string: key.kid))
            } else if let ecdsa = key.ecdsa {
                await collection.add(ecdsa: ecdsa, kid: JWKIdentifier(string: key.kid))
            }
        }
        state.withLockedValue { state in
            if state.generation == generation { state.collection = (generation, collection) }
        }
        return collection
    }
    public var currentKid: String { state.withLockedValue { $0.current.kid } }

    /// The JWKS (`…/protocol/openid-connect/certs`): the current key, then the retired ones still published.
    public func jwks(now: Date = Date()) -> [[String: String]] {
        state.withLockedValue { state in
            [state.current.jwk] + state.retired.filter { published($0, now: now) }.map(\.jwk)
        }
    }

    /// The current key's SubjectPublicKeyInfo in base64 (the realm summary's `public_key`, as Keycloak gives it).
    public var publicKeyBase64: String {
        state.withLockedValue { state in
            // A public key's PEM body is its SubjectPublicKeyInfo in base64.
            let pem = state.current.rsa?.publicKey.pemRepresentation ?? state.current.ecdsa?.publicKey.pemRepresentation
            return (pem ?? "").split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        }
    }

    /// A new current key; the one it replaces stays published and accepted until its tokens have expired.
    @discardableResult
    public func rotate(now: Date = Date()) throws -> (kid: String, retired: String, publishedUntil: Date) {
        let file = folder.appendingPathComponent(algorithm.fileName + ".pem")
        let stamp = Int(now.timeIntervalSince1970)
        let retiredFile = folder.appendingPathComponent("\(algorithm.fileName)-retired-\(stamp).pem")
        guard rename(file.path, retiredFile.path) == 0 else {
            throw RealmKeyError("cannot rotate \(file.path): \(String(cString: strerror(errno)))")
        }
        let fresh = try Self.load(try Self.loadOrCreate(file, algorithm), algorithm)
        let retired = state.withLockedValue { state -> Key in
            var old = state.current
            old.retiredAt = Date(timeIntervalSince1970: Double(stamp))
            state.retired.insert(old, at: 0)
            state.retired.removeAll { !self.published($0, now: now) }
            state.current = fresh
            state.generation += 1
            return old
        }
        return (fresh.kid, retired.kid, retired.retiredAt!.addingTimeInterval(tokenLifetime))
    }

    private func published(_ key: Key, now: Date) -> Bool {
        (key.retiredAt ?? now).addingTimeInterval(tokenLifetime) >= now
    }

    /// The key in a PEM file, created when absent (race-free: `SigningKeyFile`).
    static func loadOrCreate(_ url: URL, _ algorithm: Algorithm) throws -> String {
        try SigningKeyFile.loadOrCreatePEM(url) {
            switch algorithm {
            case .rs256: try RSAKeyPool.key().pemRepresentation
            case .es256: ES256PrivateKey().pemRepresentation
            }
        }
    }

    static func load(_ pem: String, _ algorithm: Algorithm) throws -> Key {
        switch algorithm {
        case .rs256:
            let key = try JWTKit.Insecure.RSA.PrivateKey(pem: pem)
            let (modulus, exponent) = try key.publicKey.getKeyPrimitives()
            let n = Base64URL.encode(Array(modulus))
            let e = Base64URL.encode(Array(exponent))
            // RFC 7638: the required members in lexicographic order, no spaces.
            let kid = thumbprint("{\"e\":\"\(e)\",\"kty\":\"RSA\",\"n\":\"\(n)\"}")
            return Key(
                kid: kid,
                jwk: ["kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig", "n": n, "e": e],
                rsa: key
            )
        case .es256:
            let key = try ES256PrivateKey(pem: pem)
            guard let parameters = key.parameters else { throw RealmKeyError("the ES256 key has no coordinates") }
            let kid = thumbprint(
                "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(parameters.x)\",\"y\":\"\(parameters.y)\"}"
            )
            return Key(
                kid: kid,
                jwk: [
                    "kid": kid, "kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256", "x": parameters.x,
                    "y": parameters.y,
                ],
                ecdsa: key
            )
        }
    }

    static func thumbprint(_ canonicalJWK: String) -> String {
        Base64URL.encode(Array(SHA256.hash(data: Data(canonicalJWK.utf8))))
    }
}

public struct RealmKeyError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
