import Foundation
import JWTKit

#if canImport(Glibc)
import Glibc
#endif

/// The ES256 key a token service signs with, kept in a PEM file so that tokens survive restarts. Created once even
/// when several sandboxes start at the same moment on one PKI folder (tests, a CLI beside a server): the new key is
/// linked into place only if no file is there yet, and whatever file won is read back.
public enum SigningKeyFile {
    public static func loadOrCreate(_ url: URL) throws -> ES256PrivateKey {
        try ES256PrivateKey(pem: loadOrCreatePEM(url) { ES256PrivateKey().pemRepresentation })
    }

    /// The PEM text in `url`, or `make`'s, written there first when no file is there yet.
    public static func loadOrCreatePEM(_ url: URL, make: () throws -> String) throws -> String {
        if let pem = try? String(contentsOf: url, encoding: .utf8) { return pem }
        let staging = url.path + ".new-\(UUID().uuidString)"
        try Data(try make().utf8).write(to: URL(fileURLWithPath: staging))
        chmod(staging, 0o600)
        _ = link(staging, url.path)  // fails when another process linked its key first: that one is used
        unlink(staging)
        return try String(contentsOf: url, encoding: .utf8)
    }
}
